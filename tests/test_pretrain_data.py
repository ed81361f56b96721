"""Held-out subjects, channel augmentation, mixed-montage batches, precision."""

import json

import numpy as np
import pytest
import torch

from mne_eegfm.models import create_model
from mne_eegfm.models.precision import resolve_precision
from mne_eegfm.pretrain import heldout
from mne_eegfm.pretrain.data import (
    MixedBatchSampler,
    Recording,
    WindowDataset,
    channel_subset,
    find_sources,
    mixed_batch,
)
from mne_eegfm.pretrain.objectives import PretrainModule, PretrainObjective
from mne_eegfm.pretrain.trainer import pretrain


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_heldout_lists():
    assert len(heldout.GUINEA_BISSAU) == 24 == len(set(heldout.GUINEA_BISSAU))
    assert "S003" in heldout.EEGMMIDB and len(heldout.EEGMMIDB) == 14


def test_heldout_recordings_refused(tmp_path):
    mi = _touch(tmp_path / "eegmmidb" / "S004" / "S004R03.edf")
    mi_set = _touch(tmp_path / "eegbci" / "S003_R01_raw.set")
    gb = _touch(tmp_path / "guinea-bissau" / "sub-008_task-restingstate_eeg.edf")
    kept = [
        _touch(tmp_path / "eegmmidb" / "S005" / "S005R03.edf"),
        _touch(tmp_path / "other" / "sub-008_task-rest_eeg.edf"),  # not GB
    ]
    assert heldout.heldout_subject(mi) == "eegmmidb S004"
    assert heldout.heldout_subject(mi_set) == "eegmmidb S003"
    assert heldout.heldout_subject(gb) == "guinea-bissau sub-008"
    assert [heldout.heldout_subject(p) for p in kept] == [None, None]
    with pytest.raises(ValueError, match=r"S004R03\.edf \(eegmmidb S004\)"):
        find_sources([tmp_path])
    sources = find_sources([tmp_path], heldout="exclude")
    assert sorted(s.path for s in sources) == sorted(kept)
    with pytest.warns(RuntimeWarning, match="3 recording"):
        assert len(find_sources([tmp_path], heldout="allow")) == 5
    with pytest.raises(ValueError, match="heldout must be"):
        find_sources([tmp_path], heldout="yes")


@pytest.mark.parametrize("n_chan", [1, 3, 14, 64])
def test_channel_subset_never_empty_and_seeded(n_chan):
    for seed in range(50):
        kept = channel_subset(
            n_chan, np.random.default_rng(seed), 16, min_channels=4, drop_prob=0.9
        )
        assert min(4, n_chan) <= len(kept) <= min(16, n_chan)
        assert np.all(np.diff(kept) > 0) and kept.max() < n_chan
        again = channel_subset(
            n_chan, np.random.default_rng(seed), 16, min_channels=4, drop_prob=0.9
        )
        np.testing.assert_array_equal(kept, again)
    full = channel_subset(n_chan, np.random.default_rng(0), None, n_chan, 0.0)
    np.testing.assert_array_equal(full, np.arange(n_chan))
    with pytest.raises(ValueError, match="drop_prob"):
        channel_subset(n_chan, np.random.default_rng(0), drop_prob=1.0)


def _dataset():
    rng = np.random.default_rng(0)
    recordings = [
        Recording(
            rng.standard_normal((n, c, 160)).astype(np.float32),
            [f"E{i}" for i in range(c)],
            rng.uniform(-0.08, 0.08, (c, 3)).astype(np.float32),
            f"rec{k}",
            None,
        )
        for k, (n, c) in enumerate([(9, 3), (7, 6), (10, 5)])
    ]
    return WindowDataset(recordings)


