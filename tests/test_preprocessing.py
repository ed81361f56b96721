"""The input contract: filtering, resampling, windows, checks and file reading."""

import json
import shutil
import warnings

import mne
import numpy as np
import pytest
from _helpers import noise_raw
from hypothesis import given, settings
from hypothesis import strategies as st

from mne_eegfm.preprocessing import (
    InputContract,
    Windows,
    iter_windows,
    normalize_windows,
    prepare,
    read_raw,
)

NAMES = "Fp1 Fp2 F3 F4 C3 C4 P3 P4 O1 O2 F7 F8 T7 T8 P7 P8 Fz Cz".split()
RAW_CONTRACT = InputContract(normalization="none")  # keeps amplitudes (uV)


def _raw(rng, seconds=30.0, sfreq=500.0, n_ch=4, scale=2e-5, offset=4e-3):
    return noise_raw(NAMES[:n_ch], sfreq, seconds, rng, scale, offset)


def _sines(freqs_amps, seconds=40.0, sfreq=500.0, n_ch=2):
    t = np.arange(int(seconds * sfreq)) / sfreq
    sig = sum(a * np.sin(2 * np.pi * f * t) for f, a in freqs_amps)
    info = mne.create_info(NAMES[:n_ch], sfreq, "eeg")
    return mne.io.RawArray(np.tile(sig, (n_ch, 1)), info, verbose="error")


def _amplitude(x, freq, sfreq):
    """Amplitude of a sine at `freq` in the last axis of x (exact bins)."""
    spec = np.abs(np.fft.rfft(x, axis=-1)) * 2 / x.shape[-1]
    return spec[..., int(round(freq * x.shape[-1] / sfreq))]


# ---------------------------------------------------------------------------
# InputContract


def test_contract_defaults_and_roundtrip():
    c = InputContract()
    assert (c.sfreq, c.l_freq, c.h_freq, c.units, c.window_s) == (
        256.0,
        0.1,
        75.0,
        "uV",
        5.0,
    )
    assert c.n_times == 1280 and c.n_times % 40 == 0
    c2 = InputContract(notch=[50, 100], window_s=4.1)
    assert c2.notch == (50.0, 100.0)
    assert c2.n_times == 1040  # 1049.6 samples rounded down to 26 patches
    d = json.loads(json.dumps(c2.to_dict()))
    assert InputContract.from_dict(d) == c2
    with pytest.raises(ValueError, match="Unknown input-contract keys.*foo"):
        InputContract.from_dict({**d, "foo": 1})
    with pytest.raises(AttributeError):
        c.sfreq = 128.0
    hash(c2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"sfreq": 0}, "sfreq"),
        ({"l_freq": 80.0}, "l_freq"),
        ({"h_freq": 200.0}, "Nyquist"),
        ({"units": "volts"}, "units"),
        ({"normalization": "robust"}, "normalization"),
        ({"window_s": 0.1}, "patch"),
    ],
)
def test_contract_invalid(kwargs, match):
    with pytest.raises(ValueError, match=match):
        InputContract(**kwargs)


# ---------------------------------------------------------------------------
# Raw


def test_prepare_raw_shapes_and_copy(rng):
    raw = _raw(rng, seconds=33.0)
    raw.set_annotations(mne.Annotations([1.0], [0.5], ["blink"]))
    before = raw.get_data().copy()
    info_before = raw.info.copy()
    w = prepare(raw, InputContract())
    assert isinstance(w, Windows)
    assert w.data.shape == (6, 4, 1280) and w.data.dtype == np.float32
    assert w.data.flags.c_contiguous
    assert w.positions.shape == (4, 3) and w.positions.dtype == np.float32
    assert w.ch_names == NAMES[:4] and w.sfreq == 256.0 and w.n_skipped == 0
    np.testing.assert_allclose(w.onsets, np.arange(6) * 5.0)
    np.testing.assert_allclose(w.data.mean(-1), 0, atol=1e-5)
    np.testing.assert_allclose(w.data.std(-1), 1, atol=1e-4)
    # the user's object is untouched
    np.testing.assert_array_equal(raw.get_data(), before)
    assert not mne.utils.object_diff(raw.info, info_before)
    assert raw.info["sfreq"] == 500.0 and len(raw.annotations) == 1


