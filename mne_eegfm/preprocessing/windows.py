"""Cutting recordings into normalised windows: :func:`prepare`, :func:`iter_windows`."""

from dataclasses import dataclass, field

import numpy as np
from mne.utils import logger, use_log_level, verbose, warn

from .._docs import fill_doc
from ..montage import get_positions
from .contract import PATCH_SIZE, InputContract, _resolve_window
from .filtering import _filter_resample, _Plan
from .quality import SKIP_BAD_ANNOTATION, SKIP_FLAT, _Checks, _reasons, _warn_skipped

_EPS = 1e-8


_MAX_CHUNK = 2**25  # channels x input samples per chunk (256 MiB in float64)


@dataclass
class Windows:
    """Preprocessed windows of one recording, ready for the model.

    Parameters
    ----------
    data : ndarray of float32, shape (n_windows, n_channels, n_times)
        Normalised windows.
    positions : ndarray of float32, shape (n_channels, 3)
        Electrode positions in metres, MNE head frame.
    ch_names : list of str
        Channel names (as in the recording).
    onsets : ndarray of float64, shape (n_windows,)
        Start of each window in seconds from the start of the recording (for
        Epochs: the time of the first kept sample relative to each epoch's event,
        ``epochs.tmin`` plus any crop).
    sfreq : float
        Sampling rate of ``data``.
    n_skipped : int
        Windows left out (not evaluated): the sum of ``skipped``.
    source : str | None
        File the data came from, when known.
    skipped : dict of str to int
        Windows left out by reason: :data:`SKIP_BAD_ANNOTATION` (they overlap
        ``BAD_*`` annotations) and :data:`SKIP_FLAT` (every channel constant).
    scale : ndarray of float32, shape (n_windows, n_channels) | None
        Standard deviation of each channel of each window before normalisation,
        in the contract's units (after filtering and resampling).
    reasons : ndarray of str, shape (n_windows,) | None
        Epochs only (which keep one window per epoch): why a window should not
        be evaluated (:data:`SKIP_FLAT`), ``""`` where it can be; None when
        every window can (see :func:`window_quality`).
    """

    data: np.ndarray
    positions: np.ndarray
    ch_names: list
    onsets: np.ndarray
    sfreq: float
    n_skipped: int = 0
    source: str | None = None
    skipped: dict = field(default_factory=dict)
    scale: np.ndarray | None = None
    reasons: np.ndarray | None = None

    def __len__(self):
        return len(self.data)


def normalize_windows(data):
    """Z-score each window per channel: ``(x - mean) / (std + 1e-8)``.

    Parameters
    ----------
    data : array, shape (..., n_times)
        Windows (any leading shape); not modified.

    Returns
    -------
    out : ndarray of float32, same shape
        Normalised windows; a flat channel becomes zeros (never NaN).
    """
    return _normalize_inplace(np.array(data, dtype=np.float32, order="C", copy=True))


def _normalize_inplace(out):
    _zscore_inplace(out)
    return out


def _zscore_inplace(out):
    """Z-score ``out`` in place; return each row's std before (last axis)."""
    if not np.isfinite(out).all():
        raise ValueError("Cannot normalise windows that contain NaN or inf samples.")
    if out.size == 0:
        return np.zeros(out.shape[:-1], np.float32)
    out -= out.mean(axis=-1, keepdims=True)
    std = np.sqrt(np.mean(np.square(out), axis=-1, keepdims=True))
    out /= std + np.float32(_EPS)
    return std[..., 0]


def _bad_intervals(raw):
    """(start, stop) seconds from the recording start of BAD_* annotations."""
    annot = raw.annotations
    keep = [d.upper().startswith("BAD") for d in annot.description]
    starts = np.asarray(annot.onset, float)[keep] - raw.first_time
    return np.stack([starts, starts + np.asarray(annot.duration, float)[keep]], 1)


def _window_starts(n_out, n_times, overlap):
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap must be in [0, 1), got {overlap!r}")
    step = max(1, n_times - int(round(overlap * n_times)))
    return np.arange(0, n_out - n_times + 1, step)


def _is_bad(onsets, duration, bad):
    """Windows [onset, onset + duration) that overlap any bad interval.

    A zero-duration annotation marks the window that contains its onset.
    Memory is linear in windows + annotations (intervals are merged first).
    """
    if len(bad) == 0:
        return np.zeros(len(onsets), bool)
    starts, stops = _merge(bad[:, 0], np.maximum(bad[:, 1], bad[:, 0] + 1e-9))
    first = np.searchsorted(stops, onsets, side="right")  # first stop > onset
    hit = first < len(starts)
    hit[hit] = starts[first[hit]] < onsets[hit] + duration
    return hit


