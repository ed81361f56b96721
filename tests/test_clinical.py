"""A small version of benchmarks/clinical.py on the real Guinea-Bissau data."""

import warnings

import numpy as np
import pytest
from _helpers import load_benchmark

from mne_eegfm import EEGFMEmbedder


@pytest.fixture(scope="module")
def clinical():
    return load_benchmark("clinical")


def test_clinical_benchmark_small(data_path, clinical):
    pytest.importorskip("pyriemann")
    root = data_path / "guinea-bissau-bids"
    if not root.is_dir():
        pytest.skip(f"{root} not found")
    # A tiny random-weight encoder and 4 windows per recording keep this fast; the
    # full benchmark (shipped model, all windows) is benchmarks/clinical.py.
    embedder = EEGFMEmbedder(
        model="lumamba-tiny",
        model_kwargs={"num_queries": 2, "embed_dim": 16, "num_blocks": 1},
        batch_size=64,
        device="cpu",
        verbose=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        results, info = clinical.run(
            root, n_subjects=20, n_splits=2, embedder=embedder, max_windows=4
        )

    assert len(info["subjects"]) == 20
    assert 5 <= info["labels"].sum() <= 15
    assert set(results["method"]) == {
        "EEGFMEmbedder + LR",
        "band power + LR",
        "tangent space + LR",
    }
    assert len(results) == 3 * 2
    for column in ("balanced_accuracy", "roc_auc"):
        values = results[column].to_numpy()
        assert np.isfinite(values).all() and ((0 <= values) & (values <= 1)).all()

    # Every recording is tested exactly once, and no subject is on both sides.
    subjects = np.asarray(info["subjects"])
    tested = np.concatenate([test for _, test in info["folds"]])
    np.testing.assert_array_equal(np.sort(tested), np.arange(len(subjects)))
    for train, test in info["folds"]:
        assert not set(subjects[train]) & set(subjects[test])
        assert len(np.unique(info["labels"][test])) == 2
    assert info["n_windows"]["EEGFMEmbedder + LR"] == 20 * 4