def test_mixed_batches_mix_montages_with_masks():
    dataset = _dataset()
    sampler = MixedBatchSampler(dataset.groups, batch_size=8, seed=3)
    batches = sampler.epoch(0)
    assert len(batches) == sampler.batches_per_epoch() == 4
    assert any(len({len(dataset.recordings[r].ch_names) for r, _ in b}) > 1
               for b in batches)  # fmt: skip
    seen = np.concatenate(batches)
    assert len({tuple(p) for p in seen}) == len(dataset)  # every window, wrapped
    for a, b in zip(batches, MixedBatchSampler(dataset.groups, 8, seed=3).epoch(0)):
        np.testing.assert_array_equal(a, b)
    pairs = batches[0]
    x, pos, mask = mixed_batch(
        dataset, pairs, np.random.default_rng(1), max_channels=4, min_channels=2,
        drop_prob=0.3, crop_samples=80,
    )  # fmt: skip
    assert x.shape == (8, mask.sum(1).max(), 80) and pos.shape == (*mask.shape, 3)
    assert mask.sum(1).min() >= 2 and mask.sum(1).max() <= 4
    assert not x[~mask].any() and not pos[~mask].any()
    # real rows are channels of the window, in the same crop
    rec, win = pairs[0]
    source = dataset.recordings[rec].data[win]
    row = x[0][mask[0]]
    found = [
        (c, s)
        for r in row
        for c in range(source.shape[0])
        for s in range(81)
        if np.array_equal(source[c, s : s + 80], r)
    ]
    assert len(found) == len(row) and len({s for _, s in found}) == 1
    assert len({c for c, _ in found}) == len(row)


def _tiny_model():
    torch.manual_seed(0)
    return create_model(
        "lumamba-tiny", num_queries=2, embed_dim=16, num_blocks=1, d_state=4, expand=1
    )


def _run(out, precision, objective):
    model = _tiny_model()
    batches = {"mixed": True, "max_channels": 4, "min_channels": 2,
               "channel_dropout": 0.2, "precision": precision}  # fmt: skip
    pretrain(
        model, _dataset(), out, objective=objective, steps=3, batch_size=4,
        warmup_steps=1, checkpoint_every=2, seed=0, batches=batches,
        progress=False, verbose=False,
    )  # fmt: skip
    lines = (out / "log.jsonl").read_text().splitlines()
    return model, [json.loads(line)["loss"] for line in lines]