def _merge(starts, stops):
    """Union of intervals, as sorted disjoint (starts, stops)."""
    order = np.argsort(starts)
    starts, stops = starts[order], np.maximum.accumulate(stops[order])
    new = np.ones(len(starts), bool)
    new[1:] = starts[1:] > stops[:-1]
    groups = np.cumsum(new) - 1
    merged_stops = np.zeros(groups[-1] + 1)
    np.maximum.at(merged_stops, groups, stops)
    return starts[new], merged_stops


def _finish(windows, contract):
    """Normalised windows and each channel's std before normalisation."""
    out = np.ascontiguousarray(windows, dtype=np.float32)
    if contract.normalization == "zscore":
        return out, _zscore_inplace(out)
    return out, out.std(axis=-1)


def _windows_per_chunk(chunk_s, n_starts, step, plan, n_channels):
    """Windows per chunk: chunk_s of output, capped at _MAX_CHUNK input values."""
    if chunk_s is None:
        return n_starts
    max_s = _MAX_CHUNK / (n_channels * plan.sfreq_in)
    seconds = min(float(chunk_s), max_s)
    return max(1, int(seconds * plan.sfreq_out // step))


def _chunks(n_starts, per_chunk):
    for first in range(0, n_starts, per_chunk):
        yield first, min(first + per_chunk, n_starts)


@verbose
@fill_doc
def iter_windows(  # noqa: D417 (docdict)
    raw,
    contract,
    *,
    window_s=None,
    overlap=0.0,
    on_missing="raise",
    reject_by_annotation=True,
    chunk_s=600.0,
    verbose=None,
):
    """Preprocess a long recording chunk by chunk, in bounded memory.

    Parameters
    ----------
    raw : mne.io.Raw
        The recording (need not be preloaded: only one chunk is read at a time).
        It is never modified.
    %(contract_window)s
    overlap : float
        Fraction of a window shared with the next one, in [0, 1).
    %(on_missing)s
    reject_by_annotation : bool
        Leave out windows that overlap ``BAD_*`` annotations (counted in
        ``n_skipped``).
    chunk_s : float | None
        Seconds of output per chunk (None: the whole recording at once). Memory
        is about 20 bytes per channel and input sample of a chunk; chunks are
        also capped at 2**25 channels x input samples (e.g. 305 s of 22
        channels at 5 kHz), so memory stays bounded whatever the rate.
    %(verbose)s

    Returns
    -------
    windows : iterator of Windows
        The windows of each chunk, in time order (``onsets`` are from the
        recording start). A chunk whose windows all overlap BAD annotations
        gives an empty ``data`` with its ``n_skipped``. Checks of the whole
        recording (positions, length) run at the call; each chunk is read and
        processed when the iterator reaches it.

    Raises
    ------
    ValueError
        For a recording shorter than one window, NaN/inf samples (naming the
        channels) and channels without position (``on_missing="raise"``).
    """
    picks, ch_names, positions = get_positions(raw.info, on_missing=on_missing)
    plan = _Plan(raw.info["sfreq"], contract)
    n_times = _resolve_window(contract, window_s)
    n_in = raw.n_times
    n_out = plan.n_out(n_in) if n_in else 0
    out_sfreq = plan.sfreq_in * plan.up / plan.down
    if n_out < n_times:
        raise ValueError(
            f"The recording is {n_in / plan.sfreq_in:.3g} s long, shorter than one "
            f"{n_times / contract.sfreq:g}-s window ({n_times} samples at "
            f"{contract.sfreq} Hz): nothing to predict on."
        )
    starts = _window_starts(n_out, n_times, overlap)
    onsets = starts / out_sfreq
    bad = _bad_intervals(raw) if reject_by_annotation else np.zeros((0, 2))
    is_bad = _is_bad(onsets, n_times / out_sfreq, bad)
    step = starts[1] - starts[0] if len(starts) > 1 else n_times
    per_chunk = _windows_per_chunk(chunk_s, len(starts), step, plan, len(picks))
    source = str(raw.filenames[0]) if raw.filenames and raw.filenames[0] else None
    logger.info(
        f"Preprocessing {len(ch_names)} channels, {n_in / plan.sfreq_in:.1f} s at "
        f"{plan.sfreq_in} Hz -> {len(starts)} windows of {n_times} samples at "
        f"{out_sfreq:g} Hz ({int(is_bad.sum())} overlap BAD annotations)"
    )
    job = _Job(
        raw, contract, picks, ch_names, positions, plan, n_times, starts, onsets,
        is_bad, out_sfreq, source, _Checks(ch_names, plan.scale),
    )  # fmt: skip
    return _generate(job, _chunks(len(starts), per_chunk), logger.level)


@dataclass
class _Job:
    """Everything a chunk of :func:`iter_windows` needs."""

    raw: object
    contract: InputContract
    picks: np.ndarray
    ch_names: list
    positions: np.ndarray
    plan: _Plan
    n_times: int
    starts: np.ndarray
    onsets: np.ndarray
    is_bad: np.ndarray
    sfreq: float
    source: str | None
    checks: _Checks


def _generate(job, chunks, level):
    # A generator body runs after @verbose has restored the log level: reapply it.
    with use_log_level(level):
        for first, last in chunks:
            yield _chunk_windows(job, first, last)


def _chunk_windows(job, first, last):
    """Windows first..last-1 of a job (those overlapping BAD annotations or flat
    left out and counted)."""
    keep = ~job.is_bad[first:last]
    skipped = {SKIP_BAD_ANNOTATION: int((~keep).sum())}
    starts = job.starts[first:last][keep]
    onsets = job.onsets[first:last][keep]
    data = np.zeros((0, len(job.ch_names), job.n_times), np.float32)
    scale = np.zeros((0, len(job.ch_names)), np.float32)
    if len(starts):
        o0, o1 = starts[0], starts[-1] + job.n_times
        segment, ptp = _process_segment(job, o0, o1, starts)
        reasons = _reasons(ptp)
        if reasons is not None:
            evaluable = reasons == ""
            skipped[SKIP_FLAT] = int((~evaluable).sum())
            starts, onsets = starts[evaluable], onsets[evaluable]
        if len(starts):
            data = np.stack([segment[:, i : i + job.n_times] for i in starts - o0])
            data, scale = _finish(data, job.contract)
    windows = _windows(data, job.ch_names, job.positions, onsets, job.sfreq, job.source)
    windows.skipped = {k: v for k, v in skipped.items() if v}
    windows.n_skipped = sum(skipped.values())
    windows.scale = scale
    return windows


def _windows(data, ch_names, positions, onsets, sfreq, source):
    return Windows(
        data=data,
        positions=positions,
        ch_names=list(ch_names),
        onsets=np.asarray(onsets, np.float64),
        sfreq=float(sfreq),
        source=source,
    )


def _process_segment(job, o0, o1, starts):
    """Output samples [o0, o1) of the picked channels (float32, contract units)
    and the peak-to-peak input (volts) of each window starting at ``starts``."""
    raw, plan = job.raw, job.plan
    # Input samples needed, with margins, starting on the shared output grid.
    s = max(0, (o0 * plan.down // plan.up) // plan.down * plan.down - plan.margin)
    e = min(raw.n_times, -(-o1 * plan.down // plan.up) + plan.margin + 1)
    x = raw.get_data(picks=job.picks, start=s, stop=e)
    where = f" (between {s / plan.sfreq_in:.1f} and {e / plan.sfreq_in:.1f} s)"
    if s == 0 and e == raw.n_times:
        where = ""
    high, low = _window_extremes(x, s, starts, job.n_times, plan)
    peak = np.maximum(high.max(axis=0), -low.min(axis=0))
    y = _filter_resample(x, plan, pad_left=s == 0, pad_right=e == raw.n_times)
    del x
    first = s * plan.up // plan.down
    y = y[:, o0 - first : o1 - first]
    job.checks.output(y, where, peak)
    return y, high - low


def _window_extremes(x, s, starts, n_times, plan):
    """Largest and smallest input sample of each channel (`x` starts at input
    sample s) in each window, each of shape (n_windows, n_channels)."""
    high = np.empty((len(starts), x.shape[0]))
    low = np.empty_like(high)
    for k, start in enumerate(starts):
        a = start * plan.down // plan.up - s
        b = -(-(start + n_times) * plan.down // plan.up) - s
        high[k], low[k] = x[:, a:b].max(axis=-1), x[:, a:b].min(axis=-1)
    return high, low


@verbose
@fill_doc
def prepare(  # noqa: D417 (docdict)
    inst,
    contract,
    *,
    window_s=None,
    overlap=0.0,
    on_missing="raise",
    reject_by_annotation=True,
    chunk_s=600.0,
    verbose=None,
):
    """Apply an input contract to a copy of a Raw or Epochs.

    Parameters
    ----------
    inst : mne.io.Raw | mne.Epochs
        The data; never modified.
    %(contract_window)s
    overlap : float
        Raw only: fraction of a window shared with the next one, in [0, 1).
    %(on_missing)s
    reject_by_annotation : bool
        Raw only: leave out windows overlapping ``BAD_*`` annotations.
    chunk_s : float | None
        Raw only: process this many seconds at a time (None: all at once); the
        result is the same up to float32 rounding (see :func:`iter_windows`).
    %(verbose)s

    Returns
    -------
    windows : Windows
        For Raw, consecutive windows; for Epochs, one window per epoch.

    Notes
    -----
    A Raw shorter than one window is an error (ValueError), not an empty result.

    Epochs are resampled and filtered one by one (edges padded by reflection).
    Epochs shorter than the high-pass filter (33 s for 0.1 Hz) only have their
    mean removed instead of the high-pass: on so short a segment the high-pass
    removes a near-constant offset and little else. They are then fitted to the
    window by this rule: an epoch longer than the window is
    centre-cropped to it; a shorter one is centre-cropped to the largest multiple
    of 40 samples it holds (never zero-padded: padding would invent a flat
    signal the model never saw). Both cases warn, naming the lengths.
    """
    import mne

    if isinstance(inst, mne.BaseEpochs):
        return _prepare_epochs(inst, contract, window_s, on_missing)
    if not isinstance(inst, mne.io.BaseRaw):
        raise TypeError(
            f"inst must be mne.io.Raw or mne.Epochs, got {type(inst).__name__}"
        )
    parts = list(
        iter_windows(
            inst,
            contract,
            window_s=window_s,
            overlap=overlap,
            on_missing=on_missing,
            reject_by_annotation=reject_by_annotation,
            chunk_s=chunk_s,
        )
    )
    windows = parts[0]
    windows.data = np.concatenate([p.data for p in parts])
    windows.onsets = np.concatenate([p.onsets for p in parts])
    windows.scale = np.concatenate([p.scale for p in parts])
    windows.n_skipped = sum(p.n_skipped for p in parts)
    skipped = {}
    for part in parts:
        for reason, count in part.skipped.items():
            skipped[reason] = skipped.get(reason, 0) + count
    windows.skipped = skipped
    _warn_skipped(windows)
    return windows


def _prepare_epochs(epochs, contract, window_s, on_missing):
    if not epochs.preload:  # lazy: find the bad epochs on a copy (no data copied)
        epochs = epochs.copy().drop_bad(verbose=False)
    if len(epochs) == 0:
        raise ValueError("The Epochs object holds no epoch (all dropped?).")
    picks, ch_names, positions = get_positions(epochs.info, on_missing=on_missing)
    n_in = len(epochs.times)
    plan = _Plan(epochs.info["sfreq"], contract, epoch_s=n_in / epochs.info["sfreq"])
    target = _resolve_window(contract, window_s)
    start, keep = _epoch_crop(plan.n_out(n_in), target, contract.sfreq)
    checks = _Checks(ch_names, plan.scale)
    per_batch = max(1, _MAX_CHUNK // (len(picks) * (n_in + 2 * plan.margin)))
    parts, ptp = [], []
    for first in range(0, len(epochs), per_batch):
        item = slice(first, first + per_batch)
        x = epochs.get_data(picks=picks, item=item)
        high, low = x.max(axis=-1), x.min(axis=-1)
        ptp.append(high - low)
        y = _filter_resample(x, plan, True, True)
        checks.output(y, peak=np.maximum(high, -low).max(axis=0))
        parts.append(y[..., start : start + keep])
    out_sfreq = plan.sfreq_in * plan.up / plan.down
    onsets = np.full(len(epochs), epochs.tmin + start / out_sfreq)
    source = str(epochs.filename) if epochs.filename else None
    data, scale = _finish(np.concatenate(parts), contract)
    windows = _windows(data, ch_names, positions, onsets, out_sfreq, source)
    windows.scale = scale
    windows.reasons = _reasons(np.concatenate(ptp))
    if windows.reasons is not None:
        flat = np.flatnonzero(windows.reasons == SKIP_FLAT)
        warn(
            f"{len(flat)} of {len(epochs)} epochs are flat (every channel "
            f"constant; indices {', '.join(map(str, flat[:10]))}"
            f"{'...' if len(flat) > 10 else ''}): they cannot be evaluated "
            "(Windows.reasons marks them).",
            RuntimeWarning,
        )
    return windows


def _epoch_crop(n, target, sfreq):
    """(start, length) of the centre crop of an epoch of n samples; warns."""
    if n < PATCH_SIZE:
        raise ValueError(
            f"Epochs are {n} samples long at {sfreq} Hz, shorter than one "
            f"{PATCH_SIZE}-sample patch ({PATCH_SIZE / sfreq:.3g} s)."
        )
    keep = min(target, n - n % PATCH_SIZE)
    if keep != n:
        why = "longer than the window" if n > target else "not a multiple of 40"
        warn(
            f"Epochs are {n} samples at {sfreq} Hz ({why}; window {target} "
            f"samples): centre-cropped to {keep} samples ({keep // PATCH_SIZE} "
            "patches of 40).",
            RuntimeWarning,
        )
    return (n - keep) // 2, keep
