"""Pretraining data: recordings -> input contract -> cached windows -> batches.

Every recording is read with MNE (or MNE-BIDS), preprocessed once through the
model's :class:`~mne_eegfm.InputContract` and cut into windows, which are cached
on disk as a memory-mapped ``.npy`` file per recording. The cache key is the
file's path, size and modification time plus the contract and the overlap, so
later epochs (and later runs) only read the memory map. Batches hold windows of
one montage (:class:`MontageBatchSampler`, no padding) or of every montage
(:class:`MixedBatchSampler`, padded with a channel mask); a random channel
subset and channel dropout (:func:`channel_subset`) teach the channel
unification to handle any montage. The order of the batches and the channels
kept are pure functions of the seed, the epoch, the rank and the step, which
is what makes resuming exact.
"""

import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from mne.utils import logger, verbose, warn

from .._docs import fill_doc
from ..io import READABLE_EXTENSIONS as FILE_EXTENSIONS
from .heldout import check_sources, heldout_subject

_CACHE_VERSION = 1
_SUBJECT = re.compile(r"sub-([A-Za-z0-9]+)")


@dataclass
class Source:
    """One recording to preprocess: a file, or a recording of a BIDS dataset."""

    path: Path
    subject: str | None = None
    bids_path: object = None


def _subject_of(path):
    match = _SUBJECT.search(Path(path).name)
    return match.group(1) if match else None


def _files_in(folder):
    found = []
    for path in sorted(Path(folder).rglob("*")):
        if path.suffix.lower() == ".mff" and path.is_dir():
            found.append(path)
        elif path.is_file() and path.suffix.lower() in FILE_EXTENSIONS:
            if not any(p.suffix.lower() == ".mff" for p in path.parents):
                found.append(path)
    return found


@verbose
@fill_doc
def find_sources(paths, holdout_subjects=(), heldout="raise", verbose=None):  # noqa: D417 (docdict)
    """List the recordings named by files, folders and BIDS roots.

    Parameters
    ----------
    paths : list of path-like
        EEG files MNE can read, BIDS roots (folders with
        ``dataset_description.json``, read with MNE-BIDS) or plain folders
        (searched recursively for EEG files).
    holdout_subjects : iterable of str
        Subjects to leave out (``"001"`` or ``"sub-001"``), matched against the
        BIDS subject or a ``sub-<label>`` part of the file name.
    heldout : "raise" | "exclude" | "allow"
        What to do with recordings of the subjects fixed in
        :mod:`mne_eegfm.pretrain.heldout` for the transfer benchmark: raise a
        ValueError naming them (default), leave them out, or use them.
    %(verbose)s

    Returns
    -------
    sources : list of Source
        One per recording, in the order given (folders sorted).
    """
    from ..bids import find_recordings, is_bids_root

    holdout = {str(s).removeprefix("sub-") for s in holdout_subjects}
    sources = []
    for path in map(Path, paths):
        if not path.exists():
            raise ValueError(f"Data path {path} does not exist.")
        if is_bids_root(path):
            sources += [
                Source(Path(bp.fpath), bp.subject, bp)
                for bp in find_recordings(path, verbose=False)
            ]
        elif path.is_dir() and path.suffix.lower() != ".mff":
            sources += [Source(p, _subject_of(p)) for p in _files_in(path)]
        else:
            sources.append(Source(path, _subject_of(path)))
    kept = [s for s in sources if s.subject not in holdout]
    if len(kept) < len(sources):
        logger.info(f"Leaving out {len(sources) - len(kept)} held-out recording(s)")
    if heldout not in ("raise", "exclude", "allow"):
        raise ValueError(
            f"heldout must be 'raise', 'exclude' or 'allow', got {heldout!r}"
        )
    if heldout == "exclude":
        found = [s for s in kept if heldout_subject(s.path) is not None]
        if found:
            logger.info(f"Leaving out {len(found)} recording(s) of benchmark subjects")
        return [s for s in kept if heldout_subject(s.path) is None]
    found = check_sources([s.path for s in kept], allow_heldout=heldout == "allow")
    if found:
        warn(f"Pretraining on {len(found)} recording(s) of benchmark subjects")
    return kept


