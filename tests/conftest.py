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
