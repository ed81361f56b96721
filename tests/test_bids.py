import json

import pytest

from mne_eegfm import bids
from mne_eegfm.utils import atomic_path


@pytest.fixture(scope="module")
def gb_root(data_path):
    return data_path / "guinea-bissau-bids"


def test_is_bids_root(data_path, tmp_path):
    assert bids.is_bids_root(data_path / "formats" / "tiny_bids")
    assert not bids.is_bids_root(data_path / "formats")
    assert not bids.is_bids_root(tmp_path / "missing")


def test_find_recordings_filters(gb_root):
    paths = bids.find_recordings(
        gb_root, subjects=["001", "sub-002"], tasks="restingstate"
    )
    assert [p.subject for p in paths] == ["001", "002"]
    assert all(p.fpath.suffix == ".edf" and p.fpath.is_file() for p in paths)
    assert len(bids.find_recordings(gb_root)) == 97


def test_find_recordings_errors(gb_root, tmp_path):
    with pytest.raises(ValueError, match="No EEG recording found.*subject=\\['999'\\]"):
        bids.find_recordings(gb_root, subjects="999")
    (tmp_path / "dataset_description.json").write_text('{"Name": "x"}')
    (tmp_path / "sub-01" / "anat").mkdir(parents=True)
    (tmp_path / "sub-01" / "anat" / "sub-01_T1w.nii").write_bytes(b"")
    with pytest.raises(ValueError, match="No EEG recording found in the BIDS dataset"):
        bids.find_recordings(tmp_path)
    with pytest.raises(ValueError, match="not a BIDS root"):
        bids.find_recordings(tmp_path / "sub-01")


def test_subject_labels(gb_root, tmp_path):
    labels = bids.subject_labels(gb_root, "group")
    assert len(labels) == 97
    assert set(labels.values()) == {"Epilepsy", "Control"}
    assert labels["001"] == "Epilepsy"
    with pytest.raises(ValueError, match="no column 'diagnosis'.*group"):
        bids.subject_labels(gb_root, "diagnosis")
    (tmp_path / "participants.tsv").write_text(
        "participant_id\tgroup\nsub-01\tA\nsub-02\tn/a\nsub-03\t\n"
    )
    assert bids.subject_labels(tmp_path, "group") == {"01": "A"}


def test_derivative_names(data_path, tmp_path):
    root = data_path / "formats" / "tiny_bids"
    (path,) = bids.find_recordings(root)
    deriv = bids.derivatives_root(tmp_path)
    out = bids.derivative_path(path, deriv, "predictions", ".tsv")
    assert out == (
        tmp_path
        / "derivatives/mne-eegfm/sub-01/ses-eeg/eeg"
        / "sub-01_ses-eeg_task-rest_desc-eegfm_predictions.tsv"
    )
    fname = bids.write_dataset_description(deriv, root)
    desc = json.loads(fname.read_text())
    assert desc["DatasetType"] == "derivative"
    assert desc["GeneratedBy"][0]["Name"] == "mne-eegfm"
    assert "not a diagnostic device" in desc["GeneratedBy"][0]["Description"]
    assert desc["SourceDatasets"][0]["URL"] == "bids:raw:"
    assert (deriv / desc["DatasetLinks"]["raw"]).resolve() == root.resolve()


def test_code_url_only_when_the_package_declares_one(data_path, tmp_path, monkeypatch):
    root = data_path / "formats" / "tiny_bids"
    deriv = bids.derivatives_root(tmp_path)
    monkeypatch.setattr(bids, "_code_url", lambda: None)
    desc = json.loads(bids.write_dataset_description(deriv, root).read_text())
    assert "CodeURL" not in desc["GeneratedBy"][0]
    monkeypatch.setattr(bids, "_code_url", lambda: "https://example.org/code")
    desc = json.loads(bids.write_dataset_description(deriv, root).read_text())
    assert desc["GeneratedBy"][0]["CodeURL"] == "https://example.org/code"


def test_read_recording_tiny_bids(data_path):
    (path,) = bids.find_recordings(data_path / "formats" / "tiny_bids")
    raw = bids.read_recording(path)
    assert raw.info["sfreq"] > 0
    # electrode positions come from the BIDS sidecar
    assert raw.get_montage() is not None


def test_atomic_path_keeps_old_file_on_error(tmp_path):
    fname = tmp_path / "sub" / "out.tsv"
    bids.write_text(fname, "old\n")
    with pytest.raises(RuntimeError):
        with atomic_path(fname) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert fname.read_text() == "old\n"
    assert [p.name for p in fname.parent.iterdir()] == ["out.tsv"]