def test_overlap_and_window_length(rng):
    raw = _raw(rng, seconds=20.0)
    w = prepare(raw, InputContract(), overlap=0.5)
    np.testing.assert_allclose(w.onsets, np.arange(7) * 2.5)
    w = prepare(raw, InputContract(), window_s=2.0)  # 512 samples -> 480
    assert w.data.shape[-1] == 480
    with pytest.raises(ValueError, match="overlap"):
        prepare(raw, InputContract(), overlap=1.0)


def test_bad_annotations_skipped(rng):
    raw = _raw(rng, seconds=40.0)
    raw.set_annotations(
        mne.Annotations(
            [7.0, 20.0, 31.0, 36.0], [1.0, 0.0, 2.0, 1.0],
            ["BAD_artifact", "bad_spike", "edf_edge", "notbad"],
        )
    )  # fmt: skip
    w = prepare(raw, InputContract())
    np.testing.assert_allclose(w.onsets, [0, 10, 15, 25, 30, 35])
    assert w.n_skipped == 2  # 5-10 (7-8) and 20-25 (0-duration at 20)
    w = prepare(raw, InputContract(), reject_by_annotation=False)
    assert len(w) == 8 and w.n_skipped == 0


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 80) | st.floats(0, 100),
            st.sampled_from([0.0, 2.5, 5.0]) | st.floats(0, 20),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_bad_window_overlap_matches_brute_force(intervals):
    from mne_eegfm.preprocessing.windows import _is_bad

    onsets = np.arange(0.0, 100.0, 2.5)
    bad = np.array([(a, a + d) for a, d in intervals], float)
    t0, t1 = onsets[:, None], onsets[:, None] + 5.0
    a, b = bad[None, :, 0], bad[None, :, 1]
    point = (a == b) & (t0 <= a) & (a < t1)  # 0-duration: the window holding it
    expected = (((t0 < b) & (a < t1)) | point).any(axis=1)
    np.testing.assert_array_equal(_is_bad(onsets, 5.0, bad), expected)


def test_all_windows_bad_warns(rng):
    raw = _raw(rng, seconds=12.0)
    raw.set_annotations(mne.Annotations([0.0], [12.0], ["BAD_all"]))
    with pytest.warns(RuntimeWarning, match="All 2 windows overlap BAD"):
        w = prepare(raw, InputContract())
    assert w.data.shape == (0, 4, 1280) and w.n_skipped == 2


def test_bad_annotations_with_first_samp_and_meas_date(rng):
    raw = _raw(rng, seconds=60.0)
    raw.set_meas_date(1.6e9)
    raw.crop(10.0, None)  # first_samp > 0
    onset = raw.first_time + 12.0  # 12 s into the cropped recording
    raw.set_annotations(
        mne.Annotations([onset], [1.0], ["BAD_x"], orig_time=raw.info["meas_date"])
    )
    w = prepare(raw, InputContract())
    assert w.n_skipped == 1 and 10.0 not in w.onsets and 5.0 in w.onsets


def test_filter_passband_stopband_and_units():
    # 10 uV at 10 Hz is kept, 100 Hz is removed, a 4 mV offset is removed
    raw = _sines([(10.0, 10e-6), (100.0, 10e-6)], seconds=40.0)
    raw.apply_function(lambda x: x + 4e-3)
    w = prepare(raw, RAW_CONTRACT)
    x = w.data[1:-1]  # away from the edges
    np.testing.assert_allclose(_amplitude(x, 10.0, 256.0), 10.0, rtol=0.01)
    assert _amplitude(x, 100.0, 256.0).max() < 0.05
    assert np.abs(x.mean(-1)).max() < 0.1  # offset gone (uV)


def test_notch():
    raw = _sines([(10.0, 10e-6), (50.0, 20e-6)], seconds=40.0)
    w = prepare(raw, InputContract(notch=50.0, normalization="none"))
    x = w.data[1:-1]
    assert _amplitude(x, 50.0, 256.0).max() < 0.1
    np.testing.assert_allclose(_amplitude(x, 10.0, 256.0), 10.0, rtol=0.01)
    w = prepare(raw, RAW_CONTRACT)
    np.testing.assert_allclose(_amplitude(w.data[1:-1], 50.0, 256.0), 20.0, rtol=0.02)


