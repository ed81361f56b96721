"""scikit-learn estimators built on EEG foundation models.

:class:`EEGFMEmbedder` turns EEG windows into embeddings with a frozen encoder;
:class:`EEGFMClassifier` trains a task head on top of the encoder (linear probe)
or the whole model (fine-tuning). Both take :class:`mne.Epochs`,
:class:`mne.io.Raw`, lists of them, or arrays with the channel metadata given at
construction, and follow the scikit-learn estimator rules, so they work inside
:class:`~sklearn.pipeline.Pipeline`, :func:`~sklearn.model_selection.cross_val_score`
and :class:`~sklearn.model_selection.GridSearchCV`.
"""

import contextlib
import logging
from dataclasses import replace

import numpy as np
import torch
from mne import BaseEpochs, EpochsArray, create_info
from mne.io import BaseRaw
from mne.utils import logger, use_log_level, warn
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.utils import check_random_state
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d

from .utils import resolve_device

__all__ = ["EEGFMEmbedder", "EEGFMClassifier"]

# Seed of the weights drawn for an architecture name without a checkpoint, so
# that two embedders built from the same name give the same embeddings.
_RANDOM_INIT_SEED = 0
_MODES = ("linear-probe", "finetune")
_POOLINGS = ("mean", None)
_HEAD_PREFIX = "classifier."
# Progress bars are shown for inputs of at least this many batches.
_PROGRESS_MIN_BATCHES = 10


# ---------------------------------------------------------------------------
# Models


def _is_architecture(name):
    from .checkpoints import REGISTRY
    from .models import list_configs

    return isinstance(name, str) and name not in REGISTRY and name in list_configs()


def _build_model(model, weights, *, n_outputs, head, model_kwargs, seed):
    """Return ``(module, contract)`` on the CPU, in eval mode.

    Random draws (a new head, or all weights for an architecture name) come
    from ``seed``; the global torch random state is left untouched.
    """
    from .checkpoints import (
        DEFAULT_MODEL,
        load_model,
        load_state_dict_file,
        remap_state_dict,
    )
    from .models import create_model
    from .preprocessing import InputContract

    name = DEFAULT_MODEL if model is None else model
    head = head if n_outputs is not None else None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if _is_architecture(name):
            net = create_model(
                name, n_outputs=n_outputs, head=head, **(model_kwargs or {})
            )
            if weights is None:
                warn(
                    f"{name!r} is an architecture name, not a checkpoint: using "
                    "randomly initialised weights. Embeddings and predictions are "
                    "not meaningful; pass a checkpoint name (see "
                    "mne_eegfm.list_models()) or weights=PATH."
                )
            else:
                state = load_state_dict_file(weights)
                net.load_state_dict(remap_state_dict(state, net), strict=True)
            return net.eval(), InputContract()
        if model_kwargs:
            raise ValueError(
                "model_kwargs only applies to architecture names (see "
                f"mne_eegfm.models.list_configs()), not to the checkpoint {name!r}."
            )
        net = load_model(name, weights=weights, n_outputs=n_outputs, head=head)
    return net.eval(), net.contract


# ---------------------------------------------------------------------------
# Inputs


def _log_level(verbose):
    if verbose is None:
        return contextlib.nullcontext()
    return use_log_level(verbose)


def _is_mne(obj):
    return isinstance(obj, BaseRaw | BaseEpochs)


def _array_info(info, ch_names, sfreq):
    if info is not None:
        return info.copy()
    if ch_names is None or sfreq is None:
        raise ValueError(
            "Array input needs channel metadata: construct the estimator with "
            "info=mne.Info, or with ch_names=[...] and sfreq=..., or pass "
            "mne.Epochs / mne.io.Raw objects."
        )
    return create_info(list(ch_names), float(sfreq), "eeg")


def _check_array_input(X, n_channels, name):
    """Validate an array input and return it as (n, n_channels, n_times)."""
    if isinstance(X, list | tuple) and any(_is_mne(x) for x in X):
        raise ValueError(
            "A list input must hold only mne.io.Raw / mne.Epochs objects; got "
            f"{sorted({type(x).__name__ for x in X})}."
        )
    X = check_array(X, allow_nd=True, dtype=(np.float64, np.float32))
    if X.ndim == 2:
        if X.shape[1] % n_channels:
            raise ValueError(
                f"X has {X.shape[1]} features, which is not n_channels * n_times "
                f"for the {n_channels} channels {name} was given; expected a "
                f"multiple of {n_channels}."
            )
        X = X.reshape(len(X), n_channels, -1)
    elif X.ndim != 3:
        raise ValueError(
            f"Expected X of shape (n_epochs, n_channels, n_times) or "
            f"(n_epochs, n_channels * n_times); got {X.ndim} dimensions."
        )
    if X.shape[1] != n_channels:
        raise ValueError(
            f"X has {X.shape[1]} channels but {name} was given {n_channels} "
            "channel names."
        )
    return X


def _same_layout(a, b):
    return (
        a.ch_names == b.ch_names
        and a.info["sfreq"] == b.info["sfreq"]
        and np.array_equal(a.times, b.times)
        and all(
            np.array_equal(ca["loc"], cb["loc"], equal_nan=True)
            for ca, cb in zip(a.info["chs"], b.info["chs"])
        )
    )