def cache_key(path, contract, overlap):
    """Hash of a file's identity (path, size, mtime) and the preprocessing.

    Parameters
    ----------
    path : path-like
        The recording (for a folder format such as .mff, the folder).
    contract : InputContract
        The input contract.
    overlap : float
        Fraction of a window shared with the next one.

    Returns
    -------
    key : str
        Hex digest.
    """
    path = Path(path).resolve()
    stat = path.stat()
    ident = {
        "path": str(path),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "contract": contract.to_dict(),
        "overlap": float(overlap),
        "version": _CACHE_VERSION,
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:24]


def _read(source):
    if source.bids_path is not None:
        from ..bids import read_recording

        return read_recording(source.bids_path, verbose=False)
    from ..preprocessing import read_raw

    return read_raw(source.path, verbose=False)


def _write_entry(folder, windows, source):
    """Write one recording's windows and metadata into ``folder``."""
    np.save(folder / "data.npy", np.ascontiguousarray(windows.data, dtype=np.float32))
    meta = {
        "source": str(source.path),
        "subject": source.subject,
        "ch_names": list(windows.ch_names),
        "positions": np.asarray(windows.positions, dtype=float).tolist(),
        "n_windows": int(windows.data.shape[0]),
        "sfreq": float(windows.sfreq),
    }
    (folder / "meta.json").write_text(json.dumps(meta))


def _preprocess(source, contract, overlap, folder):
    """Preprocess a recording into a new cache folder (atomic rename)."""
    from ..preprocessing import prepare

    raw = _read(source)
    windows = prepare(raw, contract, overlap=overlap, on_missing="drop", verbose=False)
    if windows.data.shape[0] == 0:
        raise ValueError("no complete window in the recording")
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
    try:
        _write_entry(tmp, windows, source)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@dataclass
class Recording:
    """Cached windows of one recording (``data`` is a read-only memory map)."""

    data: np.ndarray
    ch_names: list
    positions: np.ndarray
    source: str
    subject: str | None

    @property
    def montage(self):
        """Key of the montage: channel names and positions (rounded to 0.1 mm)."""
        rounded = np.round(self.positions, 4).tolist()
        return json.dumps([self.ch_names, rounded])


def _load_entry(folder):
    meta = json.loads((folder / "meta.json").read_text())
    return Recording(
        data=np.load(folder / "data.npy", mmap_mode="r"),
        ch_names=meta["ch_names"],
        positions=np.asarray(meta["positions"], dtype=np.float32),
        source=meta["source"],
        subject=meta["subject"],
    )


#: Errors of the cache's disk (full, quota, read-only): they end the run.
_DISK_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


@verbose
@fill_doc
def cache_recordings(sources, contract, cache_dir, overlap=0.0, verbose=None):  # noqa: D417 (docdict)
    """Preprocess every recording once and return the cached windows.

    Recordings that cannot be read or preprocessed (unreadable file, no EEG
    channel with a known position, too short for one window...) are skipped
    with a warning giving the reason; they never stop the run. A full or
    read-only cache disk does (OSError naming the recording).

    Parameters
    ----------
    sources : list of Source
        Recordings, from :func:`find_sources`.
    contract : InputContract
        Preprocessing and window length.
    cache_dir : path-like
        Folder of the cache (created if needed).
    overlap : float
        Fraction of a window shared with the next one, in [0, 1).
    %(verbose)s

    Returns
    -------
    recordings : list of Recording
        The recordings that produced at least one window.
    """
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    recordings = []
    for source in sources:
        try:
            folder = cache_dir / cache_key(source.path, contract, overlap)
            if not (folder / "meta.json").is_file():
                logger.info(f"Preprocessing {source.path}")
                _preprocess(source, contract, overlap, folder)
            recordings.append(_load_entry(folder))
        except OSError as err:
            if err.errno in _DISK_ERRORS:  # never train on a silent subset
                raise OSError(
                    err.errno,
                    f"Could not cache {source.path} in {cache_dir}: {err.strerror}",
                ) from None
            warn(f"Skipping {source.path}: {type(err).__name__}: {err}")
        except Exception as err:  # a bad recording must not end a long run
            warn(f"Skipping {source.path}: {type(err).__name__}: {err}")
    if not recordings:
        raise ValueError("No usable recording: every recording was skipped.")
    return recordings