def test_matches_mne_pipeline_in_the_band():
    # band-limited content: same result as MNE's resample + FIR band-pass
    rng = np.random.default_rng(1)
    raw = _sines([(f, rng.uniform(2, 10) * 1e-6) for f in (1.5, 7.0, 13.0, 31.0, 60.0)])
    w = prepare(raw, RAW_CONTRACT)
    ref = raw.copy().resample(256.0, method="polyphase", verbose="error")
    ref.filter(0.1, 75.0, verbose="error")
    y = ref.get_data()[:, : 7 * 1280] * 1e6
    mid = slice(1, 6)
    expected = y.reshape(2, 7, 1280).transpose(1, 0, 2)[mid]
    np.testing.assert_allclose(w.data[mid], expected, atol=0.02 * np.abs(y).max())


def test_iter_windows_matches_prepare(rng):
    raw = _raw(rng, seconds=95.0, sfreq=500.0)
    raw.set_annotations(mne.Annotations([42.0], [1.0], ["BAD_x"]))
    whole = prepare(raw, InputContract(), chunk_s=None, overlap=0.25)
    parts = list(iter_windows(raw, InputContract(), chunk_s=20.0, overlap=0.25))
    assert len(parts) > 3
    data = np.concatenate([p.data for p in parts])
    np.testing.assert_allclose(np.concatenate([p.onsets for p in parts]), whole.onsets)
    assert sum(p.n_skipped for p in parts) == whole.n_skipped == 2
    np.testing.assert_allclose(data, whole.data, atol=2e-3)
    assert all(p.ch_names == whole.ch_names for p in parts)


def test_iter_windows_lazy_file(data_path):
    edf = "guinea-bissau-bids/sub-001/eeg/sub-001_task-restingstate_eeg.edf"
    raw = read_raw(data_path / edf, verbose="error")
    assert not raw.preload
    with pytest.warns(RuntimeWarning, match="lowered"):
        parts = list(iter_windows(raw, InputContract(), chunk_s=60.0))
    assert len(parts) > 1
    data = np.concatenate([p.data for p in parts])
    assert data.shape[1:] == (14, 1280) and np.isfinite(data).all()
    assert parts[0].source.endswith(".edf")
    assert not raw.preload


def test_guinea_bissau_raw_volts(data_path):
    edf = "guinea-bissau-bids/sub-001/eeg/sub-001_task-restingstate_eeg.edf"
    raw = read_raw(data_path / edf, verbose="error")
    with pytest.warns(RuntimeWarning, match=r"128.0 Hz.*lowered to 51.2 Hz"):
        w = prepare(raw, RAW_CONTRACT)
    assert w.data.shape[1:] == (14, 1280)
    std = np.median(w.data.std(-1))
    assert 1 < std < 500  # microvolts; the ~4 mV Emotiv offset is gone
    assert np.abs(np.median(w.data.mean(-1))) < 50


# ---------------------------------------------------------------------------
# Checks


def test_nan_and_inf_name_the_channel(rng):
    raw = _raw(rng, seconds=12.0)
    raw._data[2, 100] = np.nan
    with pytest.raises(ValueError, match="F3"):
        prepare(raw, InputContract())
    raw._data[2, 100] = 0.0
    raw._data[1, 5] = np.inf
    with pytest.raises(ValueError, match="Fp2"):
        list(iter_windows(raw, InputContract()))


def test_flat_channels(rng):
    raw = _raw(rng, seconds=12.0)
    raw._data[1] = 4e-3
    with pytest.warns(RuntimeWarning, match="Flat channel.*Fp2"):
        w = prepare(raw, InputContract())
    assert np.isfinite(w.data).all()
    np.testing.assert_allclose(w.data[:, 1], 0.0, atol=1e-6)
    raw._data[:] = 0.0
    with pytest.warns(RuntimeWarning, match="All 4 channels are flat"):
        w = prepare(raw, InputContract())
    assert np.isfinite(w.data).all() and not w.data.any()


