"""BIDS derivatives the reference validator accepts; dataset-level input checks."""

import json
import os
import shutil
import stat
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import mne
import numpy as np
import pandas as pd
import pytest
from mne.channels import get_builtin_montages

from mne_eegfm import bids, events

CH_NAMES = ["Fp1", "Fp2", "F3", "F4", "C3", "C4", "O1", "O2"]


@pytest.fixture(scope="module")
def bids_root(tmp_path_factory):
    """A two-subject BIDS dataset (30-s EDF recordings) written by mne-bids."""
    from mne_bids import BIDSPath, write_raw_bids

    root = tmp_path_factory.mktemp("bids") / "ds"
    rng = np.random.default_rng(0)
    info = mne.create_info(CH_NAMES, 128.0, "eeg")
    raw = mne.io.RawArray(rng.standard_normal((8, 128 * 30)) * 1e-5, info)
    kind = "colin27_1005" if "colin27_1005" in get_builtin_montages() else None
    raw.set_montage(kind or "standard_1005")
    raw.set_meas_date(datetime(2020, 9, 13, 12, 26, 40, tzinfo=timezone.utc))
    raw.set_annotations(mne.Annotations([12.0], [3.0], ["BAD_muscle"]))
    for sub in ("01", "02"):
        path = BIDSPath(subject=sub, task="rest", root=root, datatype="eeg")
        write_raw_bids(raw, path, format="EDF", allow_preload=True, verbose=False)
    return root


def _write_outputs(bids_path, deriv, model):
    """Write every output of one recording as the CLI does (fake predictions)."""
    source = [bids.source_uri(bids_path)]
    onsets = np.array([0.0, 5.0, 15.0, 20.0])
    proba = np.array([0.8, 0.3, 0.4, 0.9])
    windows = pd.DataFrame({"onset": onsets, "duration": 5.0})
    windows["label"] = np.where(proba > 0.5, "Epilepsy", "Control")
    windows["proba_Control"] = 1 - proba
    windows["proba_Epilepsy"] = proba
    fname = bids.output_path(bids_path, deriv, "predictions")
    bids.write_tsv(fname, windows)
    bids.write_sidecar(
        fname,
        sources=source,
        provenance=model,
        description="Class probabilities per window.",
        columns={"label": "Predicted class", "proba_Control": "P(Control)"},
    )
    table = events.window_events(
        onsets,
        5.0,
        windows["label"],
        np.maximum(proba, 1 - proba),
        recording_duration=30.0,
        skipped=[(10.0, 5.0, "BAD_muscle")],
        background="Control",
    )
    fname = bids.output_path(bids_path, deriv, "events")
    events.write_events(fname, table)
    bids.write_sidecar(
        fname,
        sources=source,
        provenance=model,
        description="Events in the szCORE layout.",
        columns=events.COLUMN_DESCRIPTIONS,
    )
    fname = bids.output_path(bids_path, deriv, "embeddings")
    fname.parent.mkdir(parents=True, exist_ok=True)
    np.savez(fname, embeddings=np.zeros((4, 8), np.float32))
    bids.write_sidecar(
        fname, sources=source, provenance=model, description="Embeddings."
    )
    fname = bids.output_path(bids_path, deriv, "report")
    bids.write_text(fname, "<html><body>report</body></html>\n")
    bids.write_sidecar(fname, sources=source, provenance=model, description="Report")


