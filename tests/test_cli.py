"""The mne-eegfm command line on real files (CliRunner and real subprocesses)."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mne_eegfm.cli import EXAMPLE_FILE, main

LABELS = ["Control", "Epilepsy"]
GB = "guinea-bissau-bids"


def _run(args, expect=0):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == expect, result.output
    return result


def _cli_command():
    script = shutil.which("mne-eegfm")
    return [script] if script else [sys.executable, "-m", "mne_eegfm.cli"]


def _subprocess(args, expect=0):
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    proc = subprocess.run(
        _cli_command() + [str(a) for a in args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env,
        timeout=600,
    )
    assert proc.returncode == expect, proc.stdout + proc.stderr
    return proc


def _check_predictions(tsv, n_windows=None, window=5.0):
    table = pd.read_csv(tsv, sep="\t")
    assert list(table.columns) == ["onset", "duration", "label"] + [
        f"proba_{lab}" for lab in LABELS
    ]
    if n_windows is not None:
        assert len(table) == n_windows
    proba = table[[f"proba_{lab}" for lab in LABELS]].to_numpy()
    assert np.isfinite(proba).all() and (proba >= 0).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    assert (table["label"] == np.array(LABELS)[proba.argmax(axis=1)]).all()
    assert np.allclose(np.diff(table["onset"]), table["duration"].iloc[0])
    assert table["duration"].iloc[0] == pytest.approx(window, rel=0.05)
    return table


def _n_windows(n_in, sfreq, window=5.0):
    """Windows the contract gives for n_in samples at sfreq (256 Hz, 40-multiple)."""
    from fractions import Fraction

    ratio = Fraction(256.0 / sfreq).limit_denominator(10000)
    n_out = n_in * ratio.numerator // ratio.denominator
    n_times = int(window * 256) // 40 * 40
    return (n_out - n_times) // n_times + 1


def _expected_windows(fname, window=5.0):
    import mne

    raw = mne.io.read_raw(fname, verbose=False)
    return _n_windows(raw.n_times, raw.info["sfreq"], window)


def _no_temp_files(folder):
    leftovers = [p for p in Path(folder).rglob(".tmp-*")]
    assert not leftovers, leftovers


# ---------------------------------------------------------------------------
# Help, version, models, sys-info


def test_help_version_and_fast_import():
    out = _run(["--help"]).output
    commands = ("predict", "embed", "fit", "export", "models", "sys-info", "pretrain")
    for command in commands:
        assert command in out
    assert "mne-eegfm predict --example" in out
    assert "not a diagnostic device" in " ".join(out.split())
    from mne_eegfm import __version__

    assert _run(["--version"]).output.strip() == f"mne-eegfm {__version__}"
    help_predict = _run(["predict", "--help"]).output
    for option in ("--model", "--out", "--report", "--example", "--n-jobs"):
        assert option in help_predict
    code = (
        "import sys, mne_eegfm.cli; print('torch' in sys.modules, 'mne' in sys.modules)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert proc.stdout.split() == ["False", "False"]


def test_models_and_cards(tiny_model):
    out = _run(["models"]).output
    assert "lumamba-tiny-gb-epilepsy" in out and "luna-base" in out
    assert "256 Hz, band-pass 0.1-75.0 Hz" in out
    card = _run(["models", "--card", "lumamba-tiny-gb-epilepsy"]).output
    assert "not a diagnostic device" in card and "CC BY 4.0" in card
    card = _run(["models", "--card", tiny_model + ".safetensors"]).output
    assert "tiny-random" in card and "Epilepsy" in card
    assert "Unknown model" in _run(["models", "--card", "nope"], expect=1).output
    # Weights not on this machine: the registry's card, with where to get them.
    card = _run(["models", "--card", "luna-base"]).output
    assert "available: False" in card and "LUNA_base.safetensors" in card
    # An architecture (through the same resolve as load_model): untrained.
    card = _run(["models", "--card", "lumamba-tiny"]).output
    assert "Untrained architecture" in card and "256 Hz" in card


def test_models_card_damaged_sidecar(tiny_model, tmp_path):
    import shutil

    shutil.copy(tiny_model + ".safetensors", tmp_path / "bad.safetensors")
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    out = _run(["models", "--card", str(tmp_path / "bad.json")], expect=1).output
    assert "Cannot read the model card" in out and "bad.json" in out


def test_export_onnx(tiny_model, tmp_path):
    pytest.importorskip("onnxruntime")
    import torch

    from mne_eegfm import load_model
    from mne_eegfm.onnx_backend import OnnxModel

    out = tmp_path / "tiny.onnx"
    assert "Wrote" in _run(["export", tiny_model, "--onnx", out, "--window", 1]).output
    onnx_model = OnnxModel(out)
    assert onnx_model.n_times == 240 and onnx_model.has_head  # whole patches
    x, pos = torch.randn(2, 4, 240), torch.randn(4, 3) * 0.05
    with torch.no_grad():
        want = load_model(tiny_model)(x, pos).numpy()
    np.testing.assert_allclose(onnx_model(x.numpy(), pos.numpy()), want, atol=1e-4)
    assert "Could not load" in _run(["export", "nope", "--onnx", out], 1).output


def test_sys_info():
    out = _run(["sys-info"]).output
    assert "mne-eegfm" in out and "torch" in out and "mamba-ssm" in out


# ---------------------------------------------------------------------------
# predict: formats, BIDS, reports, re-runs


FORMATS = {
    "EDF": ("eeglab-sample-data/test_data/test.edf", 5.0),
    "BDF": ("mne-testing-data/BDF/test_bdf_stim_channel.bdf", 5.0),
    "BrainVision": ("eeglab-sample-data/test_data/testbva.vhdr", 5.0),
    "EEGLAB": ("eegbci-S003/processed/S003_R01_raw.set", 5.0),
    "FIF": ("mne-testing-data/montage/bv_dig_raw.fif", 0.5),
}


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_predict_formats(data_path, tiny_model, tmp_path, fmt):
    rel, window = FORMATS[fmt]
    fname = data_path / "formats" / rel
    out = tmp_path / "out"
    args = ["predict", fname, "--model", tiny_model, "--out", out]
    result = _run(args + ["--window", window])
    base = Path(rel).stem
    tsv = out / f"{base}_desc-eegfm_predictions.tsv"
    n_times = int(window * 256) // 40 * 40 / 256
    _check_predictions(tsv, _expected_windows(fname, n_times), window=n_times)
    summary = pd.read_csv(out / "summary.tsv", sep="\t")
    assert summary["status"].tolist() == ["ok"]
    assert summary["source"].tolist() == [fname.name]
    assert "not a diagnostic device" in result.output
    meta = json.loads((out / f"{base}_desc-eegfm_predictions.json").read_text())
    assert meta["MneEegfm"]["status"] == "complete"
    assert meta["Sources"] == [fname.name]
    _no_temp_files(out)


def test_predict_same_data_in_two_formats(data_path, tiny_model, tmp_path):
    """EEGBCI S003R01 as EDF and as EEGLAB .set hold the same samples."""
    edf = data_path / "formats/eegbci-S003/raw/S003R01.edf"
    eeglab = data_path / "formats/eegbci-S003/processed/S003_R01_raw.set"
    _run(["predict", edf, eeglab, "--model", tiny_model, "--out", tmp_path])
    a = _check_predictions(tmp_path / "S003R01_desc-eegfm_predictions.tsv", 12)
    b = _check_predictions(tmp_path / "S003_R01_raw_desc-eegfm_predictions.tsv", 12)
    np.testing.assert_allclose(a["proba_Epilepsy"], b["proba_Epilepsy"], atol=1e-3)


def test_predict_bids_subset_subprocess(data_path, tiny_model, tmp_path):
    """Three Guinea-Bissau subjects, read in place, written as BIDS derivatives."""
    root = data_path / GB
    out = tmp_path / "deriv"
    args = ["predict", root, "--subject", "001", "--subject", "sub-002"]
    args += ["--subject", "003", "--model", tiny_model, "--out", out, "--n-jobs", "2"]
    proc = _subprocess(args)
    assert "not a diagnostic device" in proc.stdout
    desc = json.loads((out / "dataset_description.json").read_text())
    assert desc["DatasetType"] == "derivative"
    assert desc["GeneratedBy"][0]["Name"] == "mne-eegfm"
    summary = pd.read_csv(out / "summary.tsv", sep="\t")
    assert len(summary) == 3 and (summary["status"] == "ok").all()
    for sub in ("001", "002", "003"):
        src = root / f"sub-{sub}/eeg/sub-{sub}_task-restingstate_eeg.edf"
        tsv = (
            out
            / f"sub-{sub}/eeg/sub-{sub}_task-restingstate_desc-eegfm_predictions.tsv"
        )
        table = _check_predictions(tsv, _expected_windows(src))
        row = summary.set_index("source").loc[str(src.relative_to(root))]
        assert row["n_windows"] == len(table) and row["n_skipped"] == 0
        for lab in LABELS:
            assert row[f"proba_{lab}"] == pytest.approx(table[f"proba_{lab}"].mean())
        assert row["label"] == max(LABELS, key=lambda lab: row[f"proba_{lab}"])
        assert f"sub-{sub}_task-restingstate_eeg.edf" in proc.stdout
    assert not list((data_path / GB).glob("derivatives"))


def test_predict_bids_report_and_rerun(data_path, tiny_model, tmp_path):
    root = data_path / "formats" / "tiny_bids"
    args = ["predict", root, "--model", tiny_model, "--out", tmp_path, "--window", "1"]
    _run(args + ["--report"])
    stem = tmp_path / "sub-01/ses-eeg/eeg/sub-01_ses-eeg_task-rest_desc-eegfm"
    tsv = Path(f"{stem}_predictions.tsv")
    table = _check_predictions(tsv, 2, window=240 / 256)
    html = Path(f"{stem}_report.html").read_text(encoding="utf-8")
    assert "Prediction timeline" in html and "Channel-unification attention" in html
    assert "not a diagnostic device" in html
    mtime = tsv.stat().st_mtime_ns
    assert "up to date" in _run(args + ["--report"]).output
    assert tsv.stat().st_mtime_ns == mtime
    _run(args + ["--overwrite"])
    assert tsv.stat().st_mtime_ns != mtime
    pd.testing.assert_frame_equal(pd.read_csv(tsv, sep="\t"), table)
    # other settings (window length) are not "up to date"
    args[-1] = "0.5"
    assert "up to date" not in _run(args).output
    _check_predictions(tsv, 4, window=120 / 256)
    _no_temp_files(tmp_path)


def test_predict_example_default_output(tiny_model, tmp_path, monkeypatch):
    """--example writes under a temporary folder, never the current folder."""
    cwd, temp = tmp_path / "cwd", tmp_path / "temp"
    cwd.mkdir()
    temp.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    out = _run(["predict", "--example", "--model", tiny_model]).output
    assert EXAMPLE_FILE.name in out and "tiny-random (Control vs Epilepsy)" in out
    assert "in-sample" not in out  # only said of the shipped classifier
    tsv = (
        temp / "mne-eegfm-example/sub-024_task-restingstate_desc-eegfm_predictions.tsv"
    )
    _check_predictions(tsv, _expected_windows(EXAMPLE_FILE))
    assert str(tsv) in out
    assert not list(cwd.iterdir())


# ---------------------------------------------------------------------------
# embed


def test_embed_npz_and_index(data_path, tiny_model, tmp_path):
    fname = data_path / "formats/eeglab-sample-data/test_data/test.edf"
    out = tmp_path / "emb"
    result = _run(["embed", fname, "--model", tiny_model, "--out", out])
    assert "test.edf" in result.output
    with np.load(out / "test_desc-eegfm_embeddings.npz", allow_pickle=False) as data:
        emb = data["embeddings"]
        assert emb.shape == (12, 32) and emb.dtype == np.float32  # 2 queries x 16
        assert np.isfinite(emb).all()
        np.testing.assert_allclose(data["pooled"], emb.mean(axis=0), rtol=1e-6)
        np.testing.assert_allclose(data["onsets"], np.arange(12) * 5.0)
        assert str(data["source"]) == fname.name
        assert len(data["ch_names"]) == 16
    index = pd.read_csv(out / "embeddings.tsv", sep="\t")
    assert index.loc[0, "n_windows"] == 12 and index.loc[0, "status"] == "ok"
    pooled = index[[f"emb_{i}" for i in range(32)]].to_numpy()[0]
    np.testing.assert_allclose(pooled, emb.mean(axis=0), rtol=1e-5)


# ---------------------------------------------------------------------------
# fit


def _small_bids(data_path, root, subjects, seconds=30.0, events=False):
    """A BIDS copy of a few Guinea-Bissau subjects, cropped (real samples)."""
    import mne

    src = data_path / GB
    root.mkdir()
    shutil.copy(src / "dataset_description.json", root)
    table = pd.read_csv(src / "participants.tsv", sep="\t", dtype=str)
    table = table[table["participant_id"].isin([f"sub-{s}" for s in subjects])]
    table.to_csv(root / "participants.tsv", sep="\t", index=False)
    for sub in subjects:
        name = f"sub-{sub}_task-restingstate_eeg.edf"
        raw = mne.io.read_raw_edf(src / f"sub-{sub}/eeg/{name}", verbose=False)
        start = 180.0 - seconds / 2 if events else 0.0
        raw.crop(start, start + seconds, include_tmax=False).load_data()
        if events:  # eyes closed for 3 min, then open (participants.tsv)
            raw.set_annotations(
                mne.Annotations([0, seconds / 2], [seconds / 2] * 2, ["closed", "open"])
            )
        (root / f"sub-{sub}/eeg").mkdir(parents=True)
        mne.export.export_raw(root / f"sub-{sub}/eeg/{name}", raw, verbose=False)
    return root


def test_fit_participants_then_predict(data_path, tiny_model, tmp_path):
    root = _small_bids(data_path, tmp_path / "bids", ["001", "002", "003", "005"])
    model = tmp_path / "group.eegfm"
    args = ["fit", root, "--target", "participants:group", "--out", model]
    args += ["--model", tiny_model, "--cv", "2", "--max-epochs", "2"]
    result = _run(args + ["--max-windows", "3"])
    assert "Subject-wise 2-fold cross-validation" in result.output
    assert "Reading: 100%" in result.output  # progress bars on stderr
    assert "Cross-validation: 100%" in result.output and "2/2" in result.output
    assert "balanced accuracy" in result.output and "ROC AUC" in result.output
    meta = json.loads(Path(f"{model}.json").read_text())
    card = meta["card"]
    assert card["labels"] == LABELS
    assert card["training_data"]["n_subjects"] == 4
    assert card["training_data"]["licence"] == "CC BY 4.0"
    cv = card["cross_validation"]
    assert cv["split"] == "subject-wise" and cv["recording"]["n"] == 4
    assert (
        cv["window"]["n"] == 12 and card["training_data"]["windows_per_recording"] == 3
    )
    assert 0 <= cv["recording"]["pooled"]["balanced_accuracy"] <= 1
    assert "not a diagnostic device" in card["disclaimer"]
    assert card["training_data"]["recordings_per_class"] == {
        "Control": 2,
        "Epilepsy": 2,
    }
    assert card["command"].startswith("mne-eegfm fit bids --target participants:group")
    assert "--model tiny-random" in card["command"]
    assert str(tmp_path) not in Path(f"{model}.json").read_text()
    assert "--cv 2" in card["command"]
    assert "use --overwrite" in _run(args, expect=1).output
    assert "--max-windows 3" in card["command"]
    out = tmp_path / "pred"
    _run(["predict", root, "--model", model, "--out", out])
    tsv = out / "sub-002/eeg/sub-002_task-restingstate_desc-eegfm_predictions.tsv"
    src = root / "sub-002/eeg/sub-002_task-restingstate_eeg.edf"
    _check_predictions(tsv, _expected_windows(src))


def test_fit_events(data_path, tiny_model, tmp_path):
    subjects = ["001", "005", "006"]  # eyes closed for 3 min, then open
    root = _small_bids(data_path, tmp_path / "bids", subjects, 20.0, events=True)
    model = tmp_path / "eyes"
    args = ["fit", root, "--target", "events", "--out", model, "--model", tiny_model]
    result = _run(args + ["--cv", "3", "--max-epochs", "1"])
    assert "per window" in result.output
    card = json.loads(Path(f"{model}.json").read_text())["card"]
    assert card["labels"] == ["closed", "open"]
    assert card["training_data"]["windows_per_class"] == {"closed": 6, "open": 6}


def test_fit_bad_target(data_path, tmp_path):
    root = data_path / GB
    out = _run(["fit", root, "--target", "group", "--out", tmp_path / "m"], 2).output
    assert "participants:COLUMN or events" in out
    args = ["fit", root, "--target", "participants:diagnosis", "--subject", "001"]
    out = _run(args + ["--out", tmp_path / "m"], expect=1).output
    assert "no column 'diagnosis'" in out


# ---------------------------------------------------------------------------
# Bad inputs (issue 8, CLI side)


def _edf_copy(tmp_path, name, edit=None, size=None):
    data = bytearray(EXAMPLE_FILE.read_bytes())
    if edit is not None:
        edit(data)
    path = tmp_path / name
    path.write_bytes(bytes(data[:size]))
    return path


def _set_field(offset, width, value):
    def edit(data):
        data[offset : offset + width] = f"{value:<{width}}".encode("ascii")

    return edit


def test_edf_plus_d_refused(data_path, tmp_path, tiny_model):
    bad = _edf_copy(tmp_path, "disc.edf", _set_field(192, 44, "EDF+D"))
    good = tmp_path / "good.edf"
    shutil.copy(data_path / "formats/eeglab-sample-data/test_data/test.edf", good)
    out = tmp_path / "out"
    result = _run(["predict", bad, good, "--model", tiny_model, "--out", out], 1)
    assert "disc.edf" in result.output and "discontinuous EDF+D" in result.output
    summary = pd.read_csv(out / "summary.tsv", sep="\t").set_index("status")
    assert summary.loc["failed", "source"] == bad.name
    assert "discontinuous" in summary.loc["failed", "error"]
    _check_predictions(out / "good_desc-eegfm_predictions.tsv", 12)
    assert not (out / "disc_desc-eegfm_predictions.tsv").exists()


def test_truncated_and_lying_edf(tmp_path, tiny_model):
    """MNE infers the length from the file size; the warning reaches the user."""
    data = EXAMPLE_FILE.read_bytes()
    header, n_records = int(data[184:192]), int(data[236:244])
    record = (len(data) - header) // n_records
    truncated = _edf_copy(tmp_path, "trunc.edf", size=header + 100 * record + 7)
    lying = _edf_copy(tmp_path, "lying.edf", _set_field(236, 8, "580"))
    out = tmp_path / "out"
    result = _run(["predict", truncated, lying, "--model", tiny_model, "--out", out])
    assert "trunc.edf" in result.output and "does not match the file size" in (
        result.output
    )
    _check_predictions(out / "trunc_desc-eegfm_predictions.tsv", _n_windows(12800, 128))
    _check_predictions(out / "lying_desc-eegfm_predictions.tsv", _n_windows(37120, 128))


def test_mixed_folder_continues_and_fails(data_path, tmp_path, tiny_model):
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(data_path / "formats/eeglab-sample-data/test_data/test.edf", folder)
    shutil.copy(data_path / "formats/eeglab-sample-data/test_data/test.bdf", folder)
    (folder / "garbage.edf").write_bytes(b"not an EDF file" * 20)
    (folder / "notes.txt").write_text("ignored")
    out = tmp_path / "out"
    result = _run(["predict", folder, "--model", tiny_model, "--out", out], expect=1)
    err = result.output
    assert "2 of 3 recording(s) failed" in err
    assert "garbage.edf" in err and "Could not read" in err
    assert "test.bdf" in err and "No EEG channel with a position" in err
    summary = pd.read_csv(out / "summary.tsv", sep="\t")
    assert sorted(summary["status"]) == ["failed", "failed", "ok"]
    _check_predictions(out / "test_edf_desc-eegfm_predictions.tsv", 12)
    assert "Traceback" not in err
    _no_temp_files(out)


def test_bids_root_without_eeg(tmp_path, tiny_model):
    root = tmp_path / "empty_bids"
    (root / "sub-01/anat").mkdir(parents=True)
    (root / "dataset_description.json").write_text('{"Name": "no EEG"}')
    out = _run(["predict", root, "--model", tiny_model], expect=1).output
    assert "No EEG recording found in the BIDS dataset" in out
    assert not (root / "derivatives").exists()


def test_non_ascii_names(data_path, tmp_path, tiny_model):
    folder = tmp_path / "données"
    folder.mkdir()
    fname = folder / "patiënt_Øre.edf"
    shutil.copy(data_path / "formats/eeglab-sample-data/test_data/test.edf", fname)
    out = tmp_path / "résultats"
    proc = _subprocess(["predict", fname, "--model", tiny_model, "--out", out])
    assert "patiënt_Øre.edf" in proc.stdout
    _check_predictions(out / "patiënt_Øre_desc-eegfm_predictions.tsv", 12)
    summary = pd.read_csv(out / "summary.tsv", sep="\t", encoding="utf-8")
    assert summary.loc[0, "source"] == fname.name


def test_read_only_output_folder(tmp_path, tiny_model, monkeypatch):
    out = tmp_path / "locked"
    out.mkdir()
    out.chmod(0o555)
    if os.geteuid() == 0:  # root ignores permissions: simulate the refusal

        def refuse(*args, **kwargs):
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr(tempfile, "mkstemp", refuse)
    try:
        args = ["predict", "--example", "--model", tiny_model, "--out", out]
        result = _run(args, expect=1)
    finally:
        out.chmod(0o755)
    assert f"Cannot write to the output folder {out}: Permission denied" in (
        result.output
    )
    assert "--out" in result.output
    assert list(out.iterdir()) == []


def test_predict_leaves_input_files_unchanged(data_path, tiny_model, tmp_path):
    """A writable copy of each input keeps its bytes and mtime after predict."""
    import hashlib
    import shutil

    sources = [
        data_path / "formats/eegbci-S003/raw/S003R01.edf",
        data_path / "formats/eegbci-S003/processed/S003_R01_raw.set",
    ]
    copies = [Path(shutil.copy2(src, tmp_path)) for src in sources]

    def state(path):
        return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns

    before = {path: state(path) for path in copies}
    _run(["predict", *copies, "--model", tiny_model, "--out", tmp_path / "out"])
    assert {path: state(path) for path in copies} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [*(p.name for p in copies), "out"]
    )


def _option_defaults(command):
    return {p.name: p.default for p in command.params}


@pytest.mark.parametrize(
    "command, library, names",
    [
        ("fit", "classifier", ["mode", "head", "max_epochs", "precision"]),
        ("predict", "classifier", ["overlap", "precision"]),
        ("embed", "embedder", ["overlap", "precision"]),
    ],
)
def test_cli_defaults_follow_the_library(command, library, names):
    """The fast-to-import commands repeat library defaults: they must agree."""
    import inspect

    from mne_eegfm import EEGFMClassifier, EEGFMEmbedder

    cls = {"classifier": EEGFMClassifier, "embedder": EEGFMEmbedder}[library]
    expected = inspect.signature(cls).parameters
    options = _option_defaults(main.commands[command])
    for name in names:
        assert options[name] == expected[name].default, name


def test_defaults_agree_with_the_registry():
    """The command line names the defaults without importing torch: same values."""
    from mne_eegfm import checkpoints
    from mne_eegfm.cli import _common

    assert _common.DEFAULT_MODEL == checkpoints.DEFAULT_MODEL
    assert _common.DEFAULT_CLASSIFIER == checkpoints.DEFAULT_CLASSIFIER
    windows = {
        checkpoints.load_model(name, verbose=False).contract.window_s
        for name in (checkpoints.DEFAULT_MODEL, checkpoints.DEFAULT_CLASSIFIER)
    }
    assert _common.shipped_windows() == sorted(windows) == [10.0]
    help_text = " ".join(_run(["predict", "--help"]).output.split())
    assert "10 s for every shipped model" in help_text
