"""scikit-learn estimators built on EEG foundation models.

:class:`EEGFMEmbedder` turns EEG windows into embeddings with a frozen encoder;
:class:`EEGFMClassifier` trains a task head on top of the encoder (linear probe)
or the whole model (fine-tuning). Both take :class:`mne.Epochs`,
:class:`mne.io.Raw`, lists of them, or arrays with the channel metadata given at
construction, and follow the scikit-learn estimator rules, so they work inside
:class:`~sklearn.pipeline.Pipeline`, :func:`~sklearn.model_selection.cross_val_score`
and :class:`~sklearn.model_selection.GridSearchCV`. Their windows go through the
one streaming path of :mod:`mne_eegfm.inference`.

Modules: ``embedder`` and ``classifier`` (the estimators), ``_inputs`` (what X
may be), ``_models`` (the starting model), ``_training`` (training loops).
"""

from .classifier import EEGFMClassifier
from .embedder import EEGFMEmbedder

__all__ = ["EEGFMEmbedder", "EEGFMClassifier"]
