"""BIDS input and output: find EEG recordings, read labels, write derivatives."""

import json
import os
from pathlib import Path

import numpy as np
from mne.utils import logger, verbose

from .utils import atomic_path

#: Extensions of the raw EEG files a BIDS dataset may hold (one file per run).
EEG_EXTENSIONS = (".edf", ".bdf", ".vhdr", ".set", ".fif")

#: Name of the derivative pipeline folder: ``<root>/derivatives/mne-eegfm``.
PIPELINE_NAME = "mne-eegfm"

_BIDS_VERSION = "1.9.0"
_CODE_URL = "https://github.com/mne-tools/mne-eegfm"


def is_bids_root(path):
    """Tell whether ``path`` is the root folder of a BIDS dataset.

    Parameters
    ----------
    path : path-like
        Any path.

    Returns
    -------
    bool
        True if ``path`` is a folder holding ``dataset_description.json``.
    """
    path = Path(path)
    return path.is_dir() and (path / "dataset_description.json").is_file()


def _as_list(value):
    if value is None or isinstance(value, list | tuple):
        return None if not value else list(value)
    return [value]


def _strip_prefix(values, prefix):
    if values is None:
        return None
    return [v[len(prefix) :] if v.startswith(prefix) else v for v in values]


@verbose
def find_recordings(root, *, subjects=None, sessions=None, tasks=None, verbose=None):
    """Find every EEG recording of a BIDS dataset.

    Parameters
    ----------
    root : path-like
        The BIDS root (the folder with ``dataset_description.json``).
    subjects, sessions, tasks : str | list of str | None
        Keep only these subjects (``"01"`` or ``"sub-01"``), sessions and tasks.
        None keeps all.
    verbose : bool | str | int | None
        Control verbosity of the logging output (see :func:`mne.verbose`).

    Returns
    -------
    paths : list of mne_bids.BIDSPath
        One path per recording, sorted by file name.

    Raises
    ------
    ValueError
        If ``root`` is not a BIDS root or holds no EEG recording that matches.
    """
    from mne_bids import find_matching_paths

    root = Path(root)
    if not is_bids_root(root):
        raise ValueError(
            f"{root} is not a BIDS root: it has no dataset_description.json."
        )
    subjects = _strip_prefix(_as_list(subjects), "sub-")
    sessions = _strip_prefix(_as_list(sessions), "ses-")
    tasks = _strip_prefix(_as_list(tasks), "task-")
    paths = find_matching_paths(
        root,
        subjects=subjects,
        sessions=sessions,
        tasks=tasks,
        datatypes="eeg",
        suffixes="eeg",
        extensions=list(EEG_EXTENSIONS),
    )
    paths = sorted({str(p.fpath): p for p in paths}.items())
    paths = [p for _, p in paths if p.split in (None, "01")]
    if not paths:
        filters = {"subject": subjects, "session": sessions, "task": tasks}
        used = ", ".join(f"{k}={v}" for k, v in filters.items() if v)
        raise ValueError(
            f"No EEG recording found in the BIDS dataset {root}"
            + (f" for {used}" if used else "")
            + ": expected files like sub-<label>/[ses-<label>/]eeg/"
            f"sub-<label>_..._eeg.<ext> with ext in {', '.join(EEG_EXTENSIONS)}."
        )
    logger.info(f"Found {len(paths)} EEG recording(s) in {root}")
    return paths


@verbose
def read_recording(bids_path, verbose=None):
    """Read one BIDS EEG recording, refusing discontinuous EDF+D/BDF+D files.

    Parameters
    ----------
    bids_path : mne_bids.BIDSPath
        The recording (as returned by :func:`find_recordings`).
    verbose : bool | str | int | None
        Control verbosity of the logging output (see :func:`mne.verbose`).

    Returns
    -------
    raw : mne.io.Raw
        The recording with channel types, bad channels and electrode positions
        from the BIDS sidecar files.
    """
    from mne_bids import read_raw_bids

    from .preprocessing import read_raw

    fpath = Path(bids_path.fpath)
    if fpath.suffix.lower() in (".edf", ".bdf"):
        # read_raw refuses EDF+D/BDF+D with a clear message; read_raw_bids
        # would read such a file as if it were continuous.
        read_raw(fpath, verbose=False)
    raw = read_raw_bids(bids_path, on_ch_mismatch="rename", verbose=False)
    if raw.get_montage() is None:
        montage = _electrodes_montage(bids_path)
        if montage is not None:
            raw.set_montage(montage, on_missing="ignore", verbose=False)
            logger.info(f"Electrode positions of {fpath.name} from {montage.source}")
    return raw


_UNITS = {"m": 1.0, "cm": 1e-2, "mm": 1e-3}


