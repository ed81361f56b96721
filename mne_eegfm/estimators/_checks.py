"""Checks of what a classifier was fitted on and what a saved one claims."""

import numpy as np

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
