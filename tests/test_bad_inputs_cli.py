"""Second bad-input round (#15, phase 2): the command line, files and disks.

Each case named in the module docstring of tests/test_bad_inputs.py. Tiny
random models keep these fast; the out-of-distribution note is checked on a
recording from another device (``data``) and on synthetic white noise.
"""

import errno
import json
import os
import shutil
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import mne
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mne_eegfm.cli import _runner, main
from mne_eegfm.preprocessing import InputContract

REFERENCE = Path(__file__).parents[1] / "benchmarks/ood_reference_lumamba-tiny-gb.json"
NAMES = ["Fz", "Cz", "Pz", "O1"]


def run_cli(args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.output


def _edf(path, n_channels=4, seconds=12.0, sfreq=128.0, seed=0, scale=2e-5):
    rng = np.random.default_rng(seed)
    info = mne.create_info(NAMES[:n_channels], sfreq, "eeg")
    data = np.cumsum(rng.standard_normal((n_channels, int(seconds * sfreq))), 1)
    data = (data - data.mean(1, keepdims=True)) / data.std(1, keepdims=True) * scale
    raw = mne.io.RawArray(data, info, verbose=False)
    raw.export(path, overwrite=True, verbose=False)
    return Path(path)


def _tiny(path, statistics=None, seed=0):
    """A tiny random classifier with the Guinea-Bissau contract (and stats)."""
    import torch

    from mne_eegfm.checkpoints import save_model
    from mne_eegfm.models import create_model

    reference = json.loads(REFERENCE.read_text())
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = create_model("lumamba-tiny", n_outputs=2, head="query", num_blocks=1,
                           embed_dim=16, num_queries=2)  # fmt: skip
    card = {"name": Path(path).name, "labels": ["a", "b"], "licence": "BSD-3-Clause"}
    if statistics:
        card["input_statistics"] = reference
    contract = InputContract.from_dict(reference["contract"])
    return str(save_model(net, path, contract=contract, card=card))


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return _tiny(tmp_path_factory.mktemp("m") / "tiny", statistics=True)


@pytest.fixture(scope="module")
def model_without_stats(tmp_path_factory):
    return _tiny(tmp_path_factory.mktemp("m") / "plain")


def _sidecar(out, stem):
    return json.loads((out / f"{stem}_desc-eegfm_predictions.json").read_text())


# ---------------------------------------------------------------------------
# Out-of-distribution note


def test_white_noise_is_flagged_in_sidecar_summary_and_report(tmp_path, model):
    rng = np.random.default_rng(0)
    info = mne.create_info(NAMES, 128.0, "eeg")
    raw = mne.io.RawArray(rng.standard_normal((4, 128 * 21)) * 2e-5, info)
    raw.export(tmp_path / "noise.edf", verbose=False)
    out = tmp_path / "out"
    code, output = run_cli(["predict", tmp_path / "noise.edf", "--model", model,
                            "--out", out, "--report"])  # fmt: skip
    assert code == 0, output
    note = _sidecar(out, "noise")["MneEegfm"]["out_of_distribution"]
    assert note["assessed"] and note["flagged"] and note["score"] > 1
    assert any("spectrum" in r for r in note["reasons"])
    summary = pd.read_csv(out / "summary.tsv", sep="\t")
    assert summary.loc[0, "out_of_distribution"].startswith("flagged (score")
    html = (out / "noise_desc-eegfm_report.html").read_text()
    assert "out_of_distribution" in html and "flagged (score" in html


def test_card_without_statistics_says_not_assessed(tmp_path, model_without_stats):
    out = tmp_path / "out"
    edf = _edf(tmp_path / "rec.edf")
    code, output = run_cli(["predict", edf, "--model", model_without_stats,
                            "--out", out])  # fmt: skip
    assert code == 0, output
    note = _sidecar(out, "rec")["MneEegfm"]["out_of_distribution"]
    assert note["assessed"] is False and note["flagged"] is None
    summary = pd.read_csv(out / "summary.tsv", sep="\t")
    assert summary.loc[0, "out_of_distribution"].startswith("not assessed")


def test_predictions_object_carries_the_note(tmp_path, model):
    import mne_eegfm

    raw = mne.io.read_raw_edf(_edf(tmp_path / "r.edf"), preload=True, verbose=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = mne_eegfm.predict(raw, model)
    assert len(result.ood) == 1 and result.ood[0]["assessed"]
    assert isinstance(result.ood[0]["flagged"], bool)


@pytest.mark.data
def test_recording_from_another_device_is_flagged(data_path, tmp_path, model):
    source = data_path / "formats/eegbci-S003/raw/S003R01.edf"
    out = tmp_path / "out"
    code, output = run_cli(["predict", source, "--model", model, "--out", out])
    assert code == 0, output
    note = _sidecar(out, "S003R01")["MneEegfm"]["out_of_distribution"]
    assert note["flagged"], note
    summary = pd.read_csv(out / "summary.tsv", sep="\t")
    assert summary.loc[0, "out_of_distribution"].startswith("flagged")


# ---------------------------------------------------------------------------
# Stale and resumed outputs


def test_replaced_model_or_recording_is_recomputed(tmp_path, model):
    edf = _edf(tmp_path / "rec.edf")
    other = _tiny(tmp_path / "copy")
    replacement = _tiny(tmp_path / "new" / "copy", seed=1)
    out = tmp_path / "out"
    assert run_cli(["predict", edf, "--model", other, "--out", out])[0] == 0
    for suffix in (".safetensors", ".json"):  # other weights at the same path
        shutil.copy(
            Path(replacement).with_suffix(suffix), Path(other).with_suffix(suffix)
        )
    code, output = run_cli(["predict", edf, "--model", other, "--out", out])
    assert code == 0 and "up to date" not in output, output
    _edf(edf, seed=5)  # another recording at the same path
    code, output = run_cli(["predict", edf, "--model", other, "--out", out])
    assert code == 0 and "up to date" not in output, output
    code, output = run_cli(["predict", edf, "--model", other, "--out", out])
    assert "up to date" in output


def test_summary_keeps_rows_of_earlier_runs(tmp_path, model):
    out = tmp_path / "out"
    for name in ("a.edf", "b.edf"):
        run_cli(["predict", _edf(tmp_path / name), "--model", model, "--out", out])
    summary = pd.read_csv(out / "summary.tsv", sep="\t")
    assert sorted(summary["source"]) == ["a.edf", "b.edf"]


def test_n_jobs_capped_by_recordings_and_cores():
    assert _runner.n_workers(12, 3) == min(3, os.cpu_count())
    assert _runner.n_workers(-1, 1) == 1


def test_stale_temporaries_are_removed_and_fresh_ones_kept(tmp_path, model):
    out = tmp_path / "out"
    out.mkdir()
    stale = out / ".tmp-0123abcd-rec_desc-eegfm_predictions.tsv"
    fresh = out / ".tmp-89abcdef-other.tsv"
    stale.write_text("half")
    fresh.write_text("writing")
    old = time.time() - 7 * 24 * 3600
    os.utime(stale, (old, old))
    code, output = run_cli(["predict", _edf(tmp_path / "rec.edf"), "--model",
                            model, "--out", out])  # fmt: skip
    assert code == 0, output
    assert not stale.exists() and fresh.exists()


def test_warnings_are_kept_whole():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.warn(
            "Unable to map the following column(s) to MNE:\nfoo\nbar", stacklevel=1
        )
    assert _runner.warning_notes(caught) == [
        "Unable to map the following column(s) to MNE: foo bar"
    ]


# ---------------------------------------------------------------------------
# Disks


def test_disk_full_writing_the_summary_still_reports_failures(
    tmp_path, model, monkeypatch
):
    import mne_eegfm.bids as bids

    good = _edf(tmp_path / "good.edf")
    bad = tmp_path / "bad.edf"
    bad.write_bytes(b"not an EDF file at all")
    real = bids.write_text

    def full(fname, text, *args, **kwargs):
        if Path(fname).name == "summary.tsv":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fname, text, *args, **kwargs)

    monkeypatch.setattr(bids, "write_text", full)
    code, output = run_cli(["predict", good, bad, "--model", model, "--out",
                            tmp_path / "out"])  # fmt: skip
    assert code == 1
    assert "could not write" in output and "No space left on device" in output
    assert "1 of 2 recording(s) failed" in output and "bad.edf" in output
    assert "Traceback" not in output


def test_disk_full_when_fit_saves_is_one_line(tmp_path, monkeypatch):
    from mne_eegfm.estimators import EEGFMClassifier

    def full(self, path):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(EEGFMClassifier, "save", full)
    from mne_eegfm.cli import fit as fit_cli

    def fitted(self, X, y):
        self.model_ = SimpleNamespace(card={})
        return self

    monkeypatch.setattr(EEGFMClassifier, "fit", fitted)
    monkeypatch.setattr(fit_cli, "load_labelled", _fake_labelled, raising=False)
    pytest.importorskip("mne_eegfm.evaluation")
    import mne_eegfm.evaluation as evaluation

    monkeypatch.setattr(evaluation, "load_labelled", _fake_labelled)
    import mne_eegfm.bids as bids

    monkeypatch.setattr(bids, "find_recordings", lambda *a, **k: ["r1", "r2"])
    monkeypatch.setattr(bids, "subject_labels", lambda *a, **k: {})
    root = tmp_path / "bids"
    root.mkdir()
    (root / "dataset_description.json").write_text(
        json.dumps({"Name": "x", "BIDSVersion": "1.9.0"})
    )
    code, output = run_cli(["fit", root, "--target", "participants:group",
                            "--out", tmp_path / "clf", "--cv", 0])  # fmt: skip
    assert code == 1, output
    assert "Could not save the classifier" in output
    assert "No space left on device" in output and "Traceback" not in output


def _fake_labelled(data, recordings, target, window, max_windows, show_progress=False):
    return [("01", "x", ["a"]), ("02", "y", ["b"])], []