def _merge_epochs(items):
    """Merge runs of compatible Epochs (e.g. sklearn's one-epoch slices).

    Returns a list of ``(inst, item_indices)`` where ``item_indices`` gives, for
    each epoch of ``inst``, the position of its source in ``items``. Data are
    copied, the user's objects are only read.
    """
    merged = []
    for index, item in enumerate(items):
        if not isinstance(item, BaseEpochs):
            merged.append(([item], [index]))
            continue
        last = merged[-1][0] if merged else None
        if last and isinstance(last[0], BaseEpochs) and _same_layout(last[0], item):
            merged[-1][0].append(item)
            merged[-1][1].append(index)
        else:
            merged.append(([item], [index]))
    out = []
    for group, indices in merged:
        if len(group) == 1:
            inst = group[0]
            n = len(inst) if isinstance(inst, BaseEpochs) else 1
            out.append((inst, np.full(n, indices[0])))
            continue
        data = [epochs.get_data(copy=True) for epochs in group]
        inst = EpochsArray(
            np.concatenate(data), group[0].info, tmin=group[0].tmin, verbose=False
        )
        out.append((inst, np.repeat(indices, [len(d) for d in data])))
    return out


class _Inputs:
    """The windows of an input and where each window comes from.

    Attributes
    ----------
    windows : list of Windows
        Output of :func:`mne_eegfm.preprocessing.prepare` for each part.
    source : ndarray of int, shape (n_windows,)
        Index of the source object of each window (its position in a list of
        Raw / Epochs; 0 for a single object or an array).
    item : ndarray of int, shape (n_windows,)
        Labelled unit of each window: the Raw it comes from for continuous
        data, else the epoch (array row) itself.
    n_items : int
        Number of labelled units (Raws, or epochs / array rows).
    is_raw : bool
        Whether the input is continuous data (Raw or a list with Raws).
    """

    def __init__(self, windows, source, is_raw):
        self.windows = windows
        self.source = source
        self.is_raw = is_raw
        self.item = source if is_raw else np.arange(len(source))
        self.n_items = int(source.max()) + 1 if is_raw else len(source)

    @property
    def n_windows(self):
        return len(self.item)


def _is_mne_input(X):
    return _is_mne(X) or (
        isinstance(X, list | tuple) and len(X) > 0 and all(_is_mne(x) for x in X)
    )


def _validate_X(est, X, *, reset):
    """Return MNE input as is (lazy Epochs: a loaded copy), arrays as (n, C, T).

    For arrays, ``n_features_in_`` (n_channels * n_times) is recorded when
    ``reset`` and checked otherwise, as scikit-learn estimators do.
    """
    if _is_mne_input(X):
        if isinstance(X, list | tuple):
            return [_loaded(x) for x in X]
        return _loaded(X)
    info = _array_info(est.info, est.ch_names, est.sfreq)
    X = _check_array_input(X, info["nchan"], type(est).__name__)
    n_features = X.shape[1] * X.shape[2]
    if reset:
        est.n_features_in_ = n_features
    elif getattr(est, "n_features_in_", n_features) != n_features:
        raise ValueError(
            f"X has {n_features} features, but {type(est).__name__} is expecting "
            f"{est.n_features_in_} features as input."
        )
    return X


def _loaded(inst):
    """Lazy Epochs as a loaded copy (their length is unknown until read)."""
    if isinstance(inst, BaseEpochs) and not inst.preload:
        return inst.copy().load_data()
    return inst


def _n_units(X):
    """Number of labelled units of validated X if known before preprocessing."""
    if isinstance(X, np.ndarray):
        return len(X)
    items = X if isinstance(X, list | tuple) else [X]
    if all(isinstance(x, BaseEpochs) for x in items):
        return sum(len(x) for x in items)
    return None


def _collect_inputs(est, X, contract):
    """Convert validated X into windows following ``contract`` (X is not modified)."""
    from .preprocessing import prepare

    if isinstance(X, np.ndarray):
        info = _array_info(est.info, est.ch_names, est.sfreq)
        epochs = EpochsArray(X, info, tmin=0.0, verbose=False)
        windows = prepare(
            epochs, contract, window_s=est.window_s, on_missing=est.on_missing
        )
        _check_epoch_count(windows, len(X), "the array")
        return _Inputs([windows], np.zeros(len(X), int), is_raw=False)

    items = list(X) if isinstance(X, list | tuple) else [X]
    windows, source = [], []
    for inst, origin in _merge_epochs(items):
        part = prepare(
            inst,
            contract,
            window_s=est.window_s,
            overlap=est.overlap,
            on_missing=est.on_missing,
        )
        if isinstance(inst, BaseEpochs):
            _check_epoch_count(part, len(inst), inst)
        else:
            origin = np.full(len(part.data), origin[0])
        windows.append(part)
        source.append(origin)
    is_raw = any(isinstance(x, BaseRaw) for x in items)
    return _Inputs(windows, np.concatenate(source).astype(int), is_raw)


def _check_epoch_count(windows, n_epochs, what):
    if len(windows.data) != n_epochs:
        raise RuntimeError(
            f"Preprocessing {what} returned {len(windows.data)} windows for "
            f"{n_epochs} epochs; expected one window per epoch."
        )


