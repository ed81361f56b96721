"""Pretraining data pipeline and trainer: cache, sampling, exact resume, DDP."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import mne
import numpy as np
import pytest
import torch

from mne_eegfm.preprocessing import InputContract
from mne_eegfm.pretrain.data import (
    MontageBatchSampler,
    Recording,
    WindowDataset,
    cache_recordings,
    find_sources,
)
from mne_eegfm.pretrain.lejepa import sigreg
from mne_eegfm.pretrain.trainer import load_checkpoint, warmup_cosine

# A tiny run, shared by the in-process runs and the subprocesses: synthetic
# windows of two montages, a very small LuMamba, short LeJEPA views.
RUN = textwrap.dedent(
    """
    import os, sys, time
    import numpy as np
    import torch
    from mne_eegfm.models import create_model
    from mne_eegfm.pretrain.data import Recording, WindowDataset
    from mne_eegfm.pretrain.objectives import PretrainObjective
    from mne_eegfm.pretrain.trainer import pretrain

    def tiny_run(out, steps, resume=False, delay=0.0):
        torch.set_num_threads(1)
        rng = np.random.default_rng(0)
        recordings = [
            Recording(rng.standard_normal((n, c, 160)).astype(np.float32),
                      [f"E{i}" for i in range(c)],
                      rng.uniform(-0.08, 0.08, (c, 3)).astype(np.float32),
                      f"rec{k}", None)
            for k, (n, c) in enumerate([(9, 3), (7, 3), (10, 5)])
        ]
        dataset = WindowDataset(recordings)
        if delay:
            batch = dataset.batch
            dataset.batch = lambda pairs: (time.sleep(delay), batch(pairs))[1]
        torch.manual_seed(0)
        model = create_model("lumamba-tiny", num_queries=2, embed_dim=16,
                             num_blocks=1, d_state=4, expand=1)
        objective = PretrainObjective(local_patches=1, global_patches=2,
                                      num_slices=8)
        pretrain(model, dataset, out, objective=objective, steps=steps,
                 batch_size=4, lr=1e-3, warmup_steps=2, checkpoint_every=3,
                 seed=1, resume=resume, progress=False, verbose=False)
        return model

    if __name__ == "__main__":
        out, steps, delay = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
        model = tiny_run(out, steps, delay=delay)
        rank = int(os.environ.get("RANK", "0"))
        torch.save(model.state_dict(), os.path.join(out, f"final-rank{rank}.pt"))
    """
)
STEPS = 8


@pytest.fixture(scope="module")
def run_script(tmp_path_factory):
    path = tmp_path_factory.mktemp("script") / "tiny_run.py"
    path.write_text(RUN)
    return path


@pytest.fixture(scope="module")
def tiny_run(run_script):
    namespace = {}
    exec(compile(RUN, str(run_script), "exec"), namespace)
    threads = torch.get_num_threads()
    yield namespace["tiny_run"]
    torch.set_num_threads(threads)


def _env():
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _log(out):
    lines = (Path(out) / "log.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def test_warmup_cosine():
    assert warmup_cosine(0, 4, 100) == 0.25
    assert warmup_cosine(3, 4, 100) == 1.0
    assert np.isclose(warmup_cosine(52, 4, 100), 0.505)  # halfway: (1 + 0.01) / 2
    assert np.isclose(warmup_cosine(100, 4, 100), 0.01)


def test_sampler_deterministic_and_sharded():
    groups = [np.stack([np.zeros(10, int), np.arange(10)], 1), np.array([[1, 0]])]
    full = MontageBatchSampler(groups, 4, seed=3)
    epoch = full.epoch(0)
    assert full.batches_per_epoch() == len(epoch) == 4  # 3 + 1 batches
    assert all(len(b) == 4 and len({r for r, _ in b}) == 1 for b in epoch)
    seen = {tuple(p) for b in epoch for p in b}
    assert seen == {(0, i) for i in range(10)} | {(1, 0)}  # every window
    assert all(np.array_equal(a, b) for a, b in zip(epoch, full.epoch(0)))
    assert not all(np.array_equal(a, b) for a, b in zip(epoch, full.epoch(1)))
    shards = [MontageBatchSampler(groups, 4, 3, rank, 2).epoch(0) for rank in (0, 1)]
    assert [len(s) for s in shards] == [2, 2]
    merged = [b for pair in zip(*shards) for b in pair]
    assert all(np.array_equal(a, b) for a, b in zip(merged, epoch))
    with pytest.raises(ValueError, match="cannot be shared by 8"):
        MontageBatchSampler(groups, 4, 3, 0, 8).batches_per_epoch()


def test_dataset_groups_by_montage():
    def rec(n, names, shift=0.0):
        pos = np.arange(3 * len(names), dtype=np.float32).reshape(-1, 3) + shift
        return Recording(
            np.zeros((n, len(names), 80), np.float32), names, pos, "", None
        )

    dataset = WindowDataset(
        [
            rec(2, ["A", "B"]),
            rec(3, ["A", "B"]),
            rec(1, ["A", "B"], 0.01),
            rec(4, ["C"]),
        ]
    )
    assert len(dataset) == 10
    assert sorted(len(g) for g in dataset.groups) == [1, 4, 5]
    x, positions = dataset.batch(np.array([[0, 1], [1, 2]]))
    assert x.shape == (2, 2, 80) and positions.shape == (2, 3)


def _write_raw(path, names, seconds, sfreq=100.0):
    rng = np.random.default_rng(len(names))
    info = mne.create_info(names, sfreq, "eeg")
    data = 1e-5 * rng.standard_normal((len(names), int(seconds * sfreq)))
    mne.io.RawArray(data, info, verbose=False).save(path, verbose=False)


def test_cache_skips_bad_and_reuses(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    _write_raw(folder / "sub-01_raw.fif", ["Fz", "Cz", "Pz", "Oz"], 12)
    _write_raw(folder / "sub-02_raw.fif", ["C3", "C4"], 8)
    _write_raw(folder / "short_raw.fif", ["C3", "C4"], 1)  # shorter than a window
    (folder / "broken.edf").write_bytes(b"not an edf file")
    contract = InputContract(sfreq=64.0, l_freq=1.0, h_freq=20.0, window_s=2.5)
    sources = find_sources([folder])
    assert len(sources) == 4
    kept = find_sources([folder], holdout_subjects=["sub-01"])
    assert [s.path.name for s in kept] == [
        "broken.edf",
        "short_raw.fif",
        "sub-02_raw.fif",
    ]
    cache = tmp_path / "cache"
    with pytest.warns(RuntimeWarning, match="Skipping .*broken.edf"):
        recordings = cache_recordings(sources, contract, cache, overlap=0.5)
    assert len(recordings) == 2
    assert recordings[0].data.shape[1:] == (4, 160)
    assert isinstance(recordings[0].data, np.memmap)
    assert len(list(cache.iterdir())) == 2
    good = [s for s in sources if s.path.name.startswith("sub-")]
    mtimes = sorted(p.stat().st_mtime_ns for p in cache.glob("*/data.npy"))
    again = cache_recordings(good, contract, cache, overlap=0.5)
    assert sorted(p.stat().st_mtime_ns for p in cache.glob("*/data.npy")) == mtimes
    np.testing.assert_array_equal(again[0].data, recordings[0].data)
    # another contract is another cache entry
    other = InputContract(sfreq=64.0, l_freq=1.0, h_freq=25.0, window_s=2.5)
    cache_recordings(good[:1], other, cache)
    assert len(list(cache.iterdir())) == 3
    with pytest.warns(RuntimeWarning, match="Skipping"):
        with pytest.raises(ValueError, match="No usable recording"):
            cache_recordings(sources[:2], contract, cache)


@pytest.mark.slow
def test_killed_run_resumes_exactly(tmp_path, run_script, tiny_run):
    reference = tiny_run(tmp_path / "reference", STEPS)
    killed = tmp_path / "killed"
    killed.mkdir()
    proc = subprocess.Popen(
        [sys.executable, str(run_script), str(killed), str(STEPS), "0.5"],
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    log = killed / "log.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if log.is_file() and len(log.read_text().splitlines()) >= 4:
            break
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read().decode()
    assert len(log.read_text().splitlines()) >= 4, "no checkpoint in 300 s"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = load_checkpoint(killed / "checkpoint.pt")
    assert 3 <= saved["step"] < STEPS
    assert len(_log(killed)) > saved["step"]  # steps lost since the checkpoint
    with pytest.raises(ValueError, match="resume=True"):
        tiny_run(killed, STEPS)
    resumed = tiny_run(killed, STEPS, resume=True)
    for key, value in reference.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[key], value, rtol=0, atol=1e-6)
    log, ref_log = _log(killed), _log(tmp_path / "reference")
    assert [r["step"] for r in log] == list(range(1, STEPS + 1))
    np.testing.assert_allclose(
        [r["loss"] for r in log], [r["loss"] for r in ref_log], rtol=1e-6
    )
    final = load_checkpoint(killed / "checkpoint.pt")
    assert final["step"] == STEPS and set(final) >= {"optimizer", "scheduler", "epoch"}


DDP_CHECK = textwrap.dedent(
    """
    import os, sys
    import torch
    import torch.distributed as dist
    sys.path.insert(0, os.path.dirname(__file__))
    from tiny_run import tiny_run
    from mne_eegfm.pretrain.lejepa import sigreg

    out = sys.argv[1]
    model = tiny_run(out, 4)
    rank = dist.get_rank()
    torch.save(model.state_dict(), os.path.join(out, f"final-rank{rank}.pt"))
    emb = torch.load(os.path.join(out, "emb.pt"))
    half = emb[rank * 32:(rank + 1) * 32].clone().requires_grad_()
    value = sigreg(half, seed=5, num_slices=16)
    value.backward()
    torch.save({"value": value.detach(), "grad": half.grad},
               os.path.join(out, f"sigreg-rank{rank}.pt"))
    dist.destroy_process_group()
    """
)


@pytest.mark.slow
def test_ddp_two_cpu_processes(tmp_path, run_script):
    script = run_script.parent / "ddp_check.py"
    script.write_text(DDP_CHECK)
    emb = torch.randn(64, 8, generator=torch.Generator().manual_seed(0))
    torch.save(emb, tmp_path / "emb.pt")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(29500 + os.getpid() % 1000),
        str(script),
        str(tmp_path),
    ]
    result = subprocess.run(cmd, env=_env(), capture_output=True, timeout=180)
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    states = [torch.load(tmp_path / f"final-rank{r}.pt") for r in (0, 1)]
    for key, value in states[0].items():
        assert torch.equal(value, states[1][key]), key
    settings = json.loads(load_checkpoint(tmp_path / "checkpoint.pt")["settings"])
    assert settings["world_size"] == 2
    assert [r["step"] for r in _log(tmp_path)] == [1, 2, 3, 4]
    # SIGReg of each rank's half equals SIGReg of the whole batch, and so do
    # the gradients (all-reduce is differentiable)
    full = emb.clone().requires_grad_()
    expected = sigreg(full, seed=5, num_slices=16)
    expected.backward()
    parts = [torch.load(tmp_path / f"sigreg-rank{r}.pt") for r in (0, 1)]
    for rank, part in enumerate(parts):
        torch.testing.assert_close(part["value"], expected.detach())
        # DDP averages the ranks' gradients: each rank holds W x its share
        torch.testing.assert_close(
            part["grad"] / 2, full.grad[rank * 32 : (rank + 1) * 32]
        )
    assert sigreg(emb[:32], seed=5, num_slices=16) != expected
