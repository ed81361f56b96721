"""Checks of what a classifier was fitted on and what a saved one claims."""

import os

import numpy as np

from ..cards import json_object
from ..inference import with_window


def fitted_contract(contract, lengths, window_s):
    """The contract with the window length the classifier was fitted on.

    Epochs are centre-cropped to the largest multiple of a patch they hold, so
    a classifier fitted on 5-s epochs saw 5-s windows whatever the encoder's
    contract says: predicting on a Raw must use the same length.
    """
    lengths = np.unique(np.round(np.asarray(lengths, float), 6))
    if window_s is not None or len(lengths) != 1:
        return with_window(contract, window_s)
    return with_window(contract, float(lengths[0]))


def check_labels(labels, path):
    """The labels of a saved classifier: a non-empty list without duplicates."""
    if not isinstance(labels, list) or not labels:
        raise ValueError(f"{path} is not a classifier: its model card has no labels.")
    seen, repeated = set(), []
    for label in labels:
        key = repr(label)
        if key in seen and label not in repeated:
            repeated.append(label)
        seen.add(key)
    if repeated:
        raise ValueError(
            f"{path}: the model card's labels {labels!r} repeat {repeated!r}; "
            "each class needs its own label (the file is damaged or edited)."
        )
    return labels


def saved_params(card, allowed, path):
    """The estimator parameters saved in a model card, checked.

    Only the names of the estimator's own parameters are accepted: a crafted
    file cannot pass other keyword arguments.
    """
    params = json_object(
        card.get("estimator") or {},
        f"{path}: the model card's 'estimator' (its parameters)",
        known=allowed,
        unknown_message=f"{path}: unknown estimator parameter(s) {{}} in the model "
        f"card (the file is damaged or edited); known: {', '.join(sorted(allowed))}.",
    )
    if isinstance(params.get("class_weight"), list):
        params["class_weight"] = {k: v for k, v in params["class_weight"]}
    return params


def _has_info(obj):
    """Whether ``obj`` carries MNE measurement info (Evoked, Spectrum, ...).

    A pandas DataFrame has an ``info`` method, not an ``mne.Info`` (a dict).
    """
    return isinstance(getattr(obj, "info", None), dict)


def check_x_type(X):
    """Refuse X that is neither MNE data nor array-like, naming its type."""
    if isinstance(X, np.ndarray):
        return
    items = X if isinstance(X, list | tuple) else None
    if items is None:
        wrong = isinstance(X, str | bytes | os.PathLike) or _has_info(X)
        what = type(X).__name__
    else:
        wrong = not items or any(
            isinstance(x, str | bytes | os.PathLike) or _has_info(x) for x in items
        )
        kinds = sorted({type(x).__name__ for x in items})
        what = (
            f"{type(X).__name__} of {kinds}" if items else f"empty {type(X).__name__}"
        )
    if wrong:
        raise TypeError(
            "X must be mne.Epochs, mne.io.Raw, a non-empty list of them, or an "
            f"array of shape (n_epochs, n_channels, n_times); got {what}"
            + (" (read the file first, e.g. mne_eegfm.io.read_recording)." if
               isinstance(X, str | os.PathLike) else ".")
        )  # fmt: skip
