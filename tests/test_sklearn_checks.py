"""scikit-learn's estimator checks on the estimators, with 2-D array input.

The estimators are built with ``ch_names=["Cz"]`` and ``sfreq=2.0``: a row of
n features is read as a one-channel epoch of n samples at 2 Hz, which the input
contract upsamples to 256 Hz (so even 2 features give 3 patches of 40 samples,
cropped to the 2-patch window). A tiny random-weight architecture and 0.3125-s
windows keep the checks fast.
"""

import warnings

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from mne_eegfm import EEGFMClassifier, EEGFMEmbedder

COMMON = dict(
    model="lumamba-tiny",
    model_kwargs={"num_queries": 2, "embed_dim": 16, "num_blocks": 1},
    ch_names=["Cz"],
    sfreq=2.0,
    window_s=0.3125,
    device="cpu",
    batch_size=64,
)

# Deliberate exceptions, with the reason for each.
_SUBSET = (
    "the model runs in float32 and a batch's matrix products are blocked by "
    "batch size, so a window's output alone, or inside a batch in another order, "
    "differs by ~1e-6 "
    "(test_estimators checks they agree to 1e-5), not within the 1e-7 asked here"
)
EXPECTED_FAILURES = {
    name: {
        "check_methods_subset_invariance": _SUBSET,
        "check_methods_sample_order_invariance": _SUBSET,
    }
    for name in ("EEGFMEmbedder", "EEGFMClassifier")
}


def _expected_failed_checks(estimator):
    return EXPECTED_FAILURES.get(type(estimator).__name__, {})


@pytest.fixture(autouse=True)
def _quiet():
    # Check data are tabular numbers, not EEG: the contract warns about units,
    # sampling rate and cropping on every call, and the random weights warn too.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


@parametrize_with_checks(
    [
        EEGFMEmbedder(**COMMON),
        EEGFMClassifier(max_epochs=1, random_state=0, **COMMON),
    ],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
