"""Second bad-input round (#15, phase 2): damaged files, datasets, ``pretrain``.

Each case named in the module docstring of tests/test_bad_inputs.py.
"""

import errno
import json
import os
from pathlib import Path

import pytest
from _helpers import noise_raw, refuse_writes
from click.testing import CliRunner

from mne_eegfm.cli import main

NAMES = ["Fz", "Cz", "Pz", "O1"]


def run_cli(args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.output


def _raw(n_channels=4, seconds=12.0, sfreq=128.0):
    return noise_raw(NAMES[:n_channels], sfreq, seconds)


def _predict(tmp_path, model, *args):
    return run_cli(["predict", *args, "--model", model, "--out", tmp_path / "out"])


def test_truncated_fif_is_one_line_naming_the_file(tmp_path, tiny_model):
    fname = tmp_path / "cut_raw.fif"
    _raw(seconds=30.0).save(tmp_path / "full_raw.fif", verbose=False)
    data = (tmp_path / "full_raw.fif").read_bytes()
    fname.write_bytes(data[: len(data) // 2])
    code, output = _predict(tmp_path, tiny_model, fname)
    assert code == 1
    assert "cut_raw.fif is truncated" in output
    assert "buffer size" not in output and "Traceback" not in output


def test_edf_with_negative_record_duration_names_the_file(tmp_path, tiny_model):
    fname = tmp_path / "neg.edf"
    _raw().export(fname, verbose=False)
    header = bytearray(fname.read_bytes())
    header[244:252] = b"-1      "
    fname.write_bytes(bytes(header))
    code, output = _predict(tmp_path, tiny_model, fname)
    assert code == 1
    assert "neg.edf: the header gives a data record duration of -1 s" in output
    assert "is -40 s long" not in output


def test_report_on_a_one_channel_recording(tmp_path, tiny_model):
    fname = tmp_path / "one.edf"
    _raw(n_channels=1, seconds=30.0).export(fname, verbose=False)
    code, output = _predict(tmp_path, tiny_model, fname, "--report")
    assert code == 0, output
    for suffix in ("predictions.tsv", "predictions.json", "report.html"):
        assert (tmp_path / "out" / f"one_desc-eegfm_{suffix}").is_file()


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "0"])
def test_window_not_a_length_is_refused(tmp_path, tiny_model, value):
    fname = tmp_path / "r.edf"
    _raw().export(fname, verbose=False)
    code, output = _predict(tmp_path, tiny_model, fname, "--window", value)
    assert code == 2 and "--window" in output
    assert not (tmp_path / "out").exists()


def test_window_differing_from_the_model_warns_naming_both(tmp_path, tiny_model):
    fname = tmp_path / "r.edf"
    _raw(seconds=30.0).export(fname, verbose=False)
    code, output = _predict(tmp_path, tiny_model, fname, "--window", "2")
    assert code == 0, output
    assert "Windows of 2 s were requested" in output


def test_empty_model_name_is_one_line(tmp_path):
    fname = tmp_path / "r.edf"
    _raw().export(fname, verbose=False)
    code, output = run_cli(["predict", fname, "--model", "", "--out", tmp_path])
    assert code == 1 and "The model name is empty" in output


@pytest.fixture
def bids_root(tmp_path):
    from mne_bids import BIDSPath, write_raw_bids

    root = tmp_path / "ds"
    raw = _raw(seconds=12.0)
    raw.set_montage("standard_1005")
    path = BIDSPath(subject="01", task="rest", root=root, datatype="eeg")
    write_raw_bids(raw, path, format="EDF", allow_preload=True, verbose=False)
    return root


@pytest.mark.parametrize("text", ["{not json", "[1, 2]"], ids=["json", "list"])
def test_invalid_dataset_description_is_one_line(bids_root, tiny_model, text):
    (bids_root / "dataset_description.json").write_text(text)
    code, output = run_cli(["predict", bids_root, "--model", tiny_model])
    assert code != 0
    assert "dataset_description.json" in output and "Traceback" not in output
    assert not (bids_root / "derivatives").exists()


def test_read_only_bids_dataset_is_read(bids_root, tiny_model, monkeypatch):
    """A read-only mount: any write under the dataset fails with EROFS."""
    before = sorted(p.relative_to(bids_root) for p in bids_root.rglob("*"))
    inside = str(bids_root.resolve())
    real_open, real_mkdir = os.open, os.mkdir
    writes = os.O_WRONLY | os.O_RDWR | os.O_CREAT

    def refuse(path):
        if str(Path(path).resolve()).startswith(inside):
            raise OSError(errno.EROFS, "Read-only file system", str(path))

    def guarded_open(path, flags, *args, **kwargs):
        if flags & writes:
            refuse(path)
        return real_open(path, flags, *args, **kwargs)

    def guarded_mkdir(path, *args, **kwargs):
        refuse(path)
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", guarded_open)
    monkeypatch.setattr(os, "mkdir", guarded_mkdir)
    code, output = run_cli(["predict", bids_root, "--model", tiny_model,
                            "--out", bids_root.parent / "out"])  # fmt: skip
    assert code == 0, output
    assert sorted(p.relative_to(bids_root) for p in bids_root.rglob("*")) == before


# ---------------------------------------------------------------------------
# pretrain

TINY = ["-m", "num_blocks=1", "-m", "embed_dim=16", "-m", "num_queries=2"]


@pytest.fixture
def recording(tmp_path):
    fname = tmp_path / "data" / "rec.edf"
    fname.parent.mkdir()
    _raw(seconds=30.0).export(fname, verbose=False)
    return fname.parent


def _pretrain(data, out, *args):
    return run_cli(["pretrain", data, "--out", out, "--sfreq", 128, "--h-freq", 40,
                    "--window-s", 5, "--batch-size", 2, *TINY, *args])  # fmt: skip


def test_pretrain_read_only_out(recording, tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    refuse_writes(monkeypatch, locked)
    code, output = _pretrain(recording, locked)
    assert code == 2 and f"cannot write into {locked}" in output


@pytest.mark.parametrize(
    "args, match",
    [(["--batch-size", 0], "--batch-size"), (["--config", "bogus"], "unknown model")],
)
def test_pretrain_bad_arguments_are_one_line(recording, tmp_path, args, match):
    code, output = _pretrain(recording, tmp_path / "out", *args)
    assert code == 2 and match in output
    assert "Traceback" not in output


def test_pretrain_disk_full_while_caching_fails_loudly(
    recording, tmp_path, monkeypatch
):
    from mne_eegfm.pretrain import data

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(data, "_write_entry", full)
    code, output = _pretrain(recording, tmp_path / "out", "--steps", 1)
    assert code == 1
    assert "No space left on device" in output and "nothing was trained" in output
    assert not (tmp_path / "out" / "model.safetensors").exists()


@pytest.mark.slow
def test_pretrain_resumes_after_a_partial_log_line(recording, tmp_path):
    out = tmp_path / "out"
    args = ["--checkpoint-every", 1, "--seed", 0]
    code, output = _pretrain(recording, out, "--steps", 2, *args)
    assert code == 0, output
    log = out / "log.jsonl"
    log.write_text(log.read_text() + '{"step": 3, "lo')
    code, output = _pretrain(recording, out, "--steps", 3, "--resume", *args)
    assert code == 0, output
    steps = [json.loads(line)["step"] for line in log.read_text().splitlines()]
    assert steps == sorted(steps) and steps[-1] == 3
