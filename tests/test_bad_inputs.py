"""Messy inputs: each case has one expected outcome.

Either a clear error naming the problem (type and message fragment checked), or
a warning and a well-defined, finite result. No case may return NaN or surface
a bare PyTorch error. A tiny randomly initialised LuMamba keeps this fast; what
is tested is the handling of the input, not the quality of the model.

Second bad-input round (issue #15): every case and the test covering it
(``contract`` = tests/test_bad_inputs_contract.py, ``ood`` = tests/test_ood.py,
``models`` = tests/test_bad_inputs_models.py, ``cli`` =
tests/test_bad_inputs_cli.py, ``files`` = tests/test_bad_inputs_files.py).

Silent wrong or stale output
- model file or recording replaced at the same path, re-run "up to date": cli
  ``test_replaced_model_or_recording_is_recomputed``; summary rows of earlier
  runs kept: cli ``test_summary_keeps_rows_of_earlier_runs``
- disk full while ``pretrain`` caches: files
  ``test_pretrain_disk_full_while_caching_fails_loudly``
- classifier JSON with duplicate labels: models
  ``test_duplicate_labels_in_a_classifier_file_raise``
- every digitised position identical / collapsed to a point: contract
  ``test_unusable_digitisation_warns_and_uses_names[same|collapsed]``,
  ``test_collapsed_digitisation_of_unknown_names_raises``
- one channel at +-1e6 V: contract
  ``test_channel_at_a_million_volts_warns_naming_it``,
  ``test_constant_channel_at_a_million_volts_warns_naming_it``
- all-flat recording answered with confidence: here
  ``test_all_channels_flat_recording_is_not_evaluated``; flat windows and
  epochs: contract ``test_flat_windows_are_skipped_and_counted``,
  ``test_flat_epochs_are_marked``; flat epochs in the estimators: models
  ``test_flat_epochs_warn_naming_them_and_stay_finite``
- ``EEG A2-A1`` kept as a scalp channel, log says "bipolar": contract
  ``test_ear_reference_channels_are_left_out_and_not_bipolar``,
  ``test_one_bipolar_channel_does_not_make_a_referential_montage_bipolar``
- window length differing from the contract / not a whole number of patches
  (``--window 2`` -> 1.875 s): contract
  ``test_window_differing_from_the_contract_warns_naming_both``,
  ``test_window_not_a_whole_number_of_patches_says_the_effective_length``;
  the fitted length in ``predict_windows``: models
  ``test_classifier_fitted_on_5s_epochs_predicts_5s_windows``,
  ``test_requested_window_differing_from_the_fitted_one_warns``; the CLI:
  files ``test_window_differing_from_the_model_warns_naming_both``

Memory and processes
- model JSON memory bombs (``num_blocks``, ``embed_dim``): models
  ``test_crafted_model_json_is_refused_naming_the_key[blocks|dim]``
- ``--n-jobs`` larger than recordings and cores: cli
  ``test_n_jobs_capped_by_recordings_and_cores``

Tracebacks or cryptic errors
- invalid ``dataset_description.json``: files
  ``test_invalid_dataset_description_is_one_line``
- disk full writing ``summary.tsv``: cli
  ``test_disk_full_writing_the_summary_still_reports_failures``; saving a fit:
  cli ``test_disk_full_when_fit_saves_is_one_line``, models
  ``test_disk_full_when_saving_a_classifier``
- ``pretrain`` read-only ``--out``, ``--batch-size 0``, ``--config bogus``,
  partial last line of ``log.jsonl``: files ``test_pretrain_read_only_out``,
  ``test_pretrain_bad_arguments_are_one_line``,
  ``test_pretrain_resumes_after_a_partial_log_line`` (slow)
- crafted estimator keys or string ``config`` in a model JSON: models
  ``test_crafted_model_json_is_refused_naming_the_key``
- ``--window nan``/``inf``, ``sfreq=nan``: contract
  ``test_non_finite_rates_and_windows_raise_naming_the_value``,
  ``test_recording_with_nan_sampling_rate_raises``; files
  ``test_window_not_a_length_is_refused``; models
  ``test_non_finite_window_in_predict_raises``
- truncated FIF; EDF with record duration -1: files
  ``test_truncated_fif_is_one_line_naming_the_file``,
  ``test_edf_with_negative_record_duration_names_the_file`` (EDF header lying
  about its length: here ``test_edf_header_lying_about_length_uses_the_file_size``)
- model name ``""``: files ``test_empty_model_name_is_one_line``, models
  ``test_empty_model_name_is_refused``; ragged participants.tsv:
  tests/test_bids_derivatives.py ``test_ragged_participants``
- positions ~1e38 m: contract
  ``test_unusable_digitisation_warns_and_uses_names[huge|inf]``
- a Raw whose every window overlaps BAD_ in the estimators: models
  ``test_all_windows_bad_says_no_windows``; an empty list, an Evoked or a path
  string as X: models ``test_x_of_the_wrong_type_is_named``
- ``--report`` on a 1-channel recording: files
  ``test_report_on_a_one_channel_recording``; stale ``.tmp-<uuid>-<name>``
  files: cli ``test_stale_temporaries_are_removed_and_fresh_ones_kept``; whole
  warnings: cli ``test_warnings_are_kept_whole``; read-only BIDS dataset with
  mne-bids lock files: files ``test_read_only_bids_dataset_is_read``

Out-of-distribution note
- statistics and thresholds: ood ``test_same_distribution_not_flagged``,
  ``test_white_noise_flagged_for_amplitude_and_spectrum``,
  ``test_other_montage_flagged_naming_the_regions``
- Guinea-Bissau held-out not flagged, other devices flagged: ood
  ``test_guinea_bissau_reference_flags_other_devices_only`` (data)
- the note in sidecars, summary, report and ``Predictions.ood``: cli
  ``test_white_noise_is_flagged_in_sidecar_summary_and_report``,
  ``test_recording_from_another_device_is_flagged`` (data),
  ``test_card_without_statistics_says_not_assessed``,
  ``test_predictions_object_carries_the_note``
"""