class WindowDataset:
    """Windows of cached recordings, grouped by montage.

    Parameters
    ----------
    recordings : list of Recording
        Cached recordings (from :func:`cache_recordings`).
    """

    def __init__(self, recordings):
        self.recordings = recordings
        groups = {}
        for rec_idx, rec in enumerate(recordings):
            pairs = [(rec_idx, win) for win in range(rec.data.shape[0])]
            groups.setdefault(rec.montage, []).extend(pairs)
        self.groups = [np.asarray(pairs, dtype=np.int64) for pairs in groups.values()]

    def __len__(self):
        return sum(len(group) for group in self.groups)

    def summary(self):
        """Counts for the model card: recordings, windows, montages, hours.

        Returns
        -------
        summary : dict
            ``n_recordings``, ``n_windows``, ``n_montages``,
            ``window_samples`` (samples per window) and
            ``channels_per_montage`` (sorted distinct channel counts).
        """
        n_times = self.recordings[0].data.shape[-1]
        return {
            "n_recordings": len(self.recordings),
            "n_windows": len(self),
            "n_montages": len(self.groups),
            "window_samples": int(n_times),
            "channels_per_montage": sorted({len(r.ch_names) for r in self.recordings}),
        }

    def batch(self, pairs):
        """Load a batch of windows of one montage (all channels).

        Parameters
        ----------
        pairs : ndarray of int, shape (n, 2)
            ``(recording index, window index)`` rows, all of one montage.

        Returns
        -------
        x : ndarray of float32, shape (n, C, T)
            The windows.
        positions : ndarray of float32, shape (C, 3)
            Channel positions shared by the batch.
        """
        data = np.stack([self.recordings[r].data[w] for r, w in pairs])
        return data.astype(np.float32), self.recordings[pairs[0][0]].positions


