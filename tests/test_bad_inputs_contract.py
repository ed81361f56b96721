"""Bad inputs at the input contract (issue #15): montage, amplitude, windows.

Each test is one case of the second bad-input round; the full list of #15
cases and the tests covering them is in the docstring of
``tests/test_bad_inputs.py``.
"""

import mne
import numpy as np
import pytest
from _helpers import noise_raw
from mne.utils import catch_logging

from mne_eegfm import get_positions
from mne_eegfm.preprocessing import (
    SKIP_BAD_ANNOTATION,
    SKIP_FLAT,
    InputContract,
    iter_windows,
    prepare,
    window_quality,
)

NAMES = ["Fz", "Cz", "Pz", "O1"]


def _raw(names=NAMES, sfreq=256.0, seconds=11.0, seed=0):
    return noise_raw(names, sfreq, seconds, seed)


def _digitise(info, positions):
    for ch, pos in zip(info["chs"], positions):
        ch["loc"][:3] = pos
        ch["coord_frame"] = mne.io.constants.FIFF.FIFFV_COORD_HEAD


# ---------------------------------------------------------------------------
# Montage


def test_ear_reference_channels_are_left_out_and_not_bipolar():
    names = ["EEG Fp1-REF", "EEG C3-REF", "EEG O2-REF", "EEG A2-A1", "EEG A1-REF"]
    info = mne.create_info(names, 256.0, "eeg")
    with catch_logging() as log:
        _, kept, _ = get_positions(info, verbose="info")
    assert kept == names[:3]
    text = log.getvalue()
    assert "reference or ear channel(s) (A1, A2, M1, M2): EEG A2-A1, EEG A1-REF" in text
    assert "bipolar" not in text


def test_one_bipolar_channel_does_not_make_a_referential_montage_bipolar():
    info = mne.create_info(["C3-A2", "C4-A1", "Cz", "Fp1-F7"], 256.0, "eeg")
    with catch_logging() as log:
        _, _, pos = get_positions(info, verbose="info")
    assert "bipolar" not in log.getvalue()
    _, _, single = get_positions(mne.create_info(["C3"], 256.0, "eeg"))
    np.testing.assert_allclose(pos[0], single[0], atol=1e-6)  # C3, not C3-A2


@pytest.mark.parametrize(
    "bad, match",
    [
        ("same", "within 0 mm of one point"),
        ("collapsed", "within 0.1 mm of one point"),
        ("huge", "up to 1e\\+38 m from the head origin"),
        ("inf", "non-finite coordinates for channel\\(s\\) Cz"),
    ],
)
def test_unusable_digitisation_warns_and_uses_names(bad, match):
    info = mne.create_info(["Fz", "Cz", "Pz"], 256.0, "eeg")
    _, _, template = get_positions(info)
    digitised = {
        "same": np.tile([0.01, 0.02, 0.08], (3, 1)),
        "collapsed": [[0.01, 0.02, 0.08 + 1e-4 * k] for k in range(3)],
        "huge": template + np.array([1e38, 0.0, 0.0]),
        "inf": [[0, 0.05, 0.07], [np.inf, 0, 0.09], [0, -0.05, 0.07]],
    }[bad]
    _digitise(info, digitised)
    with pytest.warns(RuntimeWarning, match=match):
        _, _, positions = get_positions(info)
    np.testing.assert_allclose(positions, template, atol=1e-6)


def test_collapsed_digitisation_of_unknown_names_raises():
    info = mne.create_info(["E1", "E2"], 256.0, "eeg")
    _digitise(info, [[0.01, 0.02, 0.08]] * 2)
    with pytest.warns(RuntimeWarning, match="collapsed"):
        with pytest.raises(ValueError, match=r"No position for 2 channel\(s\): E1, E2"):
            get_positions(info)


# ---------------------------------------------------------------------------
# Amplitude and flat windows


