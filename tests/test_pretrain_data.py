"""Held-out subjects, channel augmentation, mixed-montage batches, precision."""

import numpy as np
import pytest
import torch

from mne_eegfm.models import create_model
from mne_eegfm.pretrain import heldout
from mne_eegfm.pretrain.data import (
    MixedBatchSampler,
    Recording,
    WindowDataset,
    channel_subset,
    find_sources,
    mixed_batch,
)
from mne_eegfm.pretrain.objectives import PretrainObjective
from mne_eegfm.pretrain.trainer import (
    precision_context,
    pretrain,
    resolve_training_precision,
)


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


def test_mixed_spectral_run_and_precision(tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        objective = PretrainObjective("spectral", sfreq=64.0, segment_patches=2)
        losses = {}
        for precision in ("float32", "bfloat16"):
            model = _tiny_model()
            batches = {"mixed": True, "max_channels": 4, "min_channels": 2,
                       "channel_dropout": 0.2, "precision": precision}  # fmt: skip
            pretrain(
                model, _dataset(), tmp_path / precision, objective=objective,
                steps=3, batch_size=4, warmup_steps=1, checkpoint_every=2,
                seed=0, batches=batches, progress=False, verbose=False,
            )  # fmt: skip
            lines = (tmp_path / precision / "log.jsonl").read_text().splitlines()
            losses[precision] = [float(line.split('"loss": ')[1].split(",")[0])
                                 for line in lines]  # fmt: skip
            assert all(np.isfinite(losses[precision]))
            assert all(p.dtype == torch.float32 for p in model.parameters())
        np.testing.assert_allclose(losses["bfloat16"], losses["float32"], rtol=0.1)
    finally:
        torch.set_num_threads(threads)


def test_precision_resolution():
    cpu = torch.device("cpu")
    assert resolve_training_precision("float32", cpu) == "float32"
    assert resolve_training_precision("auto", cpu) in ("float32", "bfloat16")
    with pytest.raises(ValueError, match="precision"):
        resolve_training_precision("float16x", cpu)
    x = torch.randn(4, 4)
    with precision_context("float32", cpu):
        assert (x @ x).dtype == torch.float32  # float32 path unchanged


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
