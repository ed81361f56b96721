"""Finding and reading recordings, fingerprints of files, and atomic writers.

One list of extensions serves every command that scans a folder
(``predict``, ``embed``, ``pretrain``): the EEG formats MNE reads, with the
header file of formats split over several files (BrainVision ``.vhdr``,
EEGLAB ``.set``), EGI ``.mff`` folders and Nihon Kohden ``.EEG`` files.
Companion files (``.vmrk``, ``.fdt``, ``.dat``...) are read through their header
and are not listed; generic names MNE can also read (``.txt``, ``.mat``,
``.bin``) and MEG/fNIRS formats are left out of folder scans (give such a file
by name instead).
"""

import hashlib
import os
import re
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from ._docs import fill_doc

__all__ = [
    "READABLE_EXTENSIONS",
    "atomic_path",
    "file_fingerprint",
    "find_recordings",
    "read_recording",
    "remove_stale_temporaries",
]

#: Extensions of the recordings found in a folder (``.mff``: folders).
READABLE_EXTENSIONS = (
    ".edf", ".bdf", ".gdf", ".vhdr", ".ahdr", ".set", ".fif", ".cnt", ".lay",
    ".mff", ".cdt", ".nxe", ".nedf",
)  # fmt: skip
#: Nihon Kohden recordings share ``.eeg`` with BrainVision data files: a
#: ``.eeg`` file is a recording unless a BrainVision header of its stem is beside it.
NIHON_KOHDEN = ".eeg"
_FOLDER_FORMATS = (".mff",)
_TMP_NAME = re.compile(r"^\.tmp-[0-9a-f]{8}-.+")
#: Temporaries older than this (seconds) are left over by a killed run.
STALE_AFTER_S = 3600.0


def _suffix(path):
    return Path(path).suffix.lower()


def _is_brainvision_data(path):
    return any(path.with_suffix(s).is_file() for s in (".vhdr", ".VHDR", ".ahdr"))


def is_recording(path):
    """Whether a path found in a folder is a recording to read."""
    path = Path(path)
    if path.name.startswith("."):
        return False
    suffix = _suffix(path)
    if suffix in _FOLDER_FORMATS:
        return path.is_dir()
    if not path.is_file():
        return False
    if suffix == NIHON_KOHDEN:
        return not _is_brainvision_data(path)
    return suffix in READABLE_EXTENSIONS


def find_recordings(folder, exclude=("derivatives",)):
    """Recordings in a folder and its subfolders, sorted.

    Parameters
    ----------
    folder : path-like
        The folder to scan.
    exclude : tuple of str
        Names of subfolders not entered (by default BIDS ``derivatives``).

    Returns
    -------
    paths : list of pathlib.Path
        Recording files and ``.mff`` folders (whose content is not listed).
    """
    found = []
    for root, dirs, files in os.walk(folder):
        root = Path(root)
        keep = []
        for name in sorted(dirs):
            if _suffix(name) in _FOLDER_FORMATS and is_recording(root / name):
                found.append(root / name)
            elif name not in exclude and not name.startswith("."):
                keep.append(name)
        dirs[:] = keep
        found += [root / name for name in files if is_recording(root / name)]
    return sorted(found)


@fill_doc
def read_recording(source, verbose=None):  # noqa: D417 (docdict)
    """Read a recording lazily: a file, an ``.mff`` folder or a BIDS path.

    Parameters
    ----------
    source : path-like | mne_bids.BIDSPath
        The recording.
    %(verbose)s

    Returns
    -------
    raw : mne.io.Raw
        The recording, not loaded into memory (EDF+D files are refused).
    """
    if not isinstance(source, str | os.PathLike):
        from .bids import read_recording as read_bids

        return read_bids(source, verbose=verbose)
    from .preprocessing import read_raw

    path = Path(source)
    if path.is_dir() and _suffix(path) in _FOLDER_FORMATS:
        import mne

        try:
            return mne.io.read_raw(path, preload=False, verbose=verbose)
        except Exception as err:
            raise ValueError(
                f"Could not read {path}: {type(err).__name__}: {err}"
            ) from err
    _check_edf_record_duration(path)
    raw = read_raw(path, verbose=verbose)
    _check_fif_complete(raw, path)
    return raw


def _check_edf_record_duration(path):
    """Refuse an EDF/BDF whose header gives a record duration that is not > 0."""
    if path.suffix.lower() not in (".edf", ".bdf"):
        return
    with open(path, "rb") as fid:
        field = fid.read(252)[244:252]
    try:
        duration = float(field.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError):
        return  # MNE reports malformed headers itself
    if not duration > 0:
        raise ValueError(
            f"{path}: the header gives a data record duration of {duration:g} s; "
            "it must be positive (the header is damaged)."
        )


