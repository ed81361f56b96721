"""Shared fixtures: the real-data location and small synthetic recordings."""

import os
from pathlib import Path

import numpy as np
import pytest
from _helpers import make_epochs, make_raw

_DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _data_root():
    return Path(os.environ.get("MNE_EEGFM_DATA", _DEFAULT_DATA))


@pytest.fixture(scope="session")
def data_path():
    """Root of the real data (``MNE_EEGFM_DATA``, default ``../shared/data``)."""
    root = _data_root()
    if not root.is_dir():
        pytest.skip(
            f"real data not found at {root}; set MNE_EEGFM_DATA to the folder "
            "that holds guinea-bissau-bids/ and formats/"
        )
    return root


@pytest.fixture(scope="session")
def reference_path():
    """Root of the reference facts (``../shared/reference``)."""
    root = Path(
        os.environ.get("MNE_EEGFM_REFERENCE", _data_root().parent / "reference")
    )
    if not root.is_dir():
        pytest.skip(f"reference folder not found at {root}; set MNE_EEGFM_REFERENCE")
    return root


@pytest.fixture
def bf16_cpu(monkeypatch):
    """Pretend the CPU has fast bfloat16 (the numerics are the same if emulated)."""
    from mne_eegfm.models import precision

    monkeypatch.setattr(precision, "cpu_bf16_feature", lambda: "amx_bf16")


@pytest.fixture
def no_bf16_cpu(monkeypatch):
    """A CPU without fast bfloat16 (simulated)."""
    from mne_eegfm.models import precision

    monkeypatch.setattr(precision, "cpu_bf16_feature", lambda: None)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "data_path" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.data)


# ---------------------------------------------------------------------------
# Synthetic recordings and a tiny model, shared by the test modules

LABELS = ["Control", "Epilepsy"]


@pytest.fixture(scope="session", name="make_raw")
def make_raw_fixture():
    """Factory of small synthetic Raw objects (named 10-20 channels, volts)."""
    return make_raw


@pytest.fixture(scope="session", name="make_epochs")
def make_epochs_fixture():
    """Factory of small synthetic Epochs objects."""
    return make_epochs


def save_tiny_model(path, seed=0, labels=LABELS):
    """Write a small random-weight classifier file (fast to load and run)."""
    import torch

    from mne_eegfm.checkpoints import save_model
    from mne_eegfm.models import create_model
    from mne_eegfm.preprocessing import InputContract

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = create_model(
            "lumamba-tiny",
            n_outputs=len(labels),
            head="query",
            num_blocks=1,
            embed_dim=16,
            num_queries=2,
        )
    card = {"name": Path(path).name, "labels": list(labels), "licence": "BSD-3-Clause"}
    save_model(net, path, contract=InputContract(), card=card)
    return str(path)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A small random-weight classifier file (the shipped one is not needed)."""
    return save_tiny_model(tmp_path_factory.mktemp("model") / "tiny-random")


@pytest.fixture(scope="session")
def model_factory():
    """``model_factory(path, seed)`` writes a tiny classifier file."""
    return save_tiny_model
