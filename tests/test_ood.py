"""Out-of-distribution note (mne_eegfm.ood): statistics, thresholds, real devices."""

import json

import mne
import numpy as np
import pytest

from mne_eegfm.ood import InputProfile, assess, reference_statistics, regions
from mne_eegfm.preprocessing import InputContract, iter_windows, prepare, read_raw

CONTRACT = InputContract(sfreq=128.0, l_freq=0.5, h_freq=45.0, window_s=10.0)
EMOTIV = "AF3 F7 F3 FC5 T7 P7 O1 O2 P8 T8 FC6 F4 F8 AF4".split()


def _eeg(names=EMOTIV, seed=0, seconds=60.0, sfreq=128.0, scale=20e-6):
    """Pink-ish noise with a 10-Hz rhythm, about ``scale`` volts."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sfreq)
    x = np.cumsum(rng.standard_normal((len(names), n)), axis=1)
    x -= x[:, :1] + (x[:, -1:] - x[:, :1]) * np.arange(n) / n  # no drift
    x /= x.std(axis=1, keepdims=True)
    x += np.sin(
        2 * np.pi * 10 * np.arange(n) / sfreq + rng.uniform(0, 6, (len(names), 1))
    )
    info = mne.create_info(list(names), sfreq, "eeg")
    return mne.io.RawArray(x * scale, info, verbose=False)


def _noise(names=EMOTIV, seconds=60.0):
    data = np.random.default_rng(1).standard_normal((len(names), int(seconds * 128)))
    return mne.io.RawArray(data * 1e-3, mne.create_info(names, 128.0, "eeg"))


@pytest.fixture(scope="module")
def synthetic_reference():
    return reference_statistics([_eeg(seed=s) for s in range(6)], CONTRACT)


def test_reference_is_small_json_with_documented_fields(synthetic_reference):
    text = json.dumps(synthetic_reference)
    assert len(text) < 2000
    ref = json.loads(text)
    assert ref["montage"]["n_channels"] == [14, 14]
    assert ref["contract"] == CONTRACT.to_dict()
    assert set(ref["thresholds"]) == {
        "montage_overlap", "amplitude_ratio", "spectrum_distance"
    }  # fmt: skip
    assert ref["thresholds"]["amplitude_ratio"] >= 3.0


def test_same_distribution_not_flagged(synthetic_reference):
    result = assess(_eeg(seed=10), synthetic_reference)
    assert not result.flagged and result.reasons == [] and result.score < 1
    json.dumps(result.to_dict())


def test_white_noise_flagged_for_amplitude_and_spectrum(synthetic_reference):
    result = assess(_noise(), synthetic_reference)
    assert result.flagged
    assert any(r.startswith("amplitude ") and "x the training median" in r
               for r in result.reasons)  # fmt: skip
    assert any(r.startswith("spectrum far from training") for r in result.reasons)


def test_other_montage_flagged_naming_the_regions(synthetic_reference):
    names = ["Fz", "Cz", "Pz", "C3", "C4", "P3", "P4", "O1", "O2"]
    result = assess(_eeg(names, seed=3), synthetic_reference)
    assert result.flagged
    assert "never had (Fz, C3, Cz, C4, P3, Pz, P4)" in result.reasons[0]


def test_streaming_profile_equals_whole_recording(synthetic_reference):
    raw = _eeg(seed=4, seconds=95.0)
    stream = InputProfile(CONTRACT)
    for chunk in iter_windows(raw, CONTRACT, chunk_s=30.0):
        stream.update(chunk)
    whole = assess(prepare(raw, CONTRACT), synthetic_reference)
    assert assess(stream, synthetic_reference).details == pytest.approx(whole.details)


def test_bad_arguments_raise(synthetic_reference):
    windows = prepare(_eeg(), CONTRACT)
    windows.scale = None
    with pytest.raises(ValueError, match="no scale"):
        assess(windows, synthetic_reference)
    with pytest.raises(ValueError, match="Unknown reference statistics"):
        assess(_eeg(), {"statistic": "x"})
    with pytest.raises(TypeError, match="got str"):
        assess("rec.edf", synthetic_reference)
    assert regions([[0.0, 0.0, 0.1]]) == ["Cz"]


# ---------------------------------------------------------------------------
# Real data: Guinea-Bissau (Emotiv, 14 ch) against other devices


def _gb(data_path, subjects):
    for sub in subjects:
        folder = data_path / "guinea-bissau-bids" / sub / "eeg"
        yield read_raw(next(folder.glob("*_eeg.edf")), verbose="error")


@pytest.mark.data
def test_guinea_bissau_reference_flags_other_devices_only(data_path):
    train = [f"sub-{i:03d}" for i in range(1, 21)]
    reference = reference_statistics(_gb(data_path, train), CONTRACT, verbose="error")
    for raw in _gb(data_path, ["sub-015", "sub-023", "sub-063"]):  # held out
        assert not assess(raw, reference, verbose="error").flagged
    others = [
        data_path / "formats/eegbci-S003/raw/S003R01.edf",
        data_path / "eegmmidb/S002/S002R01.edf",
    ]
    for path in others:
        result = assess(read_raw(path, verbose="error"), reference, verbose="error")
        assert result.flagged and "montage covers" in result.reasons[0]
    assert assess(_noise(), reference, verbose="error").flagged