def test_wrong_units_warn(rng):
    with pytest.warns(RuntimeWarning, match="microvolts"):
        prepare(_raw(rng, seconds=12.0, scale=20.0, offset=0.0), InputContract())
    with pytest.warns(RuntimeWarning, match="nanovolts"):
        prepare(_raw(rng, seconds=12.0, scale=2e-11, offset=0.0), InputContract())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        prepare(_raw(rng, seconds=12.0), InputContract())  # plain EEG: silent


def test_too_short(rng):
    with pytest.raises(ValueError, match="shorter than one 5-s window"):
        prepare(_raw(rng, seconds=4.0), InputContract())


@pytest.mark.parametrize("sfreq", [100.0, 128.0])
def test_low_sampling_rate_lowers_lowpass(rng, sfreq):
    raw = _raw(rng, seconds=12.0, sfreq=sfreq)
    nyq = sfreq / 2
    with pytest.warns(RuntimeWarning, match=f"h_freq=75.0 Hz.*lowered to {0.8 * nyq}"):
        w = prepare(raw, InputContract())
    assert w.data.shape == (2, 4, 1280) and np.isfinite(w.data).all()


def test_high_sampling_rate(rng):
    raw = _raw(rng, seconds=11.0, sfreq=5000.0, n_ch=2)
    w = prepare(raw, RAW_CONTRACT)
    assert w.data.shape == (2, 2, 1280) and w.sfreq == 256.0
    # white noise of 20 uV over 2.5 kHz keeps the part in the 0.1-84 Hz band
    expected = 20 * np.sqrt(84.4 / 2500)
    np.testing.assert_allclose(np.median(w.data.std(-1)), expected, rtol=0.1)


def test_channels_without_position(rng):
    raw = _raw(rng, seconds=12.0)
    raw.rename_channels({"F3": "X1"})
    with pytest.raises(ValueError, match="X1"):
        prepare(raw, InputContract())
    w = prepare(raw, InputContract(), on_missing="drop")
    assert w.ch_names == ["Fp1", "Fp2", "F4"] and w.data.shape[1] == 3


def test_non_raw_input():
    with pytest.raises(TypeError, match="ndarray"):
        prepare(np.zeros((2, 1000)), InputContract())


# ---------------------------------------------------------------------------
# Epochs


def _epochs(rng, seconds, sfreq=500.0, n_epochs=3):
    n = int(round(seconds * sfreq))
    data = rng.standard_normal((n_epochs, 3, n)) * 1e-5
    info = mne.create_info(NAMES[:3], sfreq, "eeg")
    return mne.EpochsArray(data, info, tmin=-0.5, verbose="error")


def test_epochs_exact_length_no_warning(rng):
    epochs = _epochs(rng, 5.0)
    before = epochs.get_data().copy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        w = prepare(epochs, InputContract())
    assert w.data.shape == (3, 3, 1280) and w.n_skipped == 0
    np.testing.assert_allclose(w.onsets, -0.5)
    np.testing.assert_array_equal(epochs.get_data(), before)
    np.testing.assert_allclose(w.data.std(-1), 1, atol=1e-4)


def test_epochs_shorter_are_cropped_to_patches(rng):
    epochs = _epochs(rng, 4.0)  # 1024 samples at 256 Hz
    with pytest.warns(RuntimeWarning, match="1024 samples.*cropped to 1000"):
        w = prepare(epochs, InputContract())
    assert w.data.shape == (3, 3, 1000)
    np.testing.assert_allclose(w.onsets, -0.5 + 12 / 256)


def test_epochs_longer_are_centre_cropped(rng):
    epochs = _epochs(rng, 8.0)  # 2048 samples at 256 Hz
    with pytest.warns(RuntimeWarning, match="longer than the window"):
        w = prepare(epochs, InputContract())
    assert w.data.shape == (3, 3, 1280)
    np.testing.assert_allclose(w.onsets, -0.5 + 384 / 256)