import os
import warnings
from pathlib import Path

import mne
import numpy as np
import pytest
import torch
from _helpers import make_epochs, make_raw, refuse_writes
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mne_eegfm import EEGFMClassifier, EEGFMEmbedder, get_positions
from mne_eegfm.cli import main
from mne_eegfm.models import create_model
from mne_eegfm.preprocessing import InputContract, prepare, read_raw

# Small enough to run in milliseconds, same code paths as lumamba-tiny.
TINY = {"num_queries": 2, "embed_dim": 32, "num_blocks": 1}
D_TINY = 64
CONTRACT = InputContract()
NAMES_1020 = [
    "Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7", "C3", "Cz",
    "C4", "T8", "P7", "P3", "Pz", "P4", "P8", "O1", "O2",
]  # fmt: skip

pytestmark = pytest.mark.filterwarnings(
    "ignore:'lumamba-tiny' is an architecture name:RuntimeWarning"
)


def assert_finite(out, n_rows=None):
    out = np.asarray(out)
    assert np.isfinite(out).all(), "output contains NaN or inf"
    if n_rows is not None:
        assert out.shape[0] == n_rows


@pytest.fixture(scope="module")
def embedder():
    return EEGFMEmbedder(
        model="lumamba-tiny", model_kwargs=TINY, device="cpu", verbose=False
    )


@pytest.fixture(scope="module")
def tiny_model():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return create_model("lumamba-tiny", **TINY).eval()


@pytest.fixture(scope="module")
def classifier_file(tmp_path_factory):
    """A tiny classifier saved to disk, for the command-line cases."""
    epochs = make_epochs(4)
    clf = EEGFMClassifier(
        model="lumamba-tiny",
        model_kwargs=TINY,
        max_epochs=1,
        validation_fraction=0,
        device="cpu",
        random_state=0,
        verbose=False,
    )
    clf.fit(epochs, ["a", "b"] * 2)
    return str(clf.save(tmp_path_factory.mktemp("model") / "tiny"))


def run_cli(args):
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    return result.exit_code, result.output


# ---------------------------------------------------------------------------
# Samples


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_samples_raise_naming_the_channel(embedder, bad):
    raw = make_raw()
    raw._data[1, 300:310] = bad
    with pytest.raises(ValueError, match=r"NaN or infinite samples in channel\(s\) Cz"):
        prepare(raw, CONTRACT)
    with pytest.raises(ValueError, match=r"NaN or infinite samples in channel\(s\) Cz"):
        embedder.transform(raw)