class MontageBatchSampler:
    """Deterministic batches of one montage each, sharded over ranks.

    For each epoch the windows of every montage are shuffled with a generator
    seeded by ``(seed, epoch)`` and cut into batches of ``batch_size`` (the last
    batch of a montage is completed by wrapping around); the batches of all
    montages are shuffled together, truncated to a multiple of ``world_size``
    and rank ``r`` takes batches ``r, r + world_size, ...``. Every rank thus
    runs the same number of steps, and the batch at (epoch, position) never
    depends on what ran before, so a run can resume anywhere.

    Parameters
    ----------
    groups : list of ndarray
        Per montage, the ``(recording, window)`` pairs (``WindowDataset.groups``).
    batch_size : int
        Windows per batch and rank.
    seed : int
        Seed of the order.
    rank, world_size : int
        This process's rank and the number of processes.
    """

    def __init__(self, groups, batch_size, seed=0, rank=0, world_size=1):
        self.groups = groups
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size

    def total_batches(self):
        """Number of batches per epoch, all ranks together."""
        return sum(-(-len(group) // self.batch_size) for group in self.groups)

    def batches_per_epoch(self):
        """Number of batches each rank gets per epoch."""
        total = self.total_batches()
        if total < self.world_size:
            raise ValueError(
                f"{total} batch(es) per epoch cannot be shared by {self.world_size} "
                "processes; use more data or a smaller batch size."
            )
        return total // self.world_size

    def epoch(self, epoch):
        """All batches of this rank for one epoch (list of (n, 2) arrays)."""
        batches = self.shuffled_batches(np.random.default_rng([self.seed, epoch]))
        per_rank = self.batches_per_epoch()
        return batches[: per_rank * self.world_size][self.rank :: self.world_size]

    def shuffled_batches(self, rng):
        """All batches of one epoch, in the order drawn from ``rng``."""
        batches = []
        for group in self.groups:
            batches += self.cut(group[rng.permutation(len(group))])
        return [batches[i] for i in rng.permutation(len(batches))]

    def cut(self, order):
        """Cut (n, 2) pairs into full batches, wrapping around to fill the last."""
        n_batches = -(-len(order) // self.batch_size)
        wrapped = np.resize(order, (n_batches * self.batch_size, 2))
        return list(wrapped.reshape(n_batches, self.batch_size, 2))


def channel_subset(n_chan, rng, max_channels=None, min_channels=1, drop_prob=0.0):
    """Draw the channels of one window: a random subset, then channel dropout.

    The subset size is uniform in ``[min(min_channels, n_chan),
    min(max_channels, n_chan)]``; each channel of the subset is then dropped
    with probability ``drop_prob``, but never below ``min_channels`` (nor
    below one channel), so a window always keeps real channels.

    Parameters
    ----------
    n_chan : int
        Channels of the window.
    rng : numpy.random.Generator
        Source of randomness.
    max_channels : int | None
        Largest subset (None: all channels).
    min_channels : int
        Smallest number of channels kept.
    drop_prob : float
        Probability of dropping each channel of the subset, in [0, 1).

    Returns
    -------
    kept : ndarray of int
        Sorted indices of the channels kept.
    """
    if not 0.0 <= drop_prob < 1.0:
        raise ValueError(f"drop_prob must be in [0, 1), got {drop_prob}")
    if min_channels < 1:
        raise ValueError(f"min_channels must be at least 1, got {min_channels}")
    high = n_chan if max_channels is None else min(max_channels, n_chan)
    low = min(min_channels, high)
    size = int(rng.integers(low, high + 1))
    subset = rng.permutation(n_chan)[:size]
    keep = rng.random(size) >= drop_prob
    if keep.sum() < low:  # restore dropped channels, in random order
        dropped = np.flatnonzero(~keep)
        keep[rng.permutation(dropped)[: low - keep.sum()]] = True
    return np.sort(subset[keep])


def mixed_batch(dataset, pairs, rng, max_channels=None, min_channels=1,
                drop_prob=0.0, crop_samples=None):  # fmt: skip
    """Load windows of any montages as one padded batch.

    Parameters
    ----------
    dataset : WindowDataset
        The windows.
    pairs : ndarray of int, shape (n, 2)
        ``(recording index, window index)`` rows.
    rng : numpy.random.Generator
        Source of the channel subsets and crops.
    max_channels, min_channels, drop_prob
        See :func:`channel_subset`.
    crop_samples : int | None
        Random crop of every window to this many samples (the same start
        for the batch); None keeps whole windows.

    Returns
    -------
    x : ndarray of float32, shape (n, C, T)
        The windows; padded channels are zeros.
    positions : ndarray of float32, shape (n, C, 3)
        Channel positions; padded channels are zeros.
    channel_mask : ndarray of bool, shape (n, C)
        True for real channels.
    """
    n_times = dataset.recordings[pairs[0][0]].data.shape[-1]
    start, stop = 0, n_times
    if crop_samples is not None and crop_samples < n_times:
        start = int(rng.integers(0, n_times - crop_samples + 1))
        stop = start + crop_samples
    picks = []
    for rec_idx, _ in pairs:
        n_chan = len(dataset.recordings[rec_idx].ch_names)
        picks.append(channel_subset(n_chan, rng, max_channels, min_channels, drop_prob))
    width = max(len(p) for p in picks)
    x = np.zeros((len(pairs), width, stop - start), dtype=np.float32)
    positions = np.zeros((len(pairs), width, 3), dtype=np.float32)
    channel_mask = np.zeros((len(pairs), width), dtype=bool)
    for row, ((rec_idx, win), pick) in enumerate(zip(pairs, picks)):
        rec = dataset.recordings[rec_idx]
        x[row, : len(pick)] = rec.data[win][pick, start:stop]
        positions[row, : len(pick)] = rec.positions[pick]
        channel_mask[row, : len(pick)] = True
    return x, positions, channel_mask


class MixedBatchSampler(MontageBatchSampler):
    """Deterministic batches that mix every montage, sharded over ranks.

    Like :class:`MontageBatchSampler`, but all windows are shuffled together
    (seeded by ``(seed, epoch)``) before being cut into batches, so a batch
    holds windows of several montages (load them with :func:`mixed_batch`).
    """

    def total_batches(self):
        """Number of batches per epoch, all ranks together."""
        return -(-sum(len(group) for group in self.groups) // self.batch_size)

    def shuffled_batches(self, rng):
        """All batches of one epoch, in the order drawn from ``rng``."""
        pairs = np.concatenate(self.groups)
        return self.cut(pairs[rng.permutation(len(pairs))])