def test_channel_at_a_million_volts_warns_naming_it():
    raw = _raw()
    raw._data[2, ::2], raw._data[2, 1::2] = 1e6, -1e6
    with pytest.warns(RuntimeWarning, match=r"impossible amplitude in channel\(s\) Pz"):
        windows = prepare(raw, InputContract())
    assert np.isfinite(windows.data).all()


def test_constant_channel_at_a_million_volts_warns_naming_it():
    raw = _raw()
    raw._data[0] = 1e6
    with pytest.warns(RuntimeWarning, match=r"impossible amplitude in channel\(s\) Fz"):
        prepare(raw, InputContract())


def test_flat_windows_are_skipped_and_counted():
    raw = _raw(seconds=21.0)
    raw._data[:, 1280:2560] = 0.0  # the second 5-s window: a flat line
    raw.set_annotations(mne.Annotations([16.0], [1.0], ["BAD_x"]))
    with pytest.warns(RuntimeWarning, match="1 window\\(s\\) are flat"):
        windows = prepare(raw, InputContract())
    np.testing.assert_allclose(windows.onsets, [0.0, 10.0])
    assert windows.skipped == {SKIP_FLAT: 1, SKIP_BAD_ANNOTATION: 1}
    assert windows.n_skipped == 2 and windows.scale.shape == (2, 4)
    chunks = list(iter_windows(raw, InputContract(), chunk_s=5.0))
    skipped = [c.skipped for c in chunks]
    assert skipped == [{}, {SKIP_FLAT: 1}, {}, {SKIP_BAD_ANNOTATION: 1}]


def test_flat_epochs_are_marked():
    data = np.random.default_rng(0).standard_normal((3, 4, 1280)) * 20e-6
    data[1] = 5e-3
    epochs = mne.EpochsArray(data, mne.create_info(NAMES, 256.0, "eeg"), verbose=False)
    with pytest.warns(RuntimeWarning, match="1 of 3 epochs are flat"):
        windows = prepare(epochs, InputContract())
    assert windows.reasons.tolist() == ["", SKIP_FLAT, ""]
    assert window_quality(data).tolist() == ["", SKIP_FLAT, ""]
    assert window_quality(data[[0, 2]]) is None


@pytest.mark.parametrize("value", [np.nan, np.inf, -1.0, 0.0, "a"])
def test_non_finite_rates_and_windows_raise_naming_the_value(value):
    window = f"window_s must be a positive finite.*{value}"
    with pytest.raises(ValueError, match=f"sfreq must be a positive finite.*{value}"):
        InputContract(sfreq=value)
    with pytest.raises(ValueError, match=window):
        InputContract(window_s=value)
    with pytest.raises(ValueError, match=window):
        prepare(_raw(), InputContract(), window_s=value)


def test_recording_with_nan_sampling_rate_raises():
    raw = _raw()
    with raw.info._unlock():
        raw.info["sfreq"] = np.nan
    with pytest.raises(ValueError, match="sampling rate must be a positive.*nan"):
        prepare(raw, InputContract())


# ---------------------------------------------------------------------------
# Window length


def test_window_differing_from_the_contract_warns_naming_both():
    contract = InputContract(sfreq=128.0, h_freq=45.0, window_s=10.0)
    with pytest.warns(RuntimeWarning, match="Windows of 5 s.*expects 10-s windows"):
        assert contract.check_window(5.0) == 5.0
    with pytest.warns(RuntimeWarning, match="Windows of 5 s.*expects 10-s"):
        windows = prepare(_raw(), contract, window_s=5.0)
    assert windows.data.shape[-1] == 640


def test_window_not_a_whole_number_of_patches_says_the_effective_length():
    contract = InputContract(sfreq=128.0, h_freq=45.0, window_s=10.0)
    with pytest.warns(RuntimeWarning, match="256 samples.*240 samples \\(1.875 s\\)"):
        assert contract.check_window(2.0) == 1.875
    inexact = InputContract(sfreq=128.0, h_freq=45.0, window_s=2.0)
    with pytest.warns(RuntimeWarning, match="240 samples \\(1.875 s\\)"):
        windows = prepare(_raw(), inexact)
    assert windows.data.shape[-1] == 240
