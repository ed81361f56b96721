"""What the estimators accept as X, and how it reaches the streaming path.

Raw, Epochs, lists of them and arrays (with channel metadata given at
construction) all become a list of Raw / Epochs that
:func:`mne_eegfm.inference.run_model` streams through the model.
"""

import contextlib

import numpy as np
from mne import BaseEpochs, EpochsArray, create_info
from mne.io import BaseRaw
from mne.utils import use_log_level
from sklearn.utils.validation import check_array

from ..inference import run_model
from ..models.precision import resolve_precision
from ..utils import resolve_device
from ._checks import check_x_type


def log_level(verbose):
    """Context manager applying an MNE-style ``verbose`` (None: unchanged)."""
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

    Returns a list of ``(inst, origin)``: for Epochs, ``origin`` gives the
    position in ``items`` of the source of each epoch; for a Raw, its position.
    Data are copied, the user's objects are only read.
    """
    merged = []
    for index, item in enumerate(items):
        last = merged[-1][0] if merged else None
        if (
            isinstance(item, BaseEpochs)
            and last
            and isinstance(last[0], BaseEpochs)
            and _same_layout(last[0], item)
        ):
            merged[-1][0].append(item)
            merged[-1][1].append(index)
        else:
            merged.append(([item], [index]))
    out = []
    for group, indices in merged:
        if isinstance(group[0], BaseRaw):
            out.append((group[0], indices[0]))
        elif len(group) == 1:
            out.append((group[0], np.full(len(group[0]), indices[0])))
        else:
            data = [epochs.get_data(copy=True) for epochs in group]
            inst = EpochsArray(
                np.concatenate(data), group[0].info, tmin=group[0].tmin, verbose=False
            )
            out.append((inst, np.repeat(indices, [len(d) for d in data])))
    return out


def _is_mne_input(X):
    return _is_mne(X) or (
        isinstance(X, list | tuple) and len(X) > 0 and all(_is_mne(x) for x in X)
    )


def _loaded(inst):
    """Lazy Epochs as a loaded copy (their length is unknown until read)."""
    if isinstance(inst, BaseEpochs) and not inst.preload:
        return inst.copy().load_data()
    return inst


def validate_X(est, X, *, reset):
    """Return MNE input as is (lazy Epochs: a loaded copy), arrays as (n, C, T).

    For arrays, ``n_features_in_`` (n_channels * n_times) is recorded when
    ``reset`` and checked otherwise, as scikit-learn estimators do.
    """
    if _is_mne_input(X):
        if isinstance(X, list | tuple):
            return [_loaded(x) for x in X]
        return _loaded(X)
    check_x_type(X)
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


def n_units(X):
    """Number of labelled units of validated X if known before preprocessing."""
    if isinstance(X, np.ndarray):
        return len(X)
    items = X if isinstance(X, list | tuple) else [X]
    if all(isinstance(x, BaseEpochs) for x in items):
        return sum(len(x) for x in items)
    return None


def check_common_params(est):
    """Checks of the parameters both estimators have."""
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
    resolve_precision(est.precision, resolve_device(est.device))


class Inputs:
    """Where each window of an input comes from.

    Attributes
    ----------
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
    windows : list of Windows | None
        The preprocessed windows, when they are kept in memory (fine-tuning).
    """

    def __init__(self, source, is_raw, windows=None):
        self.source = source
        self.is_raw = is_raw
        self.windows = windows
        self.item = source if is_raw else np.arange(len(source))
        self.n_items = int(source.max()) + 1 if is_raw else len(source)

    @property
    def n_windows(self):
        return len(self.item)


def sources(est, X):
    """Validated X as ``(insts, origins, is_raw)`` for the streaming path."""
    if isinstance(X, np.ndarray):
        info = _array_info(est.info, est.ch_names, est.sfreq)
        epochs = EpochsArray(X, info, tmin=0.0, verbose=False)
        return [epochs], [np.zeros(len(X), int)], False
    items = list(X) if isinstance(X, list | tuple) else [X]
    merged = _merge_epochs(items)
    is_raw = any(isinstance(x, BaseRaw) for x in items)
    return [inst for inst, _ in merged], [origin for _, origin in merged], is_raw


def _remap(outputs, origins):
    """Replace indices into the merged inputs by positions in the user's X."""
    source = np.empty(len(outputs.source), int)
    for index, origin in enumerate(origins):
        rows = np.flatnonzero(outputs.source == index)
        source[rows] = origin if np.isscalar(origin) else origin[: len(rows)]
    outputs.source = source
    outputs.skipped["source"] = [int(origins[i]) for i in outputs.skipped["source"]]
    return outputs


def stream(est, fn, X, contract, *, device, desc, accumulate=None, profile=False):
    """Run ``fn`` over the windows of validated X through the one streaming path.

    Returns
    -------
    outputs : ModelOutputs
        With ``source`` giving each window's position in X.
    inputs : Inputs
        Where each window comes from.
    """
    insts, origins, is_raw = sources(est, X)
    outputs = run_model(
        fn,
        insts,
        contract,
        overlap=est.overlap,
        on_missing=est.on_missing,
        batch_size=est.batch_size,
        device=device,
        accumulate=accumulate,
        desc=desc,
        precision=est.precision,
        profile=profile,
    )
    outputs = _remap(outputs, origins)
    return outputs, Inputs(outputs.source, is_raw)


def materialise(est, X, contract):
    """The windows of validated X in memory (for fine-tuning), and their origin."""
    from ..preprocessing import prepare

    insts, origins, is_raw = sources(est, X)
    windows, source = [], []
    for inst, origin in zip(insts, origins):
        part = prepare(inst, contract, overlap=est.overlap, on_missing=est.on_missing)
        if np.isscalar(origin):
            origin = np.full(len(part.data), origin)
        elif len(part.data) != len(origin):
            raise RuntimeError(
                f"Preprocessing returned {len(part.data)} windows for "
                f"{len(origin)} epochs; expected one window per epoch."
            )
        windows.append(part)
        source.append(origin)
    return Inputs(np.concatenate(source).astype(int), is_raw, windows)