def test_nan_in_array_input_raises(embedder):
    epochs = make_epochs(2)
    X = epochs.get_data()
    X[0, 0, 10] = np.nan
    est = EEGFMEmbedder(
        model="lumamba-tiny", model_kwargs=TINY, info=epochs.info, device="cpu"
    )
    with pytest.raises(ValueError, match="NaN"):
        est.fit_transform(X)


def test_flat_channel_warns_and_result_is_finite(embedder):
    raw = make_raw()
    raw._data[2] = 3e-6  # a constant offset: flat
    with pytest.warns(RuntimeWarning, match=r"Flat channel\(s\) Pz"):
        windows = prepare(raw, CONTRACT)
    assert np.all(windows.data[:, 2] == 0)  # z-scored flat channel: zeros
    assert_finite(windows.data)
    with pytest.warns(RuntimeWarning, match=r"Flat channel\(s\) Pz"):
        out = embedder.transform(raw)
    assert_finite(out, n_rows=2)


def test_all_channels_flat_recording_is_not_evaluated():
    """#15: an all-flat recording gives no window, never a confident answer."""
    raw = make_raw()
    raw._data[:] = 4e-3  # a constant offset: flat everywhere
    with pytest.warns(RuntimeWarning, match="All 2 windows are flat"):
        windows = prepare(raw, CONTRACT)
    assert windows.data.shape[0] == 0
    assert windows.skipped == {"flat": 2} and windows.n_skipped == 2


@pytest.mark.parametrize(
    "factor, fragment", [(1e6, "1e6 too large"), (1e-6, "1e6 too small")]
)
def test_wrong_unit_warns_and_result_is_finite(embedder, factor, fragment):
    raw = make_raw()
    raw._data *= factor
    with pytest.warns(RuntimeWarning, match=f"wrong unit.*{fragment}"):
        out = embedder.transform(raw)
    assert_finite(out, n_rows=2)


def test_unit_scale_does_not_change_embedding_when_in_range(embedder):
    """z-scoring makes a x2 amplitude change invisible: no warning, same result."""
    raw = make_raw()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        a = embedder.transform(raw)
        raw._data *= 2
        b = embedder.transform(raw)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------------------
# Lengths


def test_recording_shorter_than_one_window_raises(embedder):
    raw = make_raw(duration=3.0)
    with pytest.raises(ValueError, match="shorter than one 5-s window"):
        prepare(raw, CONTRACT)
    with pytest.raises(ValueError, match="shorter than one 5-s window"):
        embedder.transform(raw)


def test_epochs_not_multiple_of_patch_are_cropped_with_warning(embedder):
    # 2.05 s at 256 Hz = 524.8 -> 525 samples: cropped to 520 (13 patches)
    epochs = make_epochs(3, sfreq=256.0, tlen=2.05)
    with pytest.warns(RuntimeWarning, match="not a multiple of 40.*520 samples"):
        windows = prepare(epochs, CONTRACT)
    assert windows.data.shape == (3, 4, 520)
    with pytest.warns(RuntimeWarning, match="not a multiple of 40"):
        out = embedder.transform(epochs)
    assert_finite(out, n_rows=3)


