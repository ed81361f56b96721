"""Shared fixtures: the real-data location and small synthetic recordings."""

import os
from pathlib import Path

import numpy as np
import pytest

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
def rng():
    return np.random.default_rng(0)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "data_path" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.data)


# ---------------------------------------------------------------------------
# Synthetic recordings and a tiny model, shared by the test modules

LABELS = ["Control", "Epilepsy"]


def _signal(n_channels, n_times, sfreq, seed=0, scale=20e-6):
    """Brown-ish noise plus a 10-Hz rhythm, about ``scale`` volts."""
    gen = np.random.default_rng(seed)
    x = np.cumsum(gen.standard_normal((n_channels, n_times)), axis=1)
    x -= x.mean(axis=1, keepdims=True)
    x /= x.std(axis=1, keepdims=True) + 1e-12
    t = np.arange(n_times) / sfreq
    x += np.sin(2 * np.pi * 10 * t + gen.uniform(0, 6, (n_channels, 1)))
    return x * scale


def _make_raw(ch_names=("Fz", "Cz", "Pz", "O1"), sfreq=256.0, duration=11.0, **kw):
    import mne

    ch_types = kw.pop("ch_types", "eeg")
    info = mne.create_info(list(ch_names), sfreq, ch_types)
    data = _signal(len(ch_names), int(round(duration * sfreq)), sfreq, **kw)
    return mne.io.RawArray(data, info, verbose=False)


def _make_epochs(n_epochs=6, ch_names=("Fz", "Cz", "Pz", "O1"), sfreq=256.0, tlen=5.0):
    import mne

    info = mne.create_info(list(ch_names), sfreq, "eeg")
    n_times = int(round(tlen * sfreq))
    data = np.stack(
        [_signal(len(ch_names), n_times, sfreq, seed=i) for i in range(n_epochs)]
    )
    return mne.EpochsArray(data, info, verbose=False)


@pytest.fixture(scope="session")
def make_raw():
    """Factory of small synthetic Raw objects (named 10-20 channels, volts)."""
    return _make_raw


@pytest.fixture(scope="session")
def make_epochs():
    """Factory of small synthetic Epochs objects."""
    return _make_epochs


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