def _group_by_layout(windows_list):
    """Group window blocks sharing channels, positions and length.

    Returns a list of ``(data, positions, rows)``: ``rows`` are the indices of
    the windows of ``data`` in the concatenation of all blocks.
    """
    groups, start = {}, 0
    for windows in windows_list:
        n = len(windows.data)
        key = (
            tuple(windows.ch_names),
            windows.positions.tobytes(),
            windows.data.shape[1:],
        )
        group = groups.setdefault(key, ([], windows.positions, []))
        group[0].append(windows.data)
        group[2].append(np.arange(start, start + n))
        start += n
    return [
        (np.concatenate(data), positions, np.concatenate(rows))
        for data, positions, rows in groups.values()
    ]


def _progress(iterable, total, desc):
    show = total >= _PROGRESS_MIN_BATCHES and logger.getEffectiveLevel() <= logging.INFO
    if not show:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, leave=False)


def _apply(fn, inputs, *, batch_size, device, desc):
    """Run ``fn(x, positions)`` over all windows in batches, without gradients.

    Returns a float32 ndarray with one row per window, in window order.
    """
    groups = _group_by_layout(inputs.windows)
    n_batches = sum(-(-len(data) // batch_size) for data, _, _ in groups)
    batches = (
        (data[start : start + batch_size], positions, rows[start : start + batch_size])
        for data, positions, rows in groups
        for start in range(0, len(data), batch_size)
    )
    out = None
    with torch.no_grad():
        for data, positions, rows in _progress(batches, n_batches, desc):
            x = torch.as_tensor(data, dtype=torch.float32, device=device)
            pos = torch.as_tensor(positions, dtype=torch.float32, device=device)
            result = fn(x, pos).float().cpu().numpy()
            if out is None:
                out = np.empty((inputs.n_windows,) + result.shape[1:], np.float32)
            out[rows] = result
    if out is None:
        raise ValueError(
            "No windows to process: every recording was shorter than one window "
            "or entirely marked BAD."
        )
    bad = np.flatnonzero(~np.isfinite(out.reshape(len(out), -1)).all(axis=1))
    if len(bad):
        raise RuntimeError(
            f"The model returned NaN or infinite values for {len(bad)} window(s) "
            f"(first: {bad[:5].tolist()}); the weights may be corrupted, or "
            "training diverged (try a lower lr)."
        )
    return out


def _check_common_params(est):
    if not isinstance(est.batch_size, int | np.integer) or est.batch_size < 1:
        raise ValueError(
            f"batch_size must be a positive integer, got {est.batch_size!r}"
        )
    if est.on_missing not in ("raise", "warn", "drop"):
        raise ValueError(
            f"on_missing must be 'raise', 'warn' or 'drop', got {est.on_missing!r}"
        )
    if not 0 <= est.overlap < 1:
        raise ValueError(f"overlap must be in [0, 1), got {est.overlap!r}")


def _contract(est, contract):
    if est.window_s is None:
        return contract
    return replace(contract, window_s=float(est.window_s))


# ---------------------------------------------------------------------------
# Embedder


class EEGFMEmbedder(TransformerMixin, BaseEstimator):
    """Embed EEG windows with a frozen foundation-model encoder.

    ``transform`` applies the model's input contract (resampling, filtering,
    windowing, normalisation) to a copy of the input and returns one embedding
    per window. ``fit`` learns nothing, so the embedder can go first in a
    :class:`~sklearn.pipeline.Pipeline`, e.g. before
    :class:`~sklearn.linear_model.LogisticRegression`.

    Parameters
    ----------
    model : str | path-like | None
        A registered checkpoint (see :func:`mne_eegfm.list_models`), the path of
        a model saved with :func:`mne_eegfm.checkpoints.save_model`, or an
        architecture name (see :func:`mne_eegfm.models.list_configs`), which
        gives randomly initialised weights (with a warning) unless ``weights``
        is given. ``None`` uses the shipped pretrained model
        (``"lumamba-tiny-gb"``).
    weights : path-like | None
        A weights file to load into ``model`` (e.g. a published checkpoint you
        downloaded).
    pooling : "mean" | None
        ``"mean"`` averages the patch tokens: output (n_windows, D). ``None``
        keeps them: output (n_windows, D, n_patches), the last axis being time,
        as :class:`mne.decoding.SlidingEstimator` expects.
    window_s : float | None
        Window length in seconds for Raw input (and the length Epochs are
        cropped or padded to); ``None`` uses the model's contract.
    overlap : float
        Fraction of overlap between consecutive windows of a Raw, in [0, 1).
    info : mne.Info | None
        Channel metadata of array input (names, sampling rate, positions).
    ch_names : list of str | None
        Channel names of array input, when ``info`` is not given.
    sfreq : float | None
        Sampling rate of array input, when ``info`` is not given.
    on_missing : "raise" | "warn" | "drop"
        What to do with an EEG channel that has no known position.
    batch_size : int
        Number of windows per forward pass.
    device : str
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``...
    model_kwargs : dict | None
        Options passed to :func:`mne_eegfm.models.create_model` with an
        architecture name (e.g. ``{"num_blocks": 1}``).
    verbose : bool | str | int | None
        MNE-style verbosity; ``None`` keeps the current MNE log level.

    Attributes
    ----------
    n_features_in_ : int
        n_channels * n_times of the arrays seen in fit (array input only).

    Notes
    -----
    Arrays are read as MNE does: volts, shape (n_epochs, n_channels, n_times),
    or (n_epochs, n_channels * n_times) which is reshaped with the channel
    count given at construction. Each window is embedded independently: its
    embedding does not depend on the other windows of the batch (up to float32
    rounding, about 1e-6).
    """

    def __init__(
        self,
        model=None,
        weights=None,
        pooling="mean",
        window_s=None,
        overlap=0.0,
        info=None,
        ch_names=None,
        sfreq=None,
        on_missing="raise",
        batch_size=32,
        device="auto",
        model_kwargs=None,
        verbose=None,
    ):
        self.model = model
        self.weights = weights
        self.pooling = pooling
        self.window_s = window_s
        self.overlap = overlap
        self.info = info
        self.ch_names = ch_names
        self.sfreq = sfreq
        self.on_missing = on_missing
        self.batch_size = batch_size
        self.device = device
        self.model_kwargs = model_kwargs
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.three_d_array = True
        return tags

    def __getstate__(self):
        state = dict(super().__getstate__())
        # The frozen model is reloaded from its source when needed.
        state.pop("_model", None)
        state.pop("_model_key", None)
        return state

    def _check_params(self):
        _check_common_params(self)
        if self.pooling not in _POOLINGS:
            raise ValueError(f"pooling must be 'mean' or None, got {self.pooling!r}")

    def _get_model(self):
        """Return ``(model, contract)``, loading them once per configuration."""
        device = resolve_device(self.device)
        key = (
            str(self.model),
            str(self.weights),
            repr(self.model_kwargs),
            str(device),
        )
        if getattr(self, "_model_key", None) != key:
            net, contract = _build_model(
                self.model,
                self.weights,
                n_outputs=None,
                head=None,
                model_kwargs=self.model_kwargs,
                seed=_RANDOM_INIT_SEED,
            )
            self._model = (_freeze(net).to(device), contract)
            self._model_key = key
        return self._model

    def fit(self, X, y=None):
        """Check the parameters and load the model; nothing is learned.

        Parameters
        ----------
        X : mne.Epochs | mne.io.Raw | list | ndarray
            The data (only validated for arrays).
        y : None
            Ignored.

        Returns
        -------
        self : EEGFMEmbedder
            The embedder.
        """
        self._check_params()
        _validate_X(self, X, reset=True)
        with _log_level(self.verbose):
            self._get_model()
        return self

    def transform(self, X):
        """Embed each window of X.

        Parameters
        ----------
        X : mne.Epochs | mne.io.Raw | list of Raw or Epochs | ndarray
            Epochs give one window each (cropped or padded to the window
            length), Raws are cut into windows; arrays need ``info`` or
            ``ch_names`` and ``sfreq`` at construction.

        Returns
        -------
        X_new : ndarray, shape (n_windows, D) or (n_windows, D, n_patches)
            Embeddings (float64), in the order of the input windows.
        """
        self._check_params()
        X = _validate_X(self, X, reset=False)
        with _log_level(self.verbose):
            net, contract = self._get_model()
            inputs = _collect_inputs(self, X, _contract(self, contract))
            return self._embed(net, inputs)

    def _embed(self, net, inputs):
        if self.pooling == "mean":
            fn = net.embed
        else:

            def fn(x, positions):
                return net.encode(x, positions).transpose(1, 2)

        device = next(net.parameters()).device
        out = _apply(
            fn, inputs, batch_size=self.batch_size, device=device, desc="Embedding"
        )
        return out.astype(np.float64)


# ---------------------------------------------------------------------------
# Classifier


class EEGFMClassifier(ClassifierMixin, BaseEstimator):
    """Classify EEG windows with a foundation model and a trained head.

    Parameters
    ----------
    model : str | path-like | None
        Checkpoint name, saved-model path or architecture name, as for
        :class:`EEGFMEmbedder`. ``None`` uses the shipped pretrained encoder.
    weights : path-like | None
        A weights file to load into ``model``.
    mode : "linear-probe" | "finetune"
        ``"linear-probe"`` trains the head only, on the frozen encoder's patch
        tokens (computed once); ``"finetune"`` trains the whole model, the
        encoder with learning rate ``lr * encoder_lr_scale``.
    head : "query" | "mamba" | "linear"
        Type of the task head.
    window_s : float | None
        Window length in seconds; ``None`` uses the model's contract.
    overlap : float
        Fraction of overlap between consecutive windows of a Raw, in [0, 1).
    info : mne.Info | None
        Channel metadata of array input.
    ch_names : list of str | None
        Channel names of array input, when ``info`` is not given.
    sfreq : float | None
        Sampling rate of array input, when ``info`` is not given.
    on_missing : "raise" | "warn" | "drop"
        What to do with an EEG channel that has no known position.
    max_epochs : int
        Maximum number of passes over the training windows.
    batch_size : int
        Number of windows per step.
    lr : float
        Learning rate of the head (AdamW).
    encoder_lr_scale : float
        Factor applied to ``lr`` for the encoder in ``"finetune"`` mode.
    weight_decay : float
        AdamW weight decay.
    class_weight : "balanced" | dict | None
        Weights of the classes in the loss: ``"balanced"`` uses
        n_samples / (n_classes * count) computed on the training windows.
    validation_fraction : float
        Fraction of the training data held out (stratified; whole recordings
        when X is a list of Raws) for early stopping; 0 disables it.
    patience : int
        Number of epochs without improvement of the validation loss before
        training stops; the best weights are kept.
    random_state : int | RandomState | None
        Seed of the head initialisation, the validation split, the batch order
        and dropout. With an int, fitting twice gives identical predictions
        (on the CPU; CUDA kernels may differ at floating-point precision).
    device : str
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``...
    model_kwargs : dict | None
        Options passed to :func:`mne_eegfm.models.create_model` with an
        architecture name.
    verbose : bool | str | int | None
        MNE-style verbosity; ``None`` keeps the current MNE log level.

    Attributes
    ----------
    classes_ : ndarray, shape (n_classes,)
        The class labels.
    model_ : torch.nn.Module
        The trained model (encoder and head).
    contract_ : InputContract
        The input contract applied to the data.
    history_ : list of dict
        Per epoch: ``epoch``, ``train_loss`` and ``valid_loss`` (NaN without a
        validation split).
    n_epochs_ : int
        Number of epochs run.
    n_features_in_ : int
        n_channels * n_times of the arrays seen in fit (array input only);
        arrays given to predict must match it.

    Notes
    -----
    ``y`` has one label per window: per epoch for Epochs and arrays; for Raw
    input either one label per window or one label per Raw (given to all its
    windows). Predictions have one row per window.
    """

    def __init__(
        self,
        model=None,
        weights=None,
        mode="linear-probe",
        head="query",
        window_s=None,
        overlap=0.0,
        info=None,
        ch_names=None,
        sfreq=None,
        on_missing="raise",
        max_epochs=30,
        batch_size=32,
        lr=1e-3,
        encoder_lr_scale=0.1,
        weight_decay=1e-2,
        class_weight="balanced",
        validation_fraction=0.2,
        patience=5,
        random_state=None,
        device="auto",
        model_kwargs=None,
        verbose=None,
    ):
        self.model = model
        self.weights = weights
        self.mode = mode
        self.head = head
        self.window_s = window_s
        self.overlap = overlap
        self.info = info
        self.ch_names = ch_names
        self.sfreq = sfreq
        self.on_missing = on_missing
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.encoder_lr_scale = encoder_lr_scale
        self.weight_decay = weight_decay
        self.class_weight = class_weight
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.random_state = random_state
        self.device = device
        self.model_kwargs = model_kwargs
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        # Each window is z-scored per channel, so tabular data (the scikit-learn
        # check datasets) lose their scale and the model can score poorly on them.
        tags.classifier_tags.poor_score = True
        return tags

    def __getstate__(self):
        state = dict(super().__getstate__())
        net = state.pop("model_", None)
        if net is not None:
            state["_model_state"] = {
                "config": net.config,
                "tensors": {
                    key: value.detach().cpu() for key, value in net.state_dict().items()
                },
            }
        return state

    def __setstate__(self, state):
        saved = state.pop("_model_state", None)
        if saved is not None:
            from .models import create_model

            with torch.random.fork_rng(devices=[]):
                net = create_model(**saved["config"])
            net.load_state_dict(saved["tensors"])
            state["model_"] = _freeze(net)
        super().__setstate__(state)

    # -- parameters ---------------------------------------------------------

    def _check_params(self):
        _check_common_params(self)
        if self.mode not in _MODES:
            raise ValueError(
                f"mode must be 'linear-probe' or 'finetune', got {self.mode!r}"
            )
        if not isinstance(self.max_epochs, int | np.integer) or self.max_epochs < 1:
            raise ValueError(
                f"max_epochs must be a positive integer, got {self.max_epochs!r}"
            )
        if not 0 <= self.validation_fraction < 1:
            raise ValueError(
                "validation_fraction must be in [0, 1), got "
                f"{self.validation_fraction!r}"
            )
        if not isinstance(self.patience, int | np.integer) or self.patience < 1:
            raise ValueError(
                f"patience must be a positive integer, got {self.patience!r}"
            )
        for name in ("lr", "encoder_lr_scale", "weight_decay"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")

    def _labels(self, y, inputs):
        """Return one label per window."""
        if len(y) == inputs.n_windows:
            return y
        if inputs.is_raw and len(y) == inputs.n_items:
            return y[inputs.item]
        unit = "Raw" if inputs.is_raw else "epoch"
        raise ValueError(
            f"y has {len(y)} labels but X has {inputs.n_windows} windows"
            + (f" from {inputs.n_items} {unit} object(s)" if inputs.is_raw else "")
            + ": give one label per window"
            + (" or one label per Raw." if inputs.is_raw else ".")
        )

    def _class_weights(self, y_index):
        if self.class_weight is None:
            return None
        classes = np.arange(len(self.classes_))
        if isinstance(self.class_weight, str):
            if self.class_weight != "balanced":
                raise ValueError(
                    "class_weight must be 'balanced', a dict or None, got "
                    f"{self.class_weight!r}"
                )
            present = np.unique(y_index)
            weights = np.ones(len(classes))
            weights[present] = compute_class_weight(
                "balanced", classes=present, y=y_index
            )
        else:
            unknown = set(self.class_weight) - set(self.classes_.tolist())
            if unknown:
                raise ValueError(f"class_weight has unknown classes {sorted(unknown)}")
            weights = np.array(
                [float(self.class_weight.get(c, 1.0)) for c in self.classes_.tolist()]
            )
        return torch.as_tensor(weights, dtype=torch.float32)

    def _split(self, groups, y_index, seed):
        """Return (train, valid) window indices; valid is empty without a split."""
        everything = np.arange(len(y_index))
        if self.validation_fraction == 0:
            return everything, everything[:0]
        n_splits = max(2, int(round(1 / self.validation_fraction)))
        per_class = [len(np.unique(groups[y_index == c])) for c in np.unique(y_index)]
        if min(per_class) < n_splits:
            logger.info(
                f"Too few recordings/epochs per class ({min(per_class)}) for a "
                f"{self.validation_fraction:.0%} validation split: training "
                f"{self.max_epochs} epochs without early stopping."
            )
            return everything, everything[:0]
        cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        train, valid = next(cv.split(everything, y_index, groups))
        return train, valid

    # -- fitting ------------------------------------------------------------

    def _seed(self):
        return int(check_random_state(self.random_state).randint(2**31 - 1))

    def _initial_model(self, n_classes, seed=None):
        """The untrained model and its contract, as fit starts from them."""
        return _build_model(
            self.model,
            self.weights,
            n_outputs=n_classes,
            head=self.head,
            model_kwargs=self.model_kwargs,
            seed=self._seed() if seed is None else seed,
        )

    def fit(self, X, y):
        """Train the head (or the whole model) on labelled windows.

        Parameters
        ----------
        X : mne.Epochs | mne.io.Raw | list of Raw or Epochs | ndarray
            Training data; arrays need ``info`` or ``ch_names`` and ``sfreq``
            at construction.
        y : array-like, shape (n_windows,) or (n_raws,)
            Labels (any hashable type, e.g. strings): one per epoch / window,
            or one per Raw.

        Returns
        -------
        self : EEGFMClassifier
            The fitted classifier.
        """
        self._check_params()
        X = _validate_X(self, X, reset=True)
        y = column_or_1d(y, warn=True)
        if y.dtype.kind in "fc":
            y = check_array(y, ensure_2d=False, dtype=None, input_name="y")
        check_classification_targets(y)
        n_units = _n_units(X)
        if n_units is not None and n_units != len(y):
            raise ValueError(
                f"X has {n_units} samples but y has {len(y)} labels; they must match."
            )
        classes = np.unique(y)
        if len(classes) < 2:
            raise ValueError(
                "EEGFMClassifier needs at least 2 classes in y; got only one class: "
                f"{classes.tolist()}."
            )
        seed = self._seed()
        with _log_level(self.verbose):
            net, contract = self._initial_model(len(classes), seed)
            contract = _contract(self, contract)
            inputs = _collect_inputs(self, X, contract)
            y = self._labels(y, inputs)
            self.classes_ = classes
            y_index = np.searchsorted(classes, y)
            self.contract_ = contract
            self.model_ = net.to(resolve_device(self.device))
            self._train(inputs, y_index, seed)
        return self

    def _train(self, inputs, y_index, seed):
        train, valid = self._split(inputs.item, y_index, seed)
        weights = self._class_weights(y_index[train])
        net = self.model_
        device = next(net.parameters()).device
        loss_fn = torch.nn.CrossEntropyLoss(
            weight=None if weights is None else weights.to(device)
        )
        with torch.random.fork_rng(
            devices=[device.index or 0] if device.type == "cuda" else []
        ):
            torch.manual_seed(seed)
            if self.mode == "linear-probe":
                trainer = _ProbeTrainer(net, inputs, self.batch_size, device)
            else:
                trainer = _FinetuneTrainer(net, inputs, self.batch_size, device)
            optimizer = torch.optim.AdamW(
                trainer.param_groups(self.lr, self.encoder_lr_scale),
                weight_decay=self.weight_decay,
            )
            generator = torch.Generator().manual_seed(seed)
            self.history_ = _fit_loop(
                trainer,
                optimizer,
                loss_fn,
                y_index,
                train,
                valid,
                generator=generator,
                max_epochs=self.max_epochs,
                patience=self.patience,
            )
        self.n_epochs_ = len(self.history_)
        _freeze(net)

    # -- prediction ---------------------------------------------------------

    def _logits(self, X):
        check_is_fitted(self)
        self._check_params()
        X = _validate_X(self, X, reset=False)
        with _log_level(self.verbose):
            device = resolve_device(self.device)
            net = self.model_.to(device).eval()
            inputs = _collect_inputs(self, X, self.contract_)
            logits = _apply(
                net,
                inputs,
                batch_size=self.batch_size,
                device=device,
                desc="Predicting",
            )
        return logits.astype(np.float64), inputs

    def predict_proba(self, X):
        """Class probabilities of each window.

        Parameters
        ----------
        X : mne.Epochs | mne.io.Raw | list of Raw or Epochs | ndarray
            The data.

        Returns
        -------
        proba : ndarray, shape (n_windows, n_classes)
            Probabilities, columns in the order of ``classes_``.
        """
        logits, _ = self._logits(X)
        return _softmax(logits)

    def decision_function(self, X):
        """Confidence scores of each window.

        Parameters
        ----------
        X : mne.Epochs | mne.io.Raw | list of Raw or Epochs | ndarray
            The data.

        Returns
        -------
        scores : ndarray, shape (n_windows,) or (n_windows, n_classes)
            For two classes, the logit of ``classes_[1]`` minus that of
            ``classes_[0]`` (positive favours ``classes_[1]``); otherwise the
            logits.
        """
        logits, _ = self._logits(X)
        if logits.shape[1] == 2:
            return logits[:, 1] - logits[:, 0]
        return logits

    def predict(self, X):
        """Predict the class of each window.

        Parameters
        ----------
        X : mne.Epochs | mne.io.Raw | list of Raw or Epochs | ndarray
            The data.

        Returns
        -------
        y_pred : ndarray, shape (n_windows,)
            Predicted labels.
        """
        logits, _ = self._logits(X)
        return self.classes_[np.argmax(logits, axis=1)]

    def predict_windows(self, X):
        """Predict each window and say where it lies in the recording.

        Parameters
        ----------
        X : mne.io.Raw | mne.Epochs | list of Raw or Epochs | ndarray
            The data.

        Returns
        -------
        table : pandas.DataFrame
            One row per window with columns ``recording`` (index of the source
            object in X), ``onset`` and ``duration`` (seconds from the start of
            the recording), ``label`` and one ``proba_<class>`` per class.
        """
        import pandas as pd

        logits, inputs = self._logits(X)
        proba = _softmax(logits)
        onsets = np.concatenate([w.onsets for w in inputs.windows])
        durations = np.concatenate(
            [np.full(len(w.data), w.data.shape[-1] / w.sfreq) for w in inputs.windows]
        )
        table = pd.DataFrame(
            {
                "recording": inputs.source,
                "onset": onsets,
                "duration": durations,
                "label": self.classes_[np.argmax(proba, axis=1)],
            }
        )
        for index, label in enumerate(self.classes_):
            table[f"proba_{label}"] = proba[:, index]
        return table

    # -- files --------------------------------------------------------------

    def save(self, path):
        """Save the fitted classifier as safetensors plus a JSON sidecar.

        Parameters
        ----------
        path : path-like
            Destination stem; ``PATH.safetensors`` and ``PATH.json`` are written.

        Returns
        -------
        path : pathlib.Path
            The ``.safetensors`` file written.
        """
        from .checkpoints import save_model

        check_is_fitted(self)
        card = dict(getattr(self.model_, "card", None) or {})
        card["labels"] = self.classes_.tolist()
        card["estimator"] = self._saved_params()
        if hasattr(self, "n_features_in_"):
            card["n_features_in"] = int(self.n_features_in_)
        card["history"] = self.history_
        return save_model(self.model_, path, contract=self.contract_, card=card)

    def _saved_params(self):
        params = self.get_params()
        params.pop("model")
        params.pop("weights")
        info = params.pop("info")
        if info is not None:
            params["ch_names"] = list(info["ch_names"])
            params["sfreq"] = float(info["sfreq"])
        if isinstance(params["class_weight"], dict):
            params["class_weight"] = [[k, v] for k, v in params["class_weight"].items()]
        if not isinstance(params["random_state"], int | type(None)):
            params["random_state"] = None
        return params

    @classmethod
    def load(cls, path, *, device="auto", verbose=None):
        """Load a classifier written by :meth:`save` (or a shipped classifier).

        Parameters
        ----------
        path : path-like | str
            The saved file (``.safetensors``, ``.json`` or their stem), or the
            name of a registered classifier checkpoint.
        device : str
            Device for prediction.
        verbose : bool | str | int | None
            MNE-style verbosity.

        Returns
        -------
        clf : EEGFMClassifier
            A fitted classifier.
        """
        from .checkpoints import load_model

        with _log_level(verbose):
            net = load_model(path)
        card = net.card
        labels = card.get("labels")
        if not labels:
            raise ValueError(
                f"{path} is not a classifier: its model card has no labels."
            )
        params = dict(card.get("estimator") or {})
        if isinstance(params.get("class_weight"), list):
            params["class_weight"] = {k: v for k, v in params["class_weight"]}
        clf = cls(
            model=str(path),
            device=device,
            verbose=verbose,
            **{k: v for k, v in params.items() if k not in ("device", "verbose")},
        )
        clf.classes_ = np.asarray(labels)
        clf.model_ = _freeze(net)
        clf.contract_ = net.contract
        clf.history_ = list(card.get("history") or [])
        clf.n_epochs_ = len(clf.history_)
        if "n_features_in" in card:
            clf.n_features_in_ = int(card["n_features_in"])
        return clf


def _freeze(net):
    """Eval mode, no gradients: the same kernels run after fit, pickle or load.

    (PyTorch's attention fast path depends on ``requires_grad``, which changes
    results at float32 rounding level.)
    """
    net.requires_grad_(False)
    return net.eval()


def _softmax(logits):
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------------------
# Training


class _ProbeTrainer:
    """Linear probe: frozen encoder tokens computed once, head trained on them."""

    def __init__(self, net, inputs, batch_size, device):
        self.net = net
        for name, param in net.named_parameters():
            param.requires_grad_(name.startswith(_HEAD_PREFIX))
        net.eval()
        self.tokens = torch.as_tensor(
            _apply(
                net.encode,
                inputs,
                batch_size=batch_size,
                device=device,
                desc="Encoding",
            )
        )
        self.device = device
        self.batch_size = batch_size

    def param_groups(self, lr, encoder_lr_scale):
        return [{"params": list(self.net.classifier.parameters()), "lr": lr}]

    def train_mode(self, training):
        self.net.classifier.train(training)

    def batches(self, indices, generator=None):
        batch_size = self.batch_size
        if generator is not None:
            indices = indices[torch.randperm(len(indices), generator=generator).numpy()]
        for start in range(0, len(indices), batch_size):
            rows = indices[start : start + batch_size]
            yield rows, (self.tokens[rows].to(self.device),)

    def forward(self, tokens):
        return self.net.classifier(tokens)


class _FinetuneTrainer:
    """Fine-tuning: windows go through the whole model at each step."""

    def __init__(self, net, inputs, batch_size, device):
        self.net = net
        for param in net.parameters():
            param.requires_grad_(True)
        self.groups = _group_by_layout(inputs.windows)
        self.group_of = np.empty(inputs.n_windows, int)
        self.row_in_group = np.empty(inputs.n_windows, int)
        for index, (_, _, rows) in enumerate(self.groups):
            self.group_of[rows] = index
            self.row_in_group[rows] = np.arange(len(rows))
        self.device = device
        self.batch_size = batch_size

    def param_groups(self, lr, encoder_lr_scale):
        head, encoder = [], []
        for name, param in self.net.named_parameters():
            (head if name.startswith(_HEAD_PREFIX) else encoder).append(param)
        return [
            {"params": head, "lr": lr},
            {"params": encoder, "lr": lr * encoder_lr_scale},
        ]

    def train_mode(self, training):
        self.net.train(training)

    def batches(self, indices, generator=None):
        """Batches of windows that share a channel layout (shuffled if generator)."""
        batches = []
        for group in np.unique(self.group_of[indices]):
            members = indices[self.group_of[indices] == group]
            if generator is not None:
                members = members[
                    torch.randperm(len(members), generator=generator).numpy()
                ]
            batches += [
                (group, members[start : start + self.batch_size])
                for start in range(0, len(members), self.batch_size)
            ]
        if generator is not None:
            order = torch.randperm(len(batches), generator=generator).numpy()
            batches = [batches[i] for i in order]
        for group, rows in batches:
            data, positions, _ = self.groups[group]
            x = torch.as_tensor(data[self.row_in_group[rows]], device=self.device)
            pos = torch.as_tensor(positions, dtype=torch.float32, device=self.device)
            yield rows, (x, pos)

    def forward(self, x, positions):
        return self.net(x, positions)


def _fit_loop(
    trainer,
    optimizer,
    loss_fn,
    y_index,
    train,
    valid,
    *,
    generator,
    max_epochs,
    patience,
):
    """Mini-batch training with early stopping on the validation loss."""
    y_all = torch.as_tensor(y_index, dtype=torch.long)
    best, best_state, waited, history = np.inf, None, 0, []
    for epoch in range(1, max_epochs + 1):
        trainer.train_mode(True)
        total, count = 0.0, 0
        for rows, args in trainer.batches(train, generator):
            target = y_all[rows].to(trainer.device)
            loss = loss_fn(trainer.forward(*args), target)
            if not torch.isfinite(loss):
                raise RuntimeError(
                    f"Training diverged at epoch {epoch}: the loss is {float(loss)}; "
                    "try a lower lr."
                )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(rows)
            count += len(rows)
        valid_loss = _evaluate(trainer, loss_fn, y_all, valid)
        history.append(
            {"epoch": epoch, "train_loss": total / count, "valid_loss": valid_loss}
        )
        logger.debug(
            f"Epoch {epoch}: train loss {total / count:.4f}, "
            f"valid loss {valid_loss:.4f}"
        )
        if not len(valid):
            continue
        if valid_loss < best:
            best, waited = valid_loss, 0
            best_state = {
                k: v.detach().clone() for k, v in trainer.net.state_dict().items()
            }
        else:
            waited += 1
            if waited >= patience:
                logger.info(f"Early stopping after {epoch} epochs")
                break
    if best_state is not None:
        trainer.net.load_state_dict(best_state)
    return history


def _evaluate(trainer, loss_fn, y_all, indices):
    if not len(indices):
        return float("nan")
    trainer.train_mode(False)
    total = 0.0
    with torch.no_grad():
        for rows, args in trainer.batches(indices):
            target = y_all[rows].to(trainer.device)
            total += float(loss_fn(trainer.forward(*args), target)) * len(rows)
    return total / len(indices)