@pytest.mark.parametrize("sfreq", [128.0, 160.0, 250.0, 500.0])
def test_five_second_epochs_fill_one_window_at_any_rate(sfreq):
    """5 s of data is one 5-s window: no crop, no warning, whatever the rate."""
    raw = make_raw(sfreq=sfreq, duration=11.0)
    epochs = mne.make_fixed_length_epochs(
        raw, duration=5.0, preload=True, verbose=False
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # low-pass at 128/160 Hz
        warnings.filterwarnings("error", message="Epochs are")
        windows = prepare(epochs, CONTRACT)
    assert windows.data.shape == (2, 4, 1280)


def test_epochs_not_preloaded_are_read(embedder):
    """Lazy Epochs (MNE's default) work; the user's object stays lazy."""
    raw = make_raw(duration=11.0)
    epochs = mne.make_fixed_length_epochs(raw, duration=5.0, verbose=False)
    assert_finite(embedder.transform(epochs), n_rows=2)
    assert not epochs.preload


def test_epochs_longer_than_window_are_cropped_with_warning():
    epochs = make_epochs(2, tlen=7.0)
    with pytest.warns(RuntimeWarning, match="longer than the window.*1280 samples"):
        windows = prepare(epochs, CONTRACT)
    assert windows.data.shape == (2, 4, 1280)


def test_epochs_shorter_than_one_patch_raise():
    epochs = make_epochs(2, sfreq=256.0, tlen=0.1)
    with pytest.raises(ValueError, match="shorter than one 40-sample patch"):
        prepare(epochs, CONTRACT)


def test_empty_epochs_raise(embedder):
    epochs = make_epochs(3)
    epochs.drop([0, 1, 2], verbose=False)
    with pytest.raises(ValueError, match="holds no epoch"):
        embedder.transform(epochs)


# ---------------------------------------------------------------------------
# Sampling rates


def test_sampling_rate_too_low_for_lowpass_warns(embedder):
    raw = make_raw(sfreq=100.0)
    with pytest.warns(RuntimeWarning, match=r"too low for the contract's low-pass"):
        windows = prepare(raw, CONTRACT)
    assert windows.sfreq == 256.0
    assert windows.data.shape[1:] == (4, 1280)
    assert_finite(windows.data)


def test_very_high_sampling_rate_is_resampled(embedder):
    raw = make_raw(sfreq=5000.0, duration=10.5)
    windows = prepare(raw, CONTRACT)
    assert windows.sfreq == 256.0
    assert windows.data.shape == (2, 4, 1280)
    assert_finite(embedder.transform(raw), n_rows=2)


def test_high_and_native_rate_give_the_same_windows():
    """The same signal recorded at 1024 Hz and at 256 Hz gives the same windows."""
    sfreq = 1024.0
    raw_hi = make_raw(sfreq=sfreq, duration=11.0)
    raw_lo = raw_hi.copy().resample(256.0, method="polyphase", verbose=False)
    a = prepare(raw_hi, CONTRACT).data
    b = prepare(raw_lo, CONTRACT).data
    assert a.shape == b.shape
    # both low-passed at 75 Hz; the two resamplers differ slightly near 128 Hz
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.99


# ---------------------------------------------------------------------------
# Channels


def test_no_eeg_channel_left_raises(embedder):
    raw = make_raw(
        ["HEOG", "ECG", "STI 014", "ECG ECG1"],
        ch_types=["eog", "ecg", "stim", "eeg"],
    )
    with pytest.raises(ValueError, match="No EEG channel with a position is left"):
        embedder.transform(raw)


def test_duplicate_channel_names_renamed_by_mne_are_named_in_the_error():
    with pytest.warns(RuntimeWarning, match="not unique"):
        info = mne.create_info(["Fz", "Cz", "Cz"], 256.0, "eeg")
    with pytest.raises(ValueError, match="Cz-0, Cz-1"):
        get_positions(info)


def test_two_spellings_of_one_electrode_raise():
    info = mne.create_info(["Fz", "Cz", "EEG CZ-REF"], 256.0, "eeg")
    with pytest.raises(
        ValueError, match="'Cz' and 'EEG CZ-REF' are the same electrode"
    ):
        get_positions(info)


def test_unknown_channel_raises_by_default(embedder):
    raw = make_raw(["Fz", "Cz", "Pz", "XYZ1"])
    with pytest.raises(ValueError, match=r"No position for 1 channel\(s\): XYZ1"):
        embedder.transform(raw)


def test_unknown_channel_warn_drops_it(embedder):
    raw = make_raw(["Fz", "Cz", "Pz", "XYZ1"])
    est = EEGFMEmbedder(
        model="lumamba-tiny", model_kwargs=TINY, on_missing="warn", device="cpu"
    )
    with pytest.warns(RuntimeWarning, match="XYZ1"):
        out = est.transform(raw)
    assert_finite(out, n_rows=2)
    ref = embedder.transform(raw.copy().drop_channels(["XYZ1"]))
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)


def test_unknown_channel_drop_is_silent_and_logged():
    info = mne.create_info(["Fz", "Cz", "XYZ1"], 256.0, "eeg")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        picks, names, _ = get_positions(info, on_missing="drop")
    assert names == ["Fz", "Cz"]
    assert picks.tolist() == [0, 1]