def _validator_errors(folder):
    exe = shutil.which("bids-validator-deno")
    if exe is None:
        pytest.skip("bids-validator-deno not installed (pip install '.[test]')")
    out = subprocess.run(
        [exe, "--format", "json", str(folder)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    issues = json.loads(out.stdout)["issues"]["issues"]
    return [(i["code"], i.get("location")) for i in issues if i["severity"] == "error"]


def test_derivatives_pass_bids_validator(bids_root, tmp_path):
    deriv = tmp_path / "out" / "derivatives" / "mne-eegfm"
    model = bids.provenance("lumamba-tiny", "ab" * 32, model_version="1")
    bids.write_dataset_description(deriv, bids_root)
    for path in bids.find_recordings(bids_root):
        _write_outputs(path, deriv, model)
    summary = pd.DataFrame({"source": ["bids:raw:sub-01/eeg/x.edf"], "label": ["A"]})
    bids.write_tsv(deriv / "summary.tsv", summary)
    bids.write_sidecar(
        deriv / "summary.tsv", sources=["bids:raw:"], provenance=model, description="s"
    )
    assert _validator_errors(deriv) == []
    desc = json.loads((deriv / "dataset_description.json").read_text())
    assert desc["SourceDatasets"] == [{"URL": "bids:raw:"}]
    link = deriv / desc["DatasetLinks"]["raw"]
    assert link.resolve() == bids_root.resolve()
    sidecar = json.loads(
        (deriv / "sub-01/eeg/sub-01_task-rest_desc-eegfm_embeddings.json").read_text()
    )
    assert sidecar["Sources"] == ["bids:raw:sub-01/eeg/sub-01_task-rest_eeg.edf"]
    assert sidecar["ModelSHA256"] == "ab" * 32 and sidecar["SoftwareVersion"]
    outputs = [p for p in deriv.rglob("*") if p.is_file()]
    assert len(outputs) == 2 * 8 + 4  # 4 outputs + sidecars per recording
    for fname in outputs:  # no absolute path anywhere
        if fname.suffix != ".npz":
            assert str(tmp_path) not in fname.read_text(encoding="utf-8")


def test_sidecar_refuses_absolute_sources(tmp_path):
    model = bids.provenance(tmp_path / "model.safetensors", None)
    assert model["ModelName"] == "model.safetensors"
    with pytest.raises(ValueError, match="must be relative"):
        bids.write_sidecar(
            tmp_path / "x.tsv",
            sources=[str(tmp_path / "a.edf")],
            provenance=model,
            description="x",
        )


def _copy(root, tmp_path):
    copy = tmp_path / "ds"
    shutil.copytree(root, copy)
    return copy


@pytest.mark.parametrize(
    "content, match",
    [
        ("{not json", "dataset_description.json is not valid JSON"),
        ('["a", "b"]', "dataset_description.json must hold a JSON object.*list"),
    ],
)
def test_invalid_dataset_description(bids_root, tmp_path, content, match):
    root = _copy(bids_root, tmp_path)
    (root / "dataset_description.json").write_text(content)
    with pytest.raises(ValueError, match=match):
        bids.validate_bids_root(root)
    with pytest.raises(ValueError, match=match):
        bids.find_recordings(root)
    assert not (root / "derivatives").exists()


def test_ragged_participants(bids_root, tmp_path):
    root = _copy(bids_root, tmp_path)
    fname = root / "participants.tsv"
    lines = fname.read_text().splitlines()
    lines[2] += "\textra"
    fname.write_text("\n".join(lines) + "\n")
    match = "participants.tsv, line 3: 7 tab-separated fields where the header has 6"
    with pytest.raises(ValueError, match=match):
        bids.find_recordings(root)
    with pytest.raises(ValueError, match=match):
        bids.subject_labels(root, "sex")


def test_unknown_filters_list_existing_values(bids_root):
    with pytest.raises(ValueError, match="Unknown subject 99; it has: 01, 02"):
        bids.find_recordings(bids_root, subjects="sub-99")
    with pytest.raises(ValueError, match="Unknown task eyes; it has: rest"):
        bids.find_recordings(bids_root, tasks=["eyes"])
    with pytest.raises(ValueError, match="Unknown session 1; it has: none"):
        bids.find_recordings(bids_root, sessions="1")


def test_read_only_dataset(bids_root, tmp_path, monkeypatch):
    root = _copy(bids_root, tmp_path)
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    writes = []
    open_os = os.open

    def spy(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and str(path).startswith(
            str(root)
        ):
            writes.append(path)
        return open_os(path, flags, *args, **kwargs)

    modes = {p: p.stat().st_mode for p in root.rglob("*")}
    for path in [*modes, root]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    monkeypatch.setattr(os, "open", spy)
    try:
        for path in bids.find_recordings(root):
            raw = bids.read_recording(path)
            assert raw.get_montage() is not None
    finally:
        monkeypatch.undo()
        for path, mode in modes.items():
            path.chmod(mode)
        root.chmod(0o755)
    assert writes == []  # no lock or temporary file inside the source
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before


# ---------------------------------------------------------------------------
# Through the command line: predict and embed on a tiny BIDS input


def _cli(args, expect=0):
    from click.testing import CliRunner

    from mne_eegfm.cli import main

    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == expect, result.output
    return result


def test_cli_derivatives_pass_bids_validator(bids_root, tmp_path, tiny_model):
    out = tmp_path / "derivatives" / "mne-eegfm"
    common = [bids_root, "--model", tiny_model, "--out", out]
    _cli(["predict", *common, "--background", "Control"])
    _cli(["embed", *common])
    assert _validator_errors(out) == []
    stem = out / "sub-01" / "eeg" / "sub-01_task-rest_desc-eegfm"
    table = pd.read_csv(f"{stem}_events.tsv", sep="\t", keep_default_na=False)
    assert list(table.columns) == list(events.COLUMNS)
    skipped = table[table["eventType"] == events.NOT_EVALUATED]
    assert len(skipped) and skipped["reason"].str.contains("BAD_muscle").all()
    assert set(table["eventType"]) <= {"bckg", "Epilepsy", events.NOT_EVALUATED}
    assert (table["dateTime"] == "2020-09-13 12:26:40").all()
    sidecar = json.loads(Path(f"{stem}_events.json").read_text())
    assert sidecar["Sources"] == ["bids:raw:sub-01/eeg/sub-01_task-rest_eeg.edf"]
    assert sidecar["ModelName"] == "tiny-random" and len(sidecar["ModelSHA256"]) == 64
    meta = json.loads(Path(f"{stem}_predictions.json").read_text())
    assert meta["MneEegfm"]["files"]["events"].endswith("_desc-eegfm_events.tsv")


def test_predictions_to_annotations(bids_root, tiny_model):
    from mne_eegfm import EEGFMClassifier, predict

    raw = bids.read_recording(bids.find_recordings(bids_root)[0])
    result = predict(raw, EEGFMClassifier.load(tiny_model), on_missing="warn")
    annot = result.to_annotations(raw=raw, background="Control")
    table = result.events(raw=raw, background="Control")
    assert len(annot) == len(table)
    np.testing.assert_allclose(annot.duration, table["duration"], atol=1e-6)
    assert any(d.startswith("not_evaluated: ") for d in annot.description)
    raw.set_annotations(raw.annotations + annot)  # attaches to the recording
    assert raw.annotations.onset.max() < raw.times[-1]


@pytest.mark.parametrize("command", ["predict", "embed", "fit"])
def test_cli_refuses_invalid_dataset_description(bids_root, tmp_path, command):
    root = _copy(bids_root, tmp_path)
    (root / "dataset_description.json").write_text("{not json")
    args = [command, root]
    if command == "fit":
        args += ["--target", "participants:sex", "--out", tmp_path / "out" / "m"]
    result = _cli(args, expect=1)
    errors = [line for line in result.output.splitlines() if line.strip()]
    assert errors == [f"Error: {root / 'dataset_description.json'} is not valid "
                      "JSON: Expecting property name enclosed in double quotes: "
                      "line 1 column 2 (char 1)."]  # fmt: skip
    assert not (root / "derivatives").exists()
    assert not (tmp_path / "out").exists()