def _electrodes_montage(bids_path):
    """Montage from an electrodes.tsv with anatomical landmarks, or None.

    MNE-BIDS leaves positions out when several electrodes files match (e.g.
    with and without ``space-``); take the first one whose coordinate system
    gives the nasion and preauricular points, so MNE can go to the head frame.
    """
    import mne
    import pandas as pd

    prefix = f"sub-{bids_path.subject}"
    if bids_path.session:
        prefix += f"_ses-{bids_path.session}"
    for tsv in sorted(Path(bids_path.directory).glob(f"{prefix}*_electrodes.tsv")):
        coords = tsv.with_name(tsv.name.replace("_electrodes.tsv", "_coordsystem.json"))
        try:
            system = json.loads(coords.read_text(encoding="utf-8-sig"))
            scale = _UNITS[system["EEGCoordinateUnits"]]
            marks = system["AnatomicalLandmarkCoordinates"]
            fid = {k.lower(): np.asarray(marks[k], float) * scale for k in marks}
            table = pd.read_csv(tsv, sep="\t", encoding="utf-8-sig")
        except (OSError, KeyError, ValueError):
            continue
        table = table[table[["x", "y", "z"]].notna().all(axis=1)]
        pos = dict(zip(table["name"], table[["x", "y", "z"]].to_numpy(float) * scale))
        montage = mne.channels.make_dig_montage(
            ch_pos=pos,
            nasion=fid.get("nas"),
            lpa=fid.get("lpa"),
            rpa=fid.get("rpa"),
            coord_frame="unknown",
        )
        montage.source = tsv.name
        return montage
    return None


def read_participants(root):
    """Read ``participants.tsv`` of a BIDS dataset.

    Parameters
    ----------
    root : path-like
        The BIDS root.

    Returns
    -------
    participants : pandas.DataFrame
        One row per participant, indexed by the subject label without ``sub-``.
    """
    import pandas as pd

    fname = Path(root) / "participants.tsv"
    if not fname.is_file():
        raise ValueError(f"The BIDS dataset {root} has no participants.tsv.")
    table = pd.read_csv(fname, sep="\t", dtype=str, keep_default_na=False)
    if "participant_id" not in table.columns:
        raise ValueError(f"{fname} has no participant_id column.")
    table.index = table.pop("participant_id").str.removeprefix("sub-")
    return table


def subject_labels(root, column):
    """Map each subject to its value in a ``participants.tsv`` column.

    Parameters
    ----------
    root : path-like
        The BIDS root.
    column : str
        Column of ``participants.tsv`` (e.g. ``"group"``).

    Returns
    -------
    labels : dict
        Subject label (without ``sub-``) -> value; subjects whose value is
        missing (empty or ``n/a``) are left out.
    """
    table = read_participants(root)
    if column not in table.columns:
        raise ValueError(
            f"participants.tsv of {root} has no column {column!r}; "
            f"columns: {', '.join(table.columns)}."
        )
    values = table[column].str.strip()
    return {sub: val for sub, val in values.items() if val not in ("", "n/a")}


def derivatives_root(root):
    """Return ``<root>/derivatives/mne-eegfm``.

    Parameters
    ----------
    root : path-like
        The BIDS root of the source dataset.

    Returns
    -------
    path : pathlib.Path
        The folder of the mne-eegfm derivatives.
    """
    return Path(root) / "derivatives" / PIPELINE_NAME


def derivative_path(bids_path, deriv_root, suffix, extension, description="eegfm"):
    """Build the path of a derivative file from the entities of its source.

    Parameters
    ----------
    bids_path : mne_bids.BIDSPath
        The source recording.
    deriv_root : path-like
        Root of the derivative dataset.
    suffix : str
        BIDS suffix of the derivative (e.g. ``"predictions"``).
    extension : str
        File extension with its dot (e.g. ``".tsv"``).
    description : str
        Value of the ``desc`` entity.

    Returns
    -------
    path : pathlib.Path
        E.g. ``<deriv_root>/sub-01/eeg/sub-01_task-rest_desc-eegfm_predictions.tsv``.
    """
    out = bids_path.copy().update(
        root=deriv_root,
        suffix=suffix,
        extension=extension,
        description=description,
        split=None,
        check=False,
    )
    return Path(out.fpath)


def write_dataset_description(deriv_root, source_root):
    """Write ``dataset_description.json`` of the mne-eegfm derivative dataset.

    Parameters
    ----------
    deriv_root : path-like
        Root of the derivative dataset (created if needed).
    source_root : path-like
        BIDS root of the source dataset.

    Returns
    -------
    fname : pathlib.Path
        The file written.
    """
    from . import __version__

    deriv_root = Path(deriv_root)
    source_root = Path(source_root)
    source = {"URL": Path(os.path.relpath(source_root, deriv_root)).as_posix()}
    source_desc = json.loads((source_root / "dataset_description.json").read_text())
    if source_desc.get("DatasetDOI"):
        source["DOI"] = source_desc["DatasetDOI"]
    description = {
        "Name": f"mne-eegfm outputs for {source_desc.get('Name', source_root.name)}",
        "BIDSVersion": _BIDS_VERSION,
        "DatasetType": "derivative",
        "GeneratedBy": [
            {
                "Name": PIPELINE_NAME,
                "Version": __version__,
                "Description": "EEG foundation model predictions and embeddings "
                "(research demonstration, not a diagnostic device).",
                "CodeURL": _CODE_URL,
            }
        ],
        "SourceDatasets": [source],
    }
    fname = deriv_root / "dataset_description.json"
    write_text(fname, json.dumps(description, indent=4, ensure_ascii=False) + "\n")
    return fname


# Output files -------------------------------------------------------------


def write_text(fname, text):
    """Write UTF-8 text atomically.

    Parameters
    ----------
    fname : path-like
        The file to write.
    text : str
        Its content.
    """
    with atomic_path(fname) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_tsv(fname, table):
    """Write a pandas DataFrame as a BIDS-style TSV file, atomically.

    Parameters
    ----------
    fname : path-like
        The file to write.
    table : pandas.DataFrame
        The table (its index is not written; missing values become ``n/a``).
    """
    write_text(fname, table.to_csv(sep="\t", index=False, na_rep="n/a"))