@pytest.mark.parametrize("bad", [np.nan, 0.0])
def test_invalid_digitised_positions_fall_back_to_the_name(bad):
    """A NaN or all-zero digitised position is never used; the name is."""
    info = mne.create_info(["Fz", "Cz", "Pz"], 256.0, "eeg")
    _, _, template = get_positions(info)
    digitised = template + np.float32(0.01)  # valid digitisations are preferred
    for ch, pos in zip(info["chs"], digitised):
        ch["loc"][:3] = pos
        ch["coord_frame"] = mne.io.constants.FIFF.FIFFV_COORD_HEAD
    info["chs"][1]["loc"][:3] = bad
    _, _, positions = get_positions(info)
    assert np.isfinite(positions).all()
    np.testing.assert_allclose(positions[[0, 2]], digitised[[0, 2]], atol=1e-6)
    np.testing.assert_allclose(positions[1], template[1], atol=1e-6)


@pytest.mark.parametrize("bad", [np.nan, 0.0])
def test_invalid_position_and_unknown_name_raises(bad):
    info = mne.create_info(["Fz", "Cz", "E17"], 256.0, "eeg")
    for ch, pos in zip(info["chs"], ([0, 0.05, 0.07], [0, 0, 0.09], [bad] * 3)):
        ch["loc"][:3] = pos
        ch["coord_frame"] = mne.io.constants.FIFF.FIFFV_COORD_HEAD
    with pytest.raises(ValueError, match=r"No position for 1 channel\(s\): E17"):
        get_positions(info)


def test_single_channel_gives_finite_embedding(embedder):
    raw = make_raw(["Cz"])
    assert_finite(embedder.transform(raw), n_rows=2)


def test_non_ascii_channel_name_is_named_in_the_error():
    info = mne.create_info(["Fz", "Électrode-ü"], 256.0, "eeg")
    with pytest.raises(ValueError, match="Électrode-ü"):
        get_positions(info)


# ---------------------------------------------------------------------------
# The model itself: tensors it cannot use are refused with our message.


@pytest.mark.parametrize(
    "case, match",
    [
        ("nan_x", "NaN|finite"),
        ("nan_positions", "positions.*NaN"),
        ("length", "T=1300 samples is not a positive multiple"),
        ("positions_shape", "positions must have shape"),
        ("no_channels", "channel"),
        ("float64", "dtype|float32"),
    ],
)
def test_model_refuses_unusable_tensors(tiny_model, case, match):
    x = torch.randn(2, 3, 1280)
    pos = torch.rand(3, 3) * 0.1
    if case == "nan_x":
        x[0, 1, 7] = float("nan")
    elif case == "nan_positions":
        pos[1, 0] = float("nan")
    elif case == "length":
        x = torch.randn(2, 3, 1300)
    elif case == "positions_shape":
        pos = torch.rand(4, 3)
    elif case == "no_channels":
        x, pos = torch.randn(2, 0, 1280), torch.zeros(0, 3)
    elif case == "float64":
        x = x.double()
    with torch.no_grad(), pytest.raises(ValueError, match=match):
        tiny_model.embed(x, pos)


def test_model_empty_batch_gives_empty_output(tiny_model):
    with torch.no_grad():
        out = tiny_model.embed(torch.randn(0, 3, 1280), torch.rand(3, 3))
    assert tuple(out.shape) == (0, D_TINY)


# ---------------------------------------------------------------------------
# Labels


def test_labels_of_one_class_raise():
    clf = EEGFMClassifier(model="lumamba-tiny", model_kwargs=TINY, max_epochs=1)
    with pytest.raises(ValueError, match="at least 2 classes.*only one class"):
        clf.fit(make_epochs(4), ["a"] * 4)


def test_mismatched_X_and_y_raise():
    epochs = make_epochs(4)
    clf = EEGFMClassifier(
        model="lumamba-tiny",
        model_kwargs=TINY,
        max_epochs=1,
        info=epochs.info,
        device="cpu",
    )
    with pytest.raises(ValueError, match="X has 4 samples but y has 3 labels"):
        clf.fit(epochs.get_data(), ["a", "b", "a"])
    with pytest.raises(ValueError, match="X has 4 samples but y has 5 labels"):
        clf.fit(epochs, ["a", "b", "a", "b", "a"])


# ---------------------------------------------------------------------------
# Files


