import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import mne  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from mne_eegfm import get_positions, report  # noqa: E402

CH_NAMES = ["Fp1", "Fp2", "C3", "C4", "O1", "O2"]


@pytest.fixture
def raw(rng):
    sfreq = 100.0
    data = rng.standard_normal((len(CH_NAMES), int(400 * sfreq))) * 1e-5
    data += 4e-3  # a DC offset, as Emotiv headsets record
    info = mne.create_info(CH_NAMES, sfreq, "eeg")
    return mne.io.RawArray(data, info, verbose=False)


def _predictions(n, rng):
    p = rng.uniform(size=n)
    return pd.DataFrame(
        {
            "onset": np.arange(n) * 5.0,
            "duration": 5.0,
            "label": np.where(p > 0.5, "B", "A"),
            "proba_A": 1 - p,
            "proba_B": p,
        }
    )


def test_signal_envelope_matches_direct_computation(raw, monkeypatch):
    monkeypatch.setattr(report, "_CHUNK_S", 7.0)  # many chunks, bins across none
    picks = np.array([0, 3])
    times, low, high = report.signal_envelope(raw, picks, n_points=400)
    data = raw.get_data(picks)
    bins = data.reshape(2, 400, -1)
    centred = bins - bins.mean(axis=2, keepdims=True)
    np.testing.assert_allclose(low, centred.min(axis=2), atol=1e-12)
    np.testing.assert_allclose(high, centred.max(axis=2), atol=1e-12)
    np.testing.assert_allclose(times, np.arange(400) * 1.0)
    assert (low <= 0).all() and (high >= 0).all()  # DC offset removed


def test_plot_timeline_and_topomaps(raw, rng):
    fig = report.plot_timeline(raw, _predictions(80, rng), ["A", "B"])
    ax_p = fig.axes[0]
    assert len(ax_p.patches) == 160  # stacked bars: one per window and class
    heights = np.array([p.get_height() for p in ax_p.patches]).reshape(2, 80)
    np.testing.assert_allclose(heights.sum(axis=0), 1.0)
    plt.close(fig)
    positions = get_positions(raw.info)[2]
    attention = rng.dirichlet(np.ones(len(CH_NAMES)), size=3)
    fig = report.plot_attention_topomaps(attention, CH_NAMES, positions)
    assert [ax.get_title() for ax in fig.axes[:3]] == ["query 1", "query 2", "query 3"]
    plt.close(fig)


def test_write_report(raw, rng, tmp_path):
    fname = tmp_path / "sub-01_desc-eegfm_report.html"
    positions = get_positions(raw.info)[2]
    summary = {"label": "B", "proba_A": 0.4, "proba_B": 0.6, "n_windows": 80}
    report.write_report(
        fname,
        raw,
        _predictions(80, rng),
        summary=summary,
        card={"name": "tiny <model>", "licence": "CC BY 4.0"},
        attention=rng.dirichlet(np.ones(len(CH_NAMES)), size=2),
        ch_names=CH_NAMES,
        positions=positions,
    )
    html = fname.read_text(encoding="utf-8")
    assert "Prediction timeline" in html and "Channel-unification attention" in html
    assert "Research demonstration, not a diagnostic device." in html
    assert "tiny &lt;model&gt;" in html  # escaped
    assert [p.name for p in tmp_path.iterdir()] == [fname.name]
    # without attention: no topomap section
    report.write_report(fname, raw, _predictions(80, rng), summary=summary)
    assert "Channel-unification attention" not in fname.read_text(encoding="utf-8")


EMOTIV = ["AF3", "AF4", "F3", "F4", "F7", "F8", "FC5", "FC6"]
EMOTIV += ["O1", "O2", "P7", "P8", "T7", "T8"]  # guinea-bissau order: L/R pairs


@pytest.mark.parametrize("order", [EMOTIV, sorted(EMOTIV, key=lambda n: n[-1])])
def test_traces_cover_both_hemispheres(order):
    raw = mne.io.RawArray(np.zeros((14, 10)), mne.create_info(order, 100.0, "eeg"))
    names = [order[p] for p in report._pick_traces(raw)]
    sides = [report._side(n) for n in names]
    assert len(names) == 8 and sides.count("left") == sides.count("right") == 4
    assert names == [n for n in order if n in names]  # recording order kept
    assert report._side("EEG Fp1-REF") == "left" and report._side("Cz") == "midline"


def test_one_channel_report(rng, tmp_path):
    raw = mne.io.RawArray(
        rng.standard_normal((1, 6000)) * 1e-5, mne.create_info(["Cz"], 100.0, "eeg")
    )
    fname = tmp_path / "report.html"
    summary = {"label": "B", "proba_B": 0.6, "n_windows": 8, "n_skipped": 2}
    report.write_report(
        fname,
        raw,
        _predictions(8, rng),
        summary=summary,
        card={"name": "tiny"},
        attention=np.ones((2, 1)),
        ch_names=["Cz"],
        positions=np.array([[0.0, 0.0, 0.09]]),
        not_evaluated=[(40.0, 10.0, "BAD_muscle"), (50.0, 10.0, "no complete window")],
        model_sha256="d18f64cc64999c1a" * 4,
    )
    text = fname.read_text(encoding="utf-8")
    assert (
        "B (P = 0.60); windows: 8 used, 2 skipped; not evaluated: 2 spans, 20.0 s; "
        "model tiny (SHA-256 d18f64cc6499)" in text
    )
    assert "need at least 3 electrodes" in text


def test_timeline_draws_not_evaluated(raw, rng):
    spans = [(100.0, 20.0, "BAD_muscle"), (395.0, 5.0, "no complete window")]
    fig = report.plot_timeline(
        raw, _predictions(20, rng), ["A", "B"], not_evaluated=spans
    )
    for ax in fig.axes[:2]:
        shaded = [p for p in ax.patches if p.get_hatch() == "//"]
        assert len(shaded) == 2
    assert "not evaluated" in [t.get_text() for t in fig.axes[0].get_legend().texts]
    plt.close(fig)
