"""The one streaming path from recordings to model outputs.

read a chunk -> apply the input contract -> windows -> batches -> model ->
outputs. :class:`~mne_eegfm.EEGFMEmbedder`, :class:`~mne_eegfm.EEGFMClassifier`,
:func:`mne_eegfm.embed`, :func:`mne_eegfm.predict` and every command of the
``mne-eegfm`` command line run their windows through :func:`run_model`.

Memory is bounded by the batch and the chunk of a Raw, never by the overlap:
a chunk holds at most as many windows as a chunk of non-overlapping windows
(or one batch, whichever is larger), so ``overlap=0.999`` reads shorter
chunks instead of materialising a thousand times more windows.
"""

import logging
from dataclasses import dataclass, replace

import numpy as np
from mne import BaseEpochs
from mne.io import BaseRaw
from mne.utils import logger

__all__ = ["ModelOutputs", "run_model", "with_window"]

#: Seconds of non-overlapping windows a chunk of a Raw holds at most.
CHUNK_S = 600.0
SKIP_REASON = "overlaps the annotation {!r}"


def with_window(contract, window_s):
    """Return the contract with another window length.

    Parameters
    ----------
    contract : InputContract
        The model's input contract.
    window_s : float | None
        Window length in seconds (``None``: the contract's).

    Returns
    -------
    contract : InputContract
        A copy with ``window_s`` replaced (or ``contract`` itself).
    """
    if window_s is None:
        return contract
    return replace(contract, window_s=float(window_s))


@dataclass
class ModelOutputs:
    """Model outputs for every window of a list of inputs, in window order.

    Parameters
    ----------
    values : ndarray of float32, shape (n_windows, ...)
        One model output per window.
    source : ndarray of int, shape (n_windows,)
        Index of the input each window comes from.
    onsets, durations : ndarray of float, shape (n_windows,)
        Window start (from the recording start, or the epoch's event) and
        length, in seconds.
    skipped : dict of list
        Windows left out: ``source``, ``onset``, ``duration`` and ``reason``.
    ch_names : list of list of str
        Channels used, per input.
    positions : list of ndarray
        Electrode positions (n_channels, 3), per input.
    sums : list of ndarray | None
        Per input, the sum over its windows of ``accumulate(x, positions)``.
    profiles : list of InputProfile | None
        With ``profile=True``: per input, the running summary of its windows
        for :func:`mne_eegfm.ood.assess` (gathered while streaming).
    """

    values: np.ndarray
    source: np.ndarray
    onsets: np.ndarray
    durations: np.ndarray
    skipped: dict
    ch_names: list
    positions: list
    sums: list
    profiles: list = None

    def n_windows_of(self, index):
        """Count the windows computed for one input.

        Parameters
        ----------
        index : int
            Position of the input.

        Returns
        -------
        n_windows : int
            Number of windows with an output.
        """
        return int(np.sum(self.source == index))