@pytest.fixture
def edf_file(tmp_path):
    raw = make_raw(["Fz", "Cz", "Pz", "O1"], duration=12.0)
    fname = tmp_path / "ok.edf"
    raw.export(fname, verbose=False)
    return fname


def _n_records(fname):
    return int(Path(fname).read_bytes()[236:244])


def test_truncated_edf_warns_and_keeps_complete_records(edf_file, classifier_file):
    data = edf_file.read_bytes()
    trunc = edf_file.with_name("trunc.edf")
    trunc.write_bytes(data[: len(data) * 3 // 4])
    with pytest.warns(RuntimeWarning, match="does not match the file size"):
        raw = read_raw(trunc)
    assert 0 < raw.n_times < 12 * 256
    assert raw.n_times % 256 == 0  # whole 1-s records only
    out = edf_file.parent / "o"
    code, output = run_cli(
        ["predict", str(trunc), "--model", classifier_file, "--out", str(out)]
    )
    assert code == 0, output
    assert "warning: trunc.edf" in output
    assert "does not match the file size" in output
    assert (out / "trunc_desc-eegfm_predictions.tsv").is_file()


def test_edf_truncated_inside_header_raises_naming_the_file(edf_file):
    broken = edf_file.with_name("header-only.edf")
    broken.write_bytes(edf_file.read_bytes()[:200])
    with pytest.raises(ValueError, match="Could not read .*header-only.edf"):
        read_raw(broken)


@pytest.mark.parametrize("claimed", [3.0, 0.5, -1])
def test_edf_header_lying_about_length_uses_the_file_size(edf_file, claimed):
    data = bytearray(edf_file.read_bytes())
    n_records = _n_records(edf_file)
    value = -1 if claimed == -1 else int(n_records * claimed)
    data[236:244] = f"{value:<8d}".encode()
    liar = edf_file.with_name("liar.edf")
    liar.write_bytes(bytes(data))
    with pytest.warns(RuntimeWarning, match="does not match the file size"):
        raw = read_raw(liar)
    assert raw.n_times == n_records * 256


def test_edf_plus_d_is_refused(edf_file, classifier_file):
    data = bytearray(edf_file.read_bytes())
    data[192:197] = b"EDF+D"
    disc = edf_file.with_name("disc.edf")
    disc.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="discontinuous EDF\\+D"):
        read_raw(disc)
    code, output = run_cli(
        ["predict", str(disc), "--model", classifier_file, "--out", str(disc.parent)]
    )
    assert code == 1
    assert "disc.edf" in output and "discontinuous EDF+D" in output


def test_bids_root_without_eeg(tmp_path, classifier_file):
    root = tmp_path / "bids"
    (root / "sub-01" / "anat").mkdir(parents=True)
    (root / "dataset_description.json").write_text(
        '{"Name": "no eeg", "BIDSVersion": "1.9.0"}'
    )
    (root / "participants.tsv").write_text("participant_id\nsub-01\n")
    code, output = run_cli(["predict", str(root), "--model", classifier_file])
    assert code == 1
    assert "No EEG recording found in the BIDS dataset" in output
    assert not (root / "derivatives").exists()


def test_folder_of_mixed_readable_and_unreadable_files(
    edf_file, tmp_path, classifier_file
):
    folder = tmp_path / "recordings"
    folder.mkdir()
    edf_file.rename(folder / "ok.edf")
    (folder / "garbage.edf").write_bytes(os.urandom(3000))
    (folder / "empty.vhdr").write_text("")
    (folder / "notes.txt").write_text("not EEG")
    out = tmp_path / "out"
    code, output = run_cli(
        ["predict", str(folder), "--model", classifier_file, "--out", str(out)]
    )
    assert code == 1, output
    assert "2 of 3 recording(s) failed" in output
    assert "garbage.edf" in output and "empty.vhdr" in output
    tsv = out / "ok_desc-eegfm_predictions.tsv"
    assert tsv.is_file()
    import pandas as pd

    table = pd.read_csv(tsv, sep="\t")
    assert len(table) == 2
    assert np.isfinite(table.filter(like="proba_").to_numpy()).all()
    summary = pd.read_csv(out / "summary.tsv", sep="\t")
    assert sorted(summary["status"]) == ["failed", "failed", "ok"]


def test_non_ascii_file_and_channel_names(tmp_path, classifier_file):
    raw = make_raw(["Fz", "Cz", "Pz", "Électrode-ü"], duration=11.0)
    fname = tmp_path / "données_été-ü.set"  # EEGLAB keeps UTF-8 channel names
    raw.export(fname, verbose=False)
    out = tmp_path / "résultats"
    code, output = run_cli(
        ["predict", str(fname), "--model", classifier_file, "--out", str(out)]
    )
    assert code == 0, output
    assert "Électrode-ü" in output  # dropped with a warning that names it
    tsv = out / "données_été-ü_desc-eegfm_predictions.tsv"
    assert tsv.is_file(), sorted(p.name for p in out.iterdir())


def test_read_only_output_folder(tmp_path, classifier_file, edf_file, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    if os.geteuid() == 0:  # root ignores permission bits: simulate the refusal
        refuse_writes(monkeypatch, locked)
    code, output = run_cli(
        ["predict", str(edf_file), "--model", classifier_file, "--out", str(locked)]
    )
    assert code == 1
    assert f"Cannot write to the output folder {locked}" in output
    assert list(locked.iterdir()) == []


def test_saving_a_classifier_into_a_read_only_folder_names_it(tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root ignores permission bits")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    epochs = make_epochs(4)
    clf = EEGFMClassifier(
        model="lumamba-tiny", model_kwargs=TINY, max_epochs=1, validation_fraction=0
    ).fit(epochs, ["a", "b"] * 2)
    with pytest.raises(OSError, match="locked"):
        clf.save(locked / "model")


# ---------------------------------------------------------------------------
# Properties over random inputs

_FAST = settings(
    max_examples=5,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@_FAST
@given(
    names=st.lists(st.sampled_from(NAMES_1020), min_size=1, max_size=8, unique=True),
    order_seed=st.integers(0, 2**16),
)
def test_channel_subsets_and_orders(embedder, names, order_seed):
    """Any subset of 10-20 channels works, and channel order does not matter."""
    raw = make_raw(names, duration=5.5, seed=len(names))
    out = embedder.transform(raw)
    assert_finite(out, n_rows=1)
    order = np.random.default_rng(order_seed).permutation(len(names))
    shuffled = raw.copy().reorder_channels([names[i] for i in order])
    np.testing.assert_allclose(embedder.transform(shuffled), out, rtol=1e-3, atol=1e-4)


@_FAST
@given(
    duration=st.floats(0.2, 16.0),
    sfreq=st.sampled_from([100.0, 128.0, 250.0, 256.0, 500.0, 512.0]),
)
def test_random_lengths_and_rates(duration, sfreq):
    """Windows never extend past the end; too short is a clear error."""
    raw = make_raw(["Fz", "Cz"], sfreq=sfreq, duration=duration)
    length = raw.n_times / sfreq
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # 100 Hz low-pass warning
        if length < 5.0 - 1 / sfreq:
            with pytest.raises(ValueError, match="shorter than one 5-s window"):
                prepare(raw, CONTRACT)
            return
        windows = prepare(raw, CONTRACT)
    assert len(windows) == int((length + 1 / sfreq) // 5.0) or len(windows) == int(
        length // 5.0
    )
    assert np.all(windows.onsets + 5.0 <= length + 1 / sfreq + 1e-9)
    assert_finite(windows.data)


_SPELLINGS = {
    "Fp1": ["FP1", "fp1", "EEG Fp1", "EEG FP1-REF", "Fp1-LE", "FP1-AR", " Fp1 "],
    "T7": ["T3", "EEG T3-REF", "t7", "T7-A1"],
    "P8": ["T6", "EEG T6-REF", "P8"],
    "Cz": ["CZ", "cz", "EEG Cz-Ref", "Cz-AVG"],
    "O2": ["O2", "EEG O2-REF", "o2"],
}


@_FAST
@given(data=st.data())
def test_random_name_spellings_give_the_canonical_positions(data):
    canonical = sorted(_SPELLINGS)
    spelled = [data.draw(st.sampled_from(_SPELLINGS[name])) for name in canonical]
    _, _, expected = get_positions(mne.create_info(canonical, 256.0, "eeg"))
    _, names, positions = get_positions(mne.create_info(spelled, 256.0, "eeg"))
    assert names == spelled
    np.testing.assert_allclose(positions, expected, atol=1e-7)
