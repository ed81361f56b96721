"""The functional API: :func:`embed` and :func:`predict`, like mne-icalabel's
``label_components``: one call on an MNE object returns a documented result."""

import copy

from mne import BaseEpochs
from mne.io import BaseRaw

from ._docs import fill_doc
from .ood import note as ood_note
from .results import Embeddings, Predictions

__all__ = ["embed", "predict"]


def _check_inst(inst):
    items = inst if isinstance(inst, list | tuple) else [inst]
    if not items or not all(isinstance(x, BaseRaw | BaseEpochs) for x in items):
        raise TypeError(
            "inst must be mne.io.Raw, mne.Epochs or a list of them, got "
            f"{type(inst).__name__}"
            + (f" of {sorted({type(x).__name__ for x in items})}" if items else "")
            + "; use EEGFMEmbedder / EEGFMClassifier for arrays."
        )


def model_name(net, default=None):
    """Name in the model card of ``net`` (dict or ModelCard), else ``default``."""
    card = getattr(net, "card", None)
    if isinstance(card, dict):
        return card.get("name", default)
    return getattr(card, "name", default)


def _input_statistics(net):
    """A card's ``input_statistics``, else those of its encoder's card."""
    card = getattr(net, "card", None) or {}
    encoder = card.get("encoder_card") or {}
    return card.get("input_statistics") or encoder.get("input_statistics")


@fill_doc
def embed(
    inst,
    model=None,
    *,
    weights=None,
    pooling="mean",
    window_s=None,
    overlap=0.0,
    on_missing="raise",
    batch_size=32,
    device="auto",
    precision="float32",
    verbose=None,
):
    """Embed every window of a recording with a frozen encoder.

    Parameters
    ----------
    %(inst)s
    model : str | path-like | EEGFMEmbedder | None
        A registered encoder, a model file, or an :class:`EEGFMEmbedder`
        (its model is reused; the keyword arguments below replace its
        parameters on a copy). ``None`` uses ``"lumamba-tiny-gb"``.
    %(weights)s
    pooling : "mean" | None
        ``"mean"``: one vector per window; ``None``: the patch tokens.
    %(windowing)s
    %(on_missing)s
    %(batch_size)s
    %(device)s
    %(precision)s
    %(verbose)s

    Returns
    -------
    embeddings : Embeddings
        Embeddings with window onsets, durations and the windows left out
        (and why).

    See Also
    --------
    mne_eegfm.EEGFMEmbedder : The same as a scikit-learn transformer.
    """
    from .estimators import EEGFMEmbedder

    _check_inst(inst)
    params = dict(
        pooling=pooling,
        window_s=window_s,
        overlap=overlap,
        on_missing=on_missing,
        batch_size=batch_size,
        precision=precision,
        verbose=verbose,
    )
    if isinstance(model, EEGFMEmbedder):
        embedder = copy.copy(model).set_params(**params)
    else:
        embedder = EEGFMEmbedder(model, weights=weights, device=device, **params)
    outputs, _ = embedder._outputs(inst)
    net, _ = embedder._get_model()
    return Embeddings.from_outputs(outputs, model_name(net, str(embedder.model)))


@fill_doc
def predict(
    inst,
    model=None,
    *,
    window_s=None,
    overlap=0.0,
    on_missing="raise",
    batch_size=32,
    device="auto",
    precision="float32",
    attention=False,
    verbose=None,
):
    """Predict the class probabilities of every window of a recording.

    Parameters
    ----------
    %(inst)s
    model : str | path-like | EEGFMClassifier | None
        A registered classifier, a classifier file written by
        :meth:`EEGFMClassifier.save` or ``mne-eegfm fit``, or a fitted
        :class:`EEGFMClassifier` (not modified). ``None`` uses the shipped
        ``"lumamba-tiny-gb-epilepsy"``.
    %(windowing)s
    %(on_missing)s
    %(batch_size)s
    %(device)s
    %(precision)s
    attention : bool
        Also average the channel-unification attention over the windows of
        each input (``Predictions.attention``).
    %(verbose)s

    Returns
    -------
    predictions : Predictions
        Probabilities with window onsets, durations and the windows left out
        (and why); :meth:`Predictions.to_dataframe` gives one row per window;
        ``Predictions.ood`` says per input whether it lies outside the model's
        training data (:func:`mne_eegfm.ood.note`).

    See Also
    --------
    mne_eegfm.EEGFMClassifier : Train a classifier, or predict as an estimator.
    """
    from .checkpoints import DEFAULT_CLASSIFIER
    from .estimators import EEGFMClassifier

    _check_inst(inst)
    if isinstance(model, EEGFMClassifier):
        clf = copy.copy(model)
    else:
        name = DEFAULT_CLASSIFIER if model is None else model
        clf = EEGFMClassifier.load(name, device=device, verbose=verbose)
    clf.set_params(
        overlap=overlap,
        on_missing=on_missing,
        batch_size=batch_size,
        precision=precision,
        verbose=verbose,
    )
    outputs, _ = clf._outputs(
        inst,
        accumulate="attention" if attention else None,
        window_s=window_s,
        profile=True,
    )
    name = model_name(clf.model_, str(clf.model))
    result = Predictions.from_outputs(outputs, clf.classes_, name)
    result.ood = [ood_note(p, _input_statistics(clf.model_)) for p in outputs.profiles]
    return result
