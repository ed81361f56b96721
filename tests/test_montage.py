"""Electrode positions from any montage: names, digitisation, bipolar pairs."""

import warnings

import mne
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mne.utils import catch_logging

from mne_eegfm.montage import _template, get_positions, normalize_name

TCP_PAIRS = [
    "FP1-F7", "F7-T3", "T3-T5", "T5-O1", "FP2-F8", "F8-T4", "T4-T6", "T6-O2",
    "A1-T3", "T3-C3", "C3-CZ", "CZ-C4", "C4-T4", "T4-A2", "FP1-F3", "F3-C3",
    "C3-P3", "P3-O1", "FP2-F4", "F4-C4", "C4-P4", "P4-O2",
]  # fmt: skip


def _template_pos(name):
    return _template()[name.upper()][1]


def _read(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mne.io.read_raw(path, verbose="error")


def _check_valid(positions, n):
    assert positions.dtype == np.float32
    assert positions.shape == (n, 3)
    assert np.isfinite(positions).all()
    assert (np.linalg.norm(positions, axis=1) > 0.05).all()  # on a head, not 0
    assert (np.linalg.norm(positions, axis=1) < 0.2).all()


@pytest.mark.parametrize(
    "name, expected",
    [
        ("EEG FP1-REF", "Fp1"),
        ("EEG Fp1-Ref", "Fp1"),
        ("fp1", "Fp1"),
        ("Fc5.", "FC5"),
        ("Cz..", "Cz"),
        ("T3", "T7"),
        ("t4", "T8"),
        ("EEG T5-LE", "P7"),
        ("T6-AR", "P8"),
        ("FZ-AVG", "Fz"),
        ("C3-A2", "C3"),  # referential: ear suffix is the reference
        ("C3-M1", "C3"),
        ("FP1-F7", "Fp1-F7"),
        ("F7 - T3", "F7-T7"),
        ("A1-T3", "A1-T7"),  # an ear first is always a bipolar pair
        ("EEG T1-REF", None),
        ("foo", None),
        ("1", None),
    ],
)
def test_normalize_name(name, expected):
    assert normalize_name(name) == expected


@settings(max_examples=60, deadline=None)
@given(
    electrode=st.sampled_from(["Fp1", "FC5", "Cz", "T7", "P8", "AF3", "Oz", "TP10"]),
    upper=st.lists(st.booleans(), min_size=4, max_size=4),
    prefix=st.sampled_from(["", "EEG ", "eeg "]),
    suffix=st.sampled_from(["", "-REF", "-Ref", "-LE", "-AR", "-AVG", ".", ".."]),
)
def test_normalize_name_spellings(electrode, upper, prefix, suffix):
    spelled = "".join(
        c.upper() if up else c.lower() for c, up in zip(electrode, upper + [False])
    )
    assert normalize_name(prefix + spelled + suffix) == electrode


def test_normalize_name_bipolar_ear():
    assert normalize_name("T4-A2") == "T8"
    assert normalize_name("T4-A2", bipolar=True) == "T8-A2"
    assert normalize_name("EEG FP1-REF", bipolar=True) == "Fp1"


def test_tcp_bipolar_montage():
    info = mne.create_info(TCP_PAIRS, 256.0, "eeg")
    picks, names, pos = get_positions(info)
    assert names == TCP_PAIRS
    np.testing.assert_array_equal(picks, np.arange(22))
    _check_valid(pos, 22)
    old = {"T3": "T7", "T4": "T8", "T5": "P7", "T6": "P8"}
    for name, p in zip(TCP_PAIRS, pos):
        a, b = (old.get(e, e) for e in name.split("-"))
        mid = (_template_pos(a) + _template_pos(b)) / 2
        np.testing.assert_allclose(p, mid, atol=1e-6)
    # "T4-A2" is a pair in this montage, not T4 referenced to A2
    t4_a2 = pos[TCP_PAIRS.index("T4-A2")]
    assert np.linalg.norm(t4_a2 - _template_pos("T8")) > 0.005
    assert len({tuple(p) for p in pos}) == 22


def test_tuh_unipolar_names():
    names = [f"EEG {e}-REF" for e in "FP1 FP2 F7 T3 T4 T5 T6 CZ O1 A1".split()]
    names += ["EEG EKG1-REF", "EEG ROC-REF", "EEG PHOTIC-REF"]
    info = mne.create_info(names, 250.0, "eeg")
    with catch_logging() as log:
        _, kept, pos = get_positions(info, verbose="info")
    assert kept == names[:9]  # the ear reference A1 is left out
    text = log.getvalue()
    assert "EEG EKG1-REF" in text and "EEG PHOTIC-REF" in text
    assert "reference or ear channel(s) (A1, A2, M1, M2): EEG A1-REF" in text
    np.testing.assert_allclose(pos[3], _template_pos("T7"), atol=1e-6)


def test_referential_ear_suffix():
    info = mne.create_info(["Fp1-A1", "C3-A1", "C4-A2"], 200.0, "eeg")
    _, _, pos = get_positions(info)
    for p, e in zip(pos, ["Fp1", "C3", "C4"]):
        np.testing.assert_allclose(p, _template_pos(e), atol=1e-6)


def test_non_eeg_types_left_out_and_logged():
    info = mne.create_info(
        ["Fz", "Cz", "EOG1", "ECG", "STI 014", "Resp", "EMG"],
        100.0,
        ["eeg", "eeg", "eog", "ecg", "stim", "resp", "emg"],
    )
    with catch_logging() as log:
        picks, names, _ = get_positions(info, verbose="info")
    assert names == ["Fz", "Cz"]
    np.testing.assert_array_equal(picks, [0, 1])
    text = log.getvalue()
    for other in ("EOG1", "ECG", "STI 014", "Resp", "EMG"):
        assert other in text


def test_bad_channels_left_out():
    info = mne.create_info(["Fz", "Cz", "Pz"], 100.0, "eeg")
    info["bads"] = ["Cz"]
    with catch_logging() as log:
        picks, names, _ = get_positions(info, verbose="info")
    assert names == ["Fz", "Pz"] and list(picks) == [0, 2]
    assert "Cz" in log.getvalue()


def test_missing_channel_raise_warn_drop():
    info = mne.create_info(["Fz", "Cz", "X17"], 100.0, "eeg")
    with pytest.raises(ValueError, match="X17"):
        get_positions(info)
    with pytest.warns(RuntimeWarning, match="X17"):
        _, names, _ = get_positions(info, on_missing="warn")
    assert names == ["Fz", "Cz"]
    with catch_logging() as log:
        _, names, _ = get_positions(info, on_missing="drop", verbose="info")
    assert names == ["Fz", "Cz"] and "X17" in log.getvalue()
    with pytest.raises(ValueError, match="on_missing"):
        get_positions(info, on_missing="ignore")


def test_no_eeg_left():
    info = mne.create_info(["EOG", "ECG"], 100.0, ["eog", "ecg"])
    with pytest.raises(ValueError, match="No EEG channel"):
        get_positions(info)
    info = mne.create_info(["X1", "X2"], 100.0, "eeg")
    with pytest.raises(ValueError, match="No EEG channel"):
        get_positions(info, on_missing="drop")


def test_duplicate_normalised_names():
    info = mne.create_info(["Fp1", "EEG FP1-REF", "Cz"], 100.0, "eeg")
    with pytest.raises(ValueError, match="same electrode"):
        get_positions(info)
    info = mne.create_info(["T3", "T7"], 100.0, "eeg")
    with pytest.raises(ValueError, match="T7"):
        get_positions(info)


def test_nan_or_zero_positions_fall_back_to_names():
    info = mne.create_info(["Fz", "Cz", "Pz", "X1"], 100.0, "eeg")
    info["chs"][0]["loc"][:3] = np.nan
    info["chs"][1]["loc"][:3] = 0.0
    info["chs"][2]["loc"][:3] = [0.0, -0.05, 0.08]  # digitised: used as is
    info["chs"][3]["loc"][:3] = np.nan
    with pytest.raises(ValueError, match="X1"):
        get_positions(info)
    _, names, pos = get_positions(info, on_missing="drop")
    assert names == ["Fz", "Cz", "Pz"]
    np.testing.assert_allclose(pos[0], _template_pos("Fz"), atol=1e-6)
    np.testing.assert_allclose(pos[1], _template_pos("Cz"), atol=1e-6)
    np.testing.assert_allclose(pos[2], [0.0, -0.05, 0.08], atol=1e-7)


def test_biosemi_labels_are_not_ear_lobes():
    names = [f"A{i}" for i in range(1, 6)]
    info = mne.create_info(names, 100.0, "eeg")
    with pytest.raises(ValueError, match="A1, A2, A3"):
        get_positions(info)


# ---------------------------------------------------------------------------
# Real files


def test_edf_names(data_path):
    raw = _read(data_path / "formats/mne-testing-data/EDF/chtypes_edf.edf")
    with catch_logging() as log:
        picks, names, pos = get_positions(raw.info, verbose="info")
    assert names[0] == "EEG Fp1-Ref" and "EEG A2-Ref" not in names
    assert not any(n.startswith(("POL", "ECG", "SaO2")) for n in names)
    text = log.getvalue()
    assert "ECG ECG1" in text and "POL E" in text and "EEG A2-Ref" in text
    _check_valid(pos, len(names))
    assert [raw.ch_names[i] for i in picks] == names
    np.testing.assert_allclose(pos[0], _template_pos("Fp1"), atol=1e-6)


def test_edf_old_names(data_path):
    raw = _read(data_path / "formats/eeglab-sample-data/test_data/test.edf")
    _, names, pos = get_positions(raw.info)
    assert len(names) == 16
    np.testing.assert_allclose(pos[names.index("EEG T3")], _template_pos("T7"))


def test_eeglab_locs(data_path):
    folder = data_path / "formats/eeglab-sample-data"
    raw = _read(folder / "eeglab_data.set")
    with catch_logging() as log:
        picks, names, pos = get_positions(raw.info, verbose="info")
    assert "EOG1" not in names and "EOG1" in log.getvalue()
    assert len(names) == 30
    digitised = np.array([raw.info["chs"][i]["loc"][:3] for i in picks])
    np.testing.assert_allclose(pos, digitised, atol=1e-7)
    # the .locs file gives the same positions when applied explicitly
    montage = mne.channels.read_custom_montage(folder / "eeglab_chan32.locs")
    raw2 = raw.copy().set_montage(montage, on_missing="ignore")
    _, names2, pos2 = get_positions(raw2.info)
    assert names2 == names
    # .locs positions are on a unit sphere scaled to a head radius: same layout
    cos = (
        np.sum(pos * pos2, 1)
        / np.linalg.norm(pos, axis=1)
        / np.linalg.norm(pos2, axis=1)
    )
    assert cos.min() > 0.99


def test_fif_digitisation(data_path):
    raw = _read(data_path / "formats/mne-testing-data/montage/bv_dig_raw.fif")
    with catch_logging() as log:
        picks, names, pos = get_positions(raw.info, verbose="info")
    assert len(names) == 64 and "HEOG" not in names
    assert "64 digitised" in log.getvalue()
    digitised = np.array([raw.info["chs"][i]["loc"][:3] for i in picks])
    np.testing.assert_allclose(pos, digitised, atol=1e-7)
    # digitised, not the template
    assert np.abs(pos[0] - _template_pos(names[0])).max() > 1e-3


def test_brainvision(data_path):
    raw = _read(data_path / "formats/eeglab-sample-data/test_data/testbva.vhdr")
    _, names, pos = get_positions(raw.info)
    assert len(names) == 29 and "Ekg1" not in names and "Eog" not in names
    _check_valid(pos, 29)
    raw = _read(data_path / "formats/mne-testing-data/Brainvision/test_NO.vhdr")
    with pytest.raises(ValueError, match="No position for .*: 1, 2, 3"):
        get_positions(raw.info)


def test_tiny_bids_electrodes(data_path):
    mne_bids = pytest.importorskip("mne_bids")
    import pandas as pd

    root = data_path / "formats/tiny_bids"
    bids_path = mne_bids.BIDSPath(
        root=root, subject="01", session="eeg", task="rest", datatype="eeg"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = mne_bids.read_raw_bids(bids_path, verbose="error")
    # Two electrodes.tsv files match, so mne-bids leaves positions unset: apply
    # the (CapTrak, metres) one ourselves.
    tsv = root / "sub-01/ses-eeg/eeg/sub-01_ses-eeg_space-CapTrak_electrodes.tsv"
    table = pd.read_csv(tsv, sep="\t")
    eeg = set(raw.copy().pick("eeg").ch_names)
    ch_pos = {r.name: np.array([r.x, r.y, r.z]) for r in table.itertuples()}
    ch_pos = {name: xyz for name, xyz in ch_pos.items() if name in eeg}
    raw.set_montage(mne.channels.make_dig_montage(ch_pos, coord_frame="head"))
    picks, names, pos = get_positions(raw.info)
    # 69 minus ECG, HEOG, VEOG, GSR, Temperature and PO10 (bad in channels.tsv)
    assert len(names) == 63 and "PO10" not in names
    assert not {"ECG", "HEOG", "VEOG", "GSR"} & set(names)
    expected = np.array([ch_pos[n] for n in names])
    np.testing.assert_allclose(pos, expected, atol=1e-6)


def test_eegbci_dotted_names(data_path):
    raw = _read(data_path / "formats/eegbci-S003/raw/S003R01.edf")
    _, names, pos = get_positions(raw.info)
    assert len(names) == 64
    _check_valid(pos, 64)
    np.testing.assert_allclose(pos[names.index("Fc5.")], _template_pos("FC5"))
    np.testing.assert_allclose(pos[names.index("T10.")], _template_pos("T10"))


def test_guinea_bissau_emotiv(data_path):
    edf = "guinea-bissau-bids/sub-001/eeg/sub-001_task-restingstate_eeg.edf"
    raw = _read(data_path / edf)
    _, names, pos = get_positions(raw.info)
    assert len(names) == 14
    _check_valid(pos, 14)
    assert len({tuple(p) for p in pos}) == 14


def test_template_positions_match_reference_golden(reference_path):
    """Names resolve to the coordinates the reference implementation used."""
    import json

    from safetensors.numpy import load_file

    golden = reference_path / "golden"
    channels = json.loads((golden / "lumamba-tiny-22ch.json").read_text())["channels"]
    expected = load_file(golden / "lumamba-tiny-22ch.io.safetensors")["positions_m"]
    info = mne.create_info(channels, 256.0, "eeg")
    _, names, positions = get_positions(info)
    assert len(names) == 22
    np.testing.assert_allclose(positions, expected[0], atol=1e-7)