def _check_fif_complete(raw, path):
    """Refuse a FIF file cut short (its data buffers run past its end)."""
    extras = getattr(raw, "_raw_extras", None) or []
    if path.suffix.lower() not in (".fif", ".gz") or not extras:
        return
    for extra, fname in zip(extras, raw.filenames):
        entries = extra.get("ent") if isinstance(extra, dict) else None
        if not entries or fname is None:
            continue
        end = max(ent.pos + 16 + ent.size for ent in entries if ent is not None)
        size = Path(fname).stat().st_size
        if end > size:
            raise ValueError(
                f"{fname} is truncated: its data runs to byte {end} but the file "
                f"has {size} bytes (an interrupted copy?)."
            )


def _files_of(path):
    """The files whose content a recording is read from."""
    path = Path(path)
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    siblings = [p for p in path.parent.iterdir() if p.stem == path.stem]
    return sorted({path, *(p for p in siblings if p.is_file())})


def sha256(path, chunk=1 << 20):
    """SHA-256 hex digest of a file, read in 1-MiB pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as fid:
        while block := fid.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def file_stat(path):
    """``{"size": ..., "mtime_ns": ...}`` of a recording (all its files)."""
    return _stat(_files_of(path))


def _stat(files):
    stats = [f.stat() for f in files]
    return {
        "size": sum(s.st_size for s in stats),
        "mtime_ns": max(s.st_mtime_ns for s in stats),
    }


def _digest(files):
    digest = hashlib.sha256()
    for fname in files:
        digest.update(fname.name.encode() + b"\0" + sha256(fname).encode())
    return digest.hexdigest()


def file_fingerprint(path):
    """Size, modification time and SHA-256 of a recording (all its files).

    A header file and its companions (``x.vhdr``, ``x.vmrk``, ``x.eeg``) are
    fingerprinted together, as are the files of an ``.mff`` folder.

    Parameters
    ----------
    path : path-like
        The recording.

    Returns
    -------
    fingerprint : dict
        ``size`` (bytes), ``mtime_ns`` (latest) and ``sha256``.
    """
    files = _files_of(path)
    return {**_stat(files), "sha256": _digest(files)}


def same_file(path, fingerprint):
    """Whether ``path`` still has this fingerprint (digest only if stats match)."""
    if not isinstance(fingerprint, dict):
        return False
    try:
        files = _files_of(path)
        if _stat(files) != {k: fingerprint.get(k) for k in ("size", "mtime_ns")}:
            return False
        return _digest(files) == fingerprint.get("sha256")
    except OSError:
        return False


@contextmanager
def atomic_path(fname):
    """Give a temporary path that replaces ``fname`` only on success.

    The temporary file sits in the same folder, is named
    ``.tmp-<8 hex digits>-<name>`` and keeps the extension of ``fname`` (writers
    that check extensions accept it). It is renamed onto ``fname`` with
    :func:`os.replace` when the block ends without error and removed otherwise,
    so a failed run never leaves a half-written ``fname``; a killed run's
    temporaries are removed by :func:`remove_stale_temporaries`.

    Parameters
    ----------
    fname : path-like
        The final file name.

    Yields
    ------
    tmp : pathlib.Path
        The path to write to.
    """
    fname = Path(fname)
    fname.parent.mkdir(parents=True, exist_ok=True)
    tmp = fname.with_name(f".tmp-{uuid.uuid4().hex[:8]}-{fname.name}")
    try:
        yield tmp
        os.replace(tmp, fname)
    finally:
        tmp.unlink(missing_ok=True)


def remove_stale_temporaries(folder, older_than_s=STALE_AFTER_S):
    """Remove the temporaries :func:`atomic_path` left behind in a killed run.

    Only files named like ours (``.tmp-<8 hex digits>-<name>``) and older than
    ``older_than_s`` are removed, so a run writing now is not disturbed.

    Parameters
    ----------
    folder : path-like
        Output folder (searched with its subfolders).
    older_than_s : float
        Minimum age in seconds.

    Returns
    -------
    removed : list of pathlib.Path
        The files removed.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    limit = time.time() - older_than_s
    removed = []
    for path in folder.rglob(".tmp-*"):
        if _TMP_NAME.match(path.name) and path.is_file():
            if path.stat().st_mtime < limit:
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed
