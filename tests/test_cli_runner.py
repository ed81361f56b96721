"""Resume, summaries, temporaries and recording discovery of the command line."""

import json
import os
import time
import warnings

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mne_eegfm.cli import main
from mne_eegfm.cli._runner import n_workers, warning_notes
from mne_eegfm.io import find_recordings, remove_stale_temporaries


def _run(args, expect=0):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == expect, result.output
    return result


def _proba(out, stem):
    table = pd.read_csv(out / f"{stem}_desc-eegfm_predictions.tsv", sep="\t")
    return table["proba_Epilepsy"].to_numpy()


def _save(make_raw, fname, seed):
    make_raw(duration=10.0, seed=seed).save(fname, overwrite=True, verbose=False)


def test_replaced_model_or_input_is_recomputed(make_raw, model_factory, tmp_path):
    model = model_factory(tmp_path / "model", seed=0)
    fname = tmp_path / "rec_raw.fif"
    _save(make_raw, fname, seed=1)
    out = tmp_path / "out"
    args = ["predict", fname, "--model", model, "--out", out]
    _run(args)
    first = _proba(out, "rec_raw")
    assert "up to date" in _run(args).output
    # the model file replaced at the same path: recomputed with the new weights
    model_factory(tmp_path / "model", seed=5)
    output = _run(args).output
    assert "up to date" not in output
    second = _proba(out, "rec_raw")
    assert not np.allclose(first, second)
    meta = json.loads((out / "rec_raw_desc-eegfm_predictions.json").read_text())
    assert len(meta["MneEegfm"]["settings"]["weights_sha256"]) == 64
    # the recording replaced by one of the same size and modification time
    stat = fname.stat()
    _save(make_raw, fname, seed=2)
    os.utime(fname, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert fname.stat().st_size == stat.st_size
    assert "up to date" not in _run(args).output
    assert not np.allclose(second, _proba(out, "rec_raw"))
    assert "up to date" in _run(args).output


def test_summary_is_merged_across_runs(make_raw, tiny_model, tmp_path):
    out = tmp_path / "out"
    names = []
    for seed in (1, 2):
        fname = tmp_path / f"rec{seed}_raw.fif"
        _save(make_raw, fname, seed)
        names.append(fname.name)
        _run(["predict", fname, "--model", tiny_model, "--out", out])
    summary = pd.read_csv(out / "summary.tsv", sep="\t")
    assert sorted(summary["source"]) == names
    _run(["predict", tmp_path / names[0], "--model", tiny_model, "--out", out])
    summary = pd.read_csv(out / "summary.tsv", sep="\t")
    assert sorted(summary["source"]) == names and len(summary) == 2


def test_no_machine_paths_written(make_raw, tiny_model, tmp_path):
    fname = tmp_path / "data" / "rec_raw.fif"
    fname.parent.mkdir()
    _save(make_raw, fname, seed=1)
    out = tmp_path / "out"
    _run(["predict", fname.parent, "--model", tiny_model, "--out", out, "--report"])
    _run(["embed", fname.parent, "--model", tiny_model, "--out", out])
    for written in out.rglob("*"):
        if written.suffix in (".tsv", ".json", ".html"):
            assert str(tmp_path) not in written.read_text(encoding="utf-8"), written
    with np.load(out / "rec_raw_desc-eegfm_embeddings.npz") as data:
        assert str(data["source"]) == "rec_raw.fif"
        assert str(tmp_path) not in str(data["settings"])


def test_stale_temporaries_are_removed(make_raw, tiny_model, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    stale = out / ".tmp-0123abcd-rec_desc-eegfm_predictions.tsv"
    fresh = out / ".tmp-89abcdef-other.tsv"
    foreign = out / ".tmp-notours.tsv"
    for path in (stale, fresh, foreign):
        path.write_text("partial")
    old = time.time() - 7200
    for path in (stale, foreign):
        os.utime(path, (old, old))
    fname = tmp_path / "rec_raw.fif"
    _save(make_raw, fname, seed=1)
    _run(["predict", fname, "--model", tiny_model, "--out", out])
    assert not stale.exists() and fresh.exists() and foreign.exists()
    assert remove_stale_temporaries(out, older_than_s=0) == [fresh]


def test_workers_capped_by_recordings_and_cores():
    cores = os.cpu_count() or 1
    assert n_workers(-1, 3) == min(3, cores)
    assert n_workers(64, 1000) == cores
    assert n_workers(4, 1) == 1


def test_warning_notes_keep_whole_messages():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            warnings.warn("first line\n  second line", RuntimeWarning, stacklevel=1)
        warnings.warn("old", DeprecationWarning, stacklevel=1)
    assert warning_notes(caught) == ["first line second line"]


def test_find_recordings_every_format(tmp_path):
    files = [
        "a.edf", "b.BDF", "c.vhdr", "c.vmrk", "c.eeg", "d.set", "d.fdt",
        "e_raw.fif", "f.lay", "f.dat", "NK0001.EEG", "notes.txt", ".hidden.edf",
        "derivatives/x.edf", "sub/g.gdf", "h.cnt",
    ]  # fmt: skip
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "egi.mff").mkdir()
    (tmp_path / "egi.mff" / "signal1.bin").write_bytes(b"x")
    found = [p.relative_to(tmp_path).as_posix() for p in find_recordings(tmp_path)]
    assert found == [
        "NK0001.EEG", "a.edf", "b.BDF", "c.vhdr", "d.set", "e_raw.fif", "egi.mff",
        "f.lay", "h.cnt", "sub/g.gdf",
    ]  # fmt: skip


@pytest.mark.parametrize("command", ["predict", "embed"])
def test_rerun_does_not_import_torch(make_raw, tiny_model, tmp_path, command):
    """'Up to date' is decided from the files alone: no model is loaded."""
    import subprocess
    import sys

    fname = tmp_path / "rec_raw.fif"
    _save(make_raw, fname, seed=1)
    out = tmp_path / "out"
    _run([command, fname, "--model", tiny_model, "--out", out])
    code = (
        "import sys\nfrom mne_eegfm.cli import main\n"
        f"try:\n    main([{command!r}, {str(fname)!r}, '--model', {tiny_model!r},"
        f" '--out', {str(out)!r}])\nexcept SystemExit as e:\n"
        "    print('torch' in sys.modules, e.code)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert proc.stdout.split()[-2:] == ["False", "0"], proc.stdout + proc.stderr
    assert "up to date" in proc.stdout


def test_header_from_sidecar_when_workers_predict(tiny_model, monkeypatch):
    """With worker processes, the parent reads the card and loads no model."""
    import importlib
    from types import SimpleNamespace

    from mne_eegfm.cli._runner import model_card

    predict_cmd = importlib.import_module("mne_eegfm.cli.predict")

    def no_load(*args):
        raise AssertionError("the model was loaded in the parent")

    monkeypatch.setattr(predict_cmd, "_load", no_load)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    plan = SimpleNamespace(spec=tiny_model, todo=["a", "b"])
    card, labels = predict_cmd._card_and_labels(plan, n_jobs=2)
    assert card == model_card(tiny_model) and labels == card["labels"]
    assert len(labels) == 2