def test_mixed_spectral_run_and_precision(tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    objective = PretrainObjective("spectral", sfreq=64.0, segment_patches=2)
    try:
        model, losses = _run(tmp_path / "float32", "float32", objective)
        assert len(losses) == 3 and np.isfinite(losses).all()
        assert "bandpower" in (tmp_path / "float32" / "log.jsonl").read_text()
        # float32 is the default: the same run without the option is identical
        model_default = _tiny_model()
        pretrain(
            model_default, _dataset(), tmp_path / "default", objective=objective,
            steps=3, batch_size=4, warmup_steps=1, checkpoint_every=2, seed=0,
            batches={"mixed": True, "max_channels": 4, "min_channels": 2,
                     "channel_dropout": 0.2},
            progress=False, verbose=False,
        )  # fmt: skip
        for key, value in model.state_dict().items():
            torch.testing.assert_close(model_default.state_dict()[key], value)
        if resolve_precision("auto", torch.device("cpu")) == "bfloat16":
            model, bf16 = _run(tmp_path / "bfloat16", "bfloat16", objective)
            np.testing.assert_allclose(bf16, losses, rtol=0.1)
            assert all(p.dtype == torch.float32 for p in model.parameters())
        else:  # no fast bfloat16 on this CPU: refused, naming the reason
            with pytest.raises(ValueError, match="bfloat16"):
                _run(tmp_path / "bfloat16", "bfloat16", objective)
        with pytest.raises(ValueError, match="precision"):
            _run(tmp_path / "bad", "float16x", objective)
    finally:
        torch.set_num_threads(threads)


def test_bfloat16_step_finite():
    """The objective under bfloat16 autocast (the CUDA and AMX path)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        objective = PretrainObjective("spectral", sfreq=64.0, segment_patches=2)
        module = PretrainModule(_tiny_model(), objective)
        x, pos, mask = mixed_batch(
            _dataset(), np.array([[0, 0], [2, 1], [1, 3]]), np.random.default_rng(0),
            max_channels=5, min_channels=2,
        )  # fmt: skip
        args = (torch.from_numpy(x), torch.from_numpy(pos), torch.from_numpy(mask))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss, parts = module(*args, torch.Generator().manual_seed(0), 0)
        loss.backward()
        assert torch.isfinite(loss) and set(parts) >= {"recon", "bandpower"}
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        assert grads and all(g.dtype == torch.float32 for g in grads)
        assert all(torch.isfinite(g).all() for g in grads)
    finally:
        torch.set_num_threads(threads)


def test_pretrain_command_refuses_heldout(tmp_path):
    from click.testing import CliRunner

    from mne_eegfm.pretrain.command import pretrain as command

    data = tmp_path / "eegmmidb"
    _touch(data / "S010" / "S010R04.edf")
    out = tmp_path / "out"
    result = CliRunner().invoke(command, [str(data), "--out", str(out)])
    assert result.exit_code == 2
    assert "S010R04.edf (eegmmidb S010)" in result.output
    assert "--exclude-heldout" in result.output
    assert not (out / "run.json").exists()


def test_pretrain_command_checks_lejepa_options(tmp_path):
    from click.testing import CliRunner

    from mne_eegfm.pretrain.command import pretrain as command

    for option, value in (("--view-channels", "0"), ("--lejepa-lambda", "2")):
        args = [str(tmp_path), "--out", str(tmp_path / "out"), option, value]
        result = CliRunner().invoke(command, args)
        assert result.exit_code == 2 and option in result.output


def test_pretrain_init_continues_from_a_model_file(tmp_path):
    import mne
    from click.testing import CliRunner

    from mne_eegfm.checkpoints import load_model
    from mne_eegfm.pretrain.command import pretrain as command

    rng = np.random.default_rng(0)
    info = mne.create_info(["Fz", "Cz", "Pz", "Oz"], 128.0, "eeg")
    raw = mne.io.RawArray(rng.standard_normal((4, 128 * 30)) * 1e-5, info)
    raw.export(tmp_path / "rec.edf", verbose=False)
    common = ["--sfreq", "128", "--h-freq", "40", "--window-s", "5", "--steps", "1",
              "--batch-size", "2", "--objective", "recon"]  # fmt: skip
    tiny = ["-m", "num_blocks=1", "-m", "embed_dim=16", "-m", "num_queries=2"]
    first = tmp_path / "first"
    runner = CliRunner()
    args = [str(tmp_path / "rec.edf"), "--out", str(first), *common, *tiny]
    assert runner.invoke(command, args).exit_code == 0
    start = first / "model.safetensors"
    second = tmp_path / "second"
    args = [str(tmp_path / "rec.edf"), "--out", str(second), "--init", str(start),
            "--lr", "0", *common]  # fmt: skip
    result = runner.invoke(command, args)
    assert result.exit_code == 0, result.output
    before, after = load_model(start), load_model(second / "model.safetensors")
    for key, value in before.state_dict().items():  # lr 0: the weights it started from
        assert torch.equal(value, after.state_dict()[key]), key
    card = json.loads((second / "model.json").read_text())["card"]
    assert card["pretraining"]["init"]["sha256"] == before.card.weights_sha256
    for written in (second / "model.json", second / "run.json"):  # no machine paths
        assert str(tmp_path) not in written.read_text()
    data = card["pretraining"]["data"][0]  # relative to the output folder
    assert (second / data).resolve() == (tmp_path / "rec.edf").resolve()
    result = runner.invoke(command, [*args, "--config", "lumamba-tiny"])
    assert (
        result.exit_code == 2 and "--init takes the model's own config" in result.output
    )