def test_short_epochs_batched_and_filtered(rng, monkeypatch):
    from mne_eegfm.preprocessing import windows

    t = np.arange(1000) / 500.0
    sig = 10e-6 * np.sin(2 * np.pi * 10.0 * t) + 4e-3  # offset removed
    data = np.tile(sig, (40, 3, 1)) + rng.standard_normal((40, 3, 1000)) * 1e-7
    epochs = mne.EpochsArray(data, mne.create_info(NAMES[:3], 500.0, "eeg"))
    with pytest.warns(RuntimeWarning, match="cropped to 480"):
        whole = prepare(epochs, RAW_CONTRACT)
    assert whole.data.shape == (40, 3, 480)
    np.testing.assert_allclose(np.abs(whole.data).max(-1), 10.0, rtol=0.05)
    monkeypatch.setattr(windows, "_MAX_CHUNK", 3 * 4000)  # ~1 epoch a batch
    with pytest.warns(RuntimeWarning, match="cropped to 480"):
        batched = prepare(epochs, RAW_CONTRACT)
    np.testing.assert_allclose(batched.data, whole.data, atol=1e-4)


def test_lazy_epochs(rng):
    raw = _raw(rng, seconds=16.0, n_ch=3)
    epochs = mne.make_fixed_length_epochs(raw, duration=5.0, verbose="error")
    assert not epochs.preload
    w = prepare(epochs, InputContract())
    assert w.data.shape == (3, 3, 1280)
    assert not epochs.preload and not epochs._bad_dropped  # user's object as is
    np.testing.assert_allclose(
        w.data, prepare(epochs.load_data(), InputContract()).data
    )


def test_epochs_errors(rng):
    with pytest.raises(ValueError, match="shorter than one 40-sample patch"):
        prepare(_epochs(rng, 0.1), InputContract())
    epochs = _epochs(rng, 5.0)
    epochs.drop([0, 1, 2], verbose="error")
    with pytest.raises(ValueError, match="no epoch"):
        prepare(epochs, InputContract())


# ---------------------------------------------------------------------------
# normalize_windows


def test_normalize_windows(rng):
    x = rng.standard_normal((2, 3, 80)) * 5 + 3
    x[0, 1] = 7.0  # flat
    before = x.copy()
    out = normalize_windows(x)
    assert out.dtype == np.float32 and np.isfinite(out).all()
    np.testing.assert_array_equal(x, before)
    np.testing.assert_allclose(out[0, 1], 0.0)
    np.testing.assert_allclose(out[1].std(-1), 1, atol=1e-5)
    x[1, 2, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        normalize_windows(x)


# ---------------------------------------------------------------------------
# read_raw


def test_read_raw(data_path, tmp_path):
    src = data_path / "formats/mne-testing-data/EDF/test_reduced.edf"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its measurement date is invalid
        raw = read_raw(src, verbose="error")
    assert not raw.preload and raw.info["sfreq"] == 512.0
    with pytest.raises(FileNotFoundError, match="nope.edf"):
        read_raw(tmp_path / "nope.edf")
    bad = tmp_path / "garbage.edf"
    bad.write_bytes(b"not an edf file at all" * 20)
    with pytest.raises(ValueError, match="garbage.edf"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        read_raw(bad)
    # EDF+D: the reserved header field says the records are discontinuous
    disc = tmp_path / "disc.edf"
    shutil.copy(src, disc)
    with open(disc, "r+b") as fid:
        fid.seek(192)
        fid.write(b"EDF+D".ljust(44))
    with pytest.raises(ValueError, match="discontinuous EDF\\+D"):
        read_raw(disc)


def test_read_raw_epoched_eeglab_says_how_to_read_it(data_path):
    src = data_path / "formats/mne-testing-data/EEGLAB/test_epochs.set"
    with pytest.raises(ValueError, match="test_epochs.set holds epochs") as info:
        read_raw(src, verbose="error")
    assert "mne.read_epochs_eeglab" in str(info.value)


@pytest.mark.parametrize("sfreq", [128.0, 160.0, 250.0, 500.0, 1000.0])
def test_five_second_epochs_are_one_window(rng, sfreq):
    epochs = _epochs(rng, 5.0, sfreq=sfreq, n_epochs=2)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="Epochs are")
        warnings.filterwarnings("ignore", message="The recording's sampling rate")
        w = prepare(epochs, InputContract())
    assert w.data.shape == (2, 3, 1280)