def _windows_per_chunk(contract, batch_size):
    return max(int(batch_size), int(CHUNK_S // contract.window_s))


def _chunk_seconds(contract, overlap, batch_size):
    """Seconds of output per chunk so that a chunk holds a bounded window count."""
    from .preprocessing.contract import _window_samples

    n_times = _window_samples(contract.window_s, contract.sfreq)
    step = max(1, n_times - int(round(overlap * n_times)))
    per_chunk = _windows_per_chunk(contract, batch_size)
    return (per_chunk + 0.5) * step / contract.sfreq


def _chunks(inst, contract, overlap, on_missing, batch_size):
    """Preprocessed :class:`~mne_eegfm.preprocessing.Windows`, chunk by chunk."""
    from .preprocessing import iter_windows, prepare

    if isinstance(inst, BaseEpochs):
        windows = prepare(inst, contract, on_missing=on_missing)
        if len(windows.data) != len(inst):
            raise RuntimeError(
                f"Preprocessing returned {len(windows.data)} windows for "
                f"{len(inst)} epochs; expected one window per epoch."
            )
        return [windows]
    if not isinstance(inst, BaseRaw):
        raise TypeError(
            f"Expected mne.io.Raw or mne.Epochs, got {type(inst).__name__}."
        )
    return iter_windows(
        inst,
        contract,
        overlap=overlap,
        on_missing=on_missing,
        chunk_s=_chunk_seconds(contract, overlap, batch_size),
    )


def _bad_annotations(inst):
    """(starts, stops, descriptions) of BAD annotations, from the recording start."""
    if not isinstance(inst, BaseRaw):
        return np.zeros(0), np.zeros(0), []
    annot = inst.annotations
    keep = [d.upper().startswith("BAD") for d in annot.description]
    starts = np.asarray(annot.onset, float)[keep] - inst.first_time
    stops = starts + np.asarray(annot.duration, float)[keep]
    return starts, stops, list(np.asarray(annot.description)[keep])


def _skipped_onsets(win, first_index, overlap):
    """Onsets of the windows of a chunk left out, and the next grid index."""
    n_times = win.data.shape[-1]
    step = max(1, n_times - int(round(overlap * n_times)))
    n_grid = len(win.onsets) + win.n_skipped
    grid = first_index + np.arange(n_grid)
    kept = np.rint(win.onsets * win.sfreq / step).astype(int)
    missing = grid[~np.isin(grid, kept)]
    return missing * step / win.sfreq, first_index + n_grid


def _reasons(onsets, duration, bad):
    """Why each skipped window was left out: the first BAD annotation it overlaps."""
    starts, stops, descriptions = bad
    reasons = np.full(len(onsets), "overlaps a BAD annotation", dtype=object)
    for start, stop, description in reversed(list(zip(starts, stops, descriptions))):
        hit = (onsets < max(stop, start + 1e-9)) & (onsets + duration > start)
        reasons[hit] = SKIP_REASON.format(description)
    return reasons.tolist()


class _Collector:
    """Outputs accumulated batch by batch."""

    def __init__(self):
        self.values, self.source, self.onsets, self.durations = [], [], [], []
        self.skipped = {"source": [], "onset": [], "duration": [], "reason": []}
        self.ch_names, self.positions, self.sums = [], [], []
        self.profiles = None
        self.n_done = 0

    def skip(self, index, onsets, duration, bad):
        self.skipped["source"] += [index] * len(onsets)
        self.skipped["onset"] += [float(t) for t in onsets]
        self.skipped["duration"] += [float(duration)] * len(onsets)
        self.skipped["reason"] += _reasons(onsets, duration, bad)

    def result(self):
        if not self.values:
            raise ValueError(
                "No windows to process: every recording was shorter than one "
                "window or all its windows overlap BAD annotations "
                f"({len(self.skipped['onset'])} window(s) left out)."
            )
        return ModelOutputs(
            values=np.concatenate(self.values),
            source=np.concatenate(self.source).astype(int),
            onsets=np.concatenate(self.onsets),
            durations=np.concatenate(self.durations),
            skipped=self.skipped,
            ch_names=self.ch_names,
            positions=self.positions,
            sums=self.sums,
            profiles=self.profiles,
        )


def _check_finite(values, first):
    bad = np.flatnonzero(~np.isfinite(values.reshape(len(values), -1)).all(axis=1))
    if len(bad):
        raise RuntimeError(
            f"The model returned NaN or infinite values for {len(bad)} window(s) "
            f"(first: {(bad[:5] + first).tolist()}); the weights may be "
            "corrupted, or training diverged (try a lower lr)."
        )


def _progress(desc):
    if logger.getEffectiveLevel() > logging.INFO:
        return None
    from tqdm.auto import tqdm

    return tqdm(desc=desc, unit="win", leave=False, delay=1.0)


def _run_chunk(fn, accumulate, win, batch_size, device, collected, total):
    import torch

    pos = torch.as_tensor(win.positions, dtype=torch.float32, device=device)
    for start in range(0, len(win.data), batch_size):
        x = torch.as_tensor(
            win.data[start : start + batch_size], dtype=torch.float32, device=device
        )
        values = fn(x, pos).float().cpu().numpy()
        _check_finite(values, collected.n_done)
        collected.values.append(values)
        collected.n_done += len(values)
        if accumulate is not None:
            part = accumulate(x, pos).double().cpu().numpy()
            total = part if total is None else total + part
    return total


def run_model(
    fn,
    insts,
    contract,
    *,
    overlap=0.0,
    on_missing="raise",
    batch_size=32,
    device="cpu",
    accumulate=None,
    desc="Running",
    precision="float32",
    profile=False,
):
    """Run ``fn(x, positions)`` over every window of the inputs, in batches.

    Parameters
    ----------
    fn : callable
        ``fn(x, positions) -> Tensor`` with one row per window of ``x``
        (batch, channels, times); called without gradients.
    insts : list of Raw | Epochs
        The inputs (never modified). A Raw is read chunk by chunk; Epochs give
        one window each.
    contract : InputContract
        The model's input contract (window length included).
    overlap : float
        Fraction of overlap between consecutive windows of a Raw, in [0, 1).
    on_missing : "raise" | "warn" | "drop"
        What to do with an EEG channel that has no known position.
    batch_size : int
        Windows per call of ``fn``.
    device : torch.device | str
        Where the batches go.
    accumulate : callable | None
        ``accumulate(x, positions) -> Tensor`` summed over the windows of each
        input (e.g. attention maps), without keeping one per window.
    desc : str
        Label of the progress bar.
    precision : "float32" | "bfloat16" | "auto"
        Precision the whole loop runs in (see
        :func:`~mne_eegfm.models.precision.precision_context`); outputs are
        float32 either way.
    profile : bool
        Also gather an :class:`~mne_eegfm.ood.InputProfile` of each input's
        windows (``ModelOutputs.profiles``), without reading it twice.

    Returns
    -------
    outputs : ModelOutputs
        One row per window, in input then time order.

    Raises
    ------
    ValueError
        When no window is left (every window overlaps BAD annotations), or
        ``precision`` is not supported on ``device``.
    """
    import torch

    from .models.precision import precision_context, prepare_model

    module = fn if isinstance(fn, torch.nn.Module) else getattr(fn, "__self__", None)
    if isinstance(module, torch.nn.Module):
        prepare_model(module, precision, device)
    collected = _Collector()
    if profile:
        collected.profiles = []
    bar = _progress(desc)
    with torch.no_grad(), precision_context(precision, device):
        for index, inst in enumerate(insts):
            _run_one(fn, accumulate, index, inst, contract, overlap, on_missing,
                     batch_size, device, collected, bar)  # fmt: skip
    if bar is not None:
        bar.close()
    return collected.result()


def _run_one(
    fn, accumulate, index, inst, contract, overlap, on_missing, batch_size,
    device, collected, bar,
):  # fmt: skip
    from .ood import InputProfile

    total, grid, last, bad = None, 0, None, _bad_annotations(inst)
    summary = None if collected.profiles is None else InputProfile(contract)
    for win in _chunks(inst, contract, overlap, on_missing, batch_size):
        if summary is not None:
            summary.update(win)
        duration = win.data.shape[-1] / win.sfreq
        if win.n_skipped:
            skipped, grid = _skipped_onsets(win, grid, overlap)
            collected.skip(index, skipped, duration, bad)
        else:
            grid += len(win.onsets)
        total = _run_chunk(fn, accumulate, win, batch_size, device, collected, total)
        collected.source.append(np.full(len(win.onsets), index))
        collected.onsets.append(win.onsets)
        collected.durations.append(np.full(len(win.onsets), duration))
        if bar is not None:
            bar.update(len(win.onsets))
        last = win
    collected.ch_names.append(list(last.ch_names))
    collected.positions.append(last.positions)
    collected.sums.append(total)
    if summary is not None:
        collected.profiles.append(summary)
