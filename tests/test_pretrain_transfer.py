"""Task builders and scoring of benchmarks/transfer.py, on tiny synthetic data."""

import numpy as np
import pytest
import torch
from _helpers import load_benchmark

from mne_eegfm import InputContract, load_model
from mne_eegfm.models import create_model


@pytest.fixture(scope="module")
def transfer():
    return load_benchmark("transfer")


def test_event_labels(transfer):
    events = ["T0", "T1", "T2", "T0", "BAD"]
    assert list(transfer.event_labels(events, "mi-rest-move")) == [0, 1, 1, 0, -1]
    assert list(transfer.event_labels(events, "mi-left-right")) == [-1, 0, 1, -1, -1]


def test_eyes_labels(transfer):
    onsets = np.arange(0, 300, 10.0)
    labels = transfer.eyes_labels(onsets, 10.0, "closed-3min-then-open-2min", 5.0)
    assert (labels[onsets + 10 <= 175] == 1).all()
    assert (labels[onsets >= 185] == 0).all()
    assert list(labels[(onsets > 165) & (onsets < 185)]) == [-1, -1]
    flipped = transfer.eyes_labels(onsets, 10.0, "open-2min-then-closed-3min", 5.0)
    assert list(flipped[[0, 10, 11, 12, 13, -1]]) == [0, 0, -1, -1, 1, 1]
    with pytest.raises(ValueError, match="eyes_condition"):
        transfer.eyes_labels(onsets, 10.0, "closed-3min-then-closed-2min")


def _task(transfer, n_subjects=6, per_subject=8, n_chan=4, sfreq=64.0):
    rng = np.random.default_rng(0)
    n = n_subjects * per_subject
    y = np.tile([0, 1], n // 2)
    t = np.arange(160) / sfreq
    # class 1 carries a 10 Hz rhythm, class 0 a 3 Hz one: separable by band power
    freq = np.where(y == 1, 10.0, 3.0)[:, None, None]
    X = np.sin(2 * np.pi * freq * t) + 0.3 * rng.standard_normal((n, n_chan, 160))
    groups = np.repeat([f"s{i}" for i in range(n_subjects)], per_subject)
    positions = rng.uniform(-0.08, 0.08, (n_chan, 3)).astype(np.float32)
    return transfer.Task(
        "toy", X.astype(np.float32), y, groups, groups, positions,
        [f"E{i}" for i in range(n_chan)], sfreq,
    )  # fmt: skip


def test_folds_are_subject_wise(transfer):
    task = _task(transfer)
    folds = transfer.make_folds(task.y, task.groups, n_splits=3)
    assert len(folds) == 3
    for train, test in folds:
        assert not set(task.groups[train]) & set(task.groups[test])
    tested = np.sort(np.concatenate([test for _, test in folds]))
    np.testing.assert_array_equal(tested, np.arange(len(task.y)))


def test_probes_score_a_separable_task(transfer):
    pytest.importorskip("pyriemann")
    task = _task(transfer)
    folds = transfer.make_folds(task.y, task.groups, n_splits=3)
    bp = transfer.band_power(task.X, task.sfreq)
    assert bp.shape == (len(task.y), 4 * len(transfer.BANDS)) and np.isfinite(bp).all()
    scores = transfer.cross_validate(transfer.features_probe(bp, task), task, folds)
    assert scores.shape == (3, 2) and scores.min() > 0.9
    tangent = transfer.tangent_space(task.X)
    assert tangent.shape == (len(task.y), 4 * 5 // 2) and np.isfinite(tangent).all()
    scores = transfer.cross_validate(
        transfer.features_probe(tangent, task), task, folds
    )
    assert scores.shape == (3, 2)


def test_recording_scores_and_embeddings(transfer):
    proba = np.array([0.9, 0.7, 0.2, 0.4, 0.6, 0.1])
    y = np.array([1, 1, 0, 0, 1, 1])
    recs = np.array(["a", "a", "b", "b", "c", "c"])
    bacc, auc = transfer.fold_scores(proba, y, recs)  # a: 0.8, b: 0.3, c: 0.35
    assert bacc == pytest.approx(0.75) and auc == pytest.approx(1.0)
    task = _task(transfer, n_subjects=2, per_subject=2)
    torch.manual_seed(0)
    model = create_model(
        "lumamba-tiny", num_queries=2, embed_dim=16, num_blocks=1, d_state=4, expand=1
    )
    emb = transfer.embed(model, task.X, task.positions, batch_size=3)
    assert emb.shape == (4, model.embed_dim) and np.isfinite(emb).all()
    assert transfer.model_fingerprint(model) == transfer.model_fingerprint(model)
    table = transfer.markdown_table(
        {"toy": {"band power + LR": np.array([[0.8, 0.9], [0.6, 0.7]])}}, [task], "h"
    )
    assert (
        "| toy | 4 (2) | band power + LR | 0.700 +- 0.100 | 0.800 +- 0.100 |" in table
    )


def test_several_random_inits_are_averaged_fold_by_fold(transfer):
    inits = np.array([[[0.6, 0.7], [0.4, 0.5]], [[0.8, 0.9], [0.6, 0.7]]])
    assert transfer.by_fold(inits) == pytest.approx(np.array([[0.7, 0.8], [0.5, 0.6]]))
    results = {
        "toy": {
            "pretrained + LR": np.array([[0.7, 0.8], [0.7, 0.8]]),
            "random init + LR": inits[0],
            "random inits + LR (mean)": inits,
        }
    }
    (line,) = transfer.verdict(results)
    assert "vs random init +0.200 (goal >= +0.05)" in line
    assert "vs the mean of 2 random inits +0.100 (inits 0.500-0.700)" in line


def test_query_head_rows_get_their_own_verdict(transfer, tmp_path):
    results = {
        "toy": {
            "pretrained + query head": np.array([[0.8, 0.9], [0.6, 0.7]]),
            "random init + query head": np.array([[0.5, 0.5], [0.5, 0.5]]),
            "band power + LR": np.array([[0.6, 0.7], [0.6, 0.7]]),
        }
    }
    (line,) = transfer.verdict(results)
    assert line == (
        "toy, query head: pretrained 0.700, vs random init +0.200 (goal >= +0.05), "
        "vs best baseline +0.100"
    )
    torch.manual_seed(0)
    model = create_model(
        "lumamba-tiny", num_queries=2, embed_dim=16, num_blocks=1, d_state=4, expand=1
    )
    contract = InputContract(sfreq=64.0, h_freq=30.0, window_s=2.5)
    path = transfer.model_file(model, contract, tmp_path)
    assert path == transfer.model_file(model, contract, tmp_path)
    loaded = load_model(path)
    assert transfer.model_fingerprint(loaded) == transfer.model_fingerprint(model)
