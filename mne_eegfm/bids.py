"""BIDS input and output: find EEG recordings, read labels, write derivatives.

Over 600 lines on purpose: reading a dataset and writing its derivatives share
one set of BIDS path and entity rules, which one module keeps in one place.
"""

import json
import os
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, metadata
from pathlib import Path

import numpy as np
from mne.utils import logger, verbose

from ._docs import fill_doc
from .utils import atomic_path

#: Extensions of the raw EEG files a BIDS dataset may hold (one file per run).
EEG_EXTENSIONS = (".edf", ".bdf", ".vhdr", ".set", ".fif")

#: Name of the derivative pipeline folder: ``<root>/derivatives/mne-eegfm``.
PIPELINE_NAME = "mne-eegfm"

_BIDS_VERSION = "1.10.0"


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
@fill_doc
def find_recordings(root, *, subjects=None, sessions=None, tasks=None, verbose=None):
    """Find every EEG recording of a BIDS dataset.

    Parameters
    ----------
    root : path-like
        The BIDS root (the folder with ``dataset_description.json``).
    subjects, sessions, tasks : str | list of str | None
        Keep only these subjects (``"01"`` or ``"sub-01"``), sessions and tasks.
        None keeps all.
    %(verbose)s

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
    validate_bids_root(root)
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
            + _existing_values(root, filters)
        )
    logger.info(f"Found {len(paths)} EEG recording(s) in {root}")
    return paths


def _existing_values(root, filters):
    """Say which values of the filtered entities the dataset has."""
    from mne_bids import get_entity_vals

    notes = []
    for entity, wanted in filters.items():
        if not wanted:
            continue
        values = get_entity_vals(root, entity, ignore_datatypes=["anat", "func"])
        missing = sorted(set(wanted) - set(values))
        if missing:
            have = ", ".join(values) if values else "none"
            notes.append(f" Unknown {entity} {', '.join(missing)}; it has: {have}.")
    return "".join(notes)


@fill_doc
def validate_bids_root(root):
    """Check the dataset-level files of a BIDS root before any long work.

    Parameters
    ----------
    %(bids_root)s

    Returns
    -------
    description : dict
        The content of ``dataset_description.json``.

    Raises
    ------
    ValueError
        Naming the file, if ``root`` has no ``dataset_description.json``, if
        that file is not a JSON object, or if ``participants.tsv`` has rows
        with more or fewer fields than its header.
    """
    root = Path(root)
    fname = root / "dataset_description.json"
    if not is_bids_root(root):
        raise ValueError(f"{root} is not a BIDS root: it has no {fname.name}.")
    try:
        description = json.loads(fname.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{fname} is not valid JSON: {err}.") from None
    if not isinstance(description, dict):
        raise ValueError(
            f"{fname} must hold a JSON object ({{...}}), not a "
            f"{type(description).__name__}."
        )
    participants = root / "participants.tsv"
    if participants.is_file():
        _check_rectangular(participants)
    return description


def _check_rectangular(fname):
    """Raise a ValueError naming ``fname`` and the line if rows are ragged."""
    try:
        lines = fname.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as err:
        raise ValueError(f"{fname} is not UTF-8 text: {err}.") from None
    if not lines or not lines[0].strip():
        raise ValueError(f"{fname} is empty: it needs a header line.")
    n_fields = len(lines[0].split("\t"))
    for number, line in enumerate(lines[1:], start=2):
        if line and len(line.split("\t")) != n_fields:
            raise ValueError(
                f"{fname}, line {number}: {len(line.split(chr(9)))} tab-separated "
                f"fields where the header has {n_fields}."
            )


@contextmanager
def _no_lock_files():
    """Read with MNE-BIDS without creating ``*.lock`` files in the source.

    MNE-BIDS takes a file lock (a ``.lock`` file next to each sidecar) even to
    read, which fails or leaves files behind in a read-only or shared dataset.
    Reading needs no lock: nothing here writes to the source dataset.
    """
    try:
        from mne_bids import _fileio
    except ImportError:  # a version without locks
        yield
        return
    original = getattr(_fileio, "_get_lock_context", None)
    if original is None:
        yield
        return

    def unlocked(path, *, timeout=None, lock=True):
        return original(path, timeout=timeout, lock=False)

    _fileio._get_lock_context = unlocked
    try:
        yield
    finally:
        _fileio._get_lock_context = original


@verbose
@fill_doc
def read_recording(bids_path, verbose=None):
    """Read one BIDS EEG recording, refusing discontinuous EDF+D/BDF+D files.

    Parameters
    ----------
    bids_path : mne_bids.BIDSPath
        The recording (as returned by :func:`find_recordings`).
    %(verbose)s

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
    with _no_lock_files():
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


@fill_doc
def read_participants(root):
    """Read ``participants.tsv`` of a BIDS dataset.

    Parameters
    ----------
    %(bids_root)s

    Returns
    -------
    participants : pandas.DataFrame
        One row per participant, indexed by the subject label without ``sub-``.
    """
    import pandas as pd

    fname = Path(root) / "participants.tsv"
    if not fname.is_file():
        raise ValueError(f"The BIDS dataset {root} has no participants.tsv.")
    _check_rectangular(fname)
    table = pd.read_csv(fname, sep="\t", dtype=str, keep_default_na=False)
    if "participant_id" not in table.columns:
        raise ValueError(f"{fname} has no participant_id column.")
    table.index = table.pop("participant_id").str.removeprefix("sub-")
    return table


@fill_doc
def subject_labels(root, column):
    """Map each subject to its value in a ``participants.tsv`` column.

    Parameters
    ----------
    %(bids_root)s
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


@fill_doc
def derivative_path(bids_path, deriv_root, suffix, extension, description="eegfm"):
    """Build the path of a derivative file from the entities of its source.

    Parameters
    ----------
    %(source_and_derivatives)s
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
    """Write ``dataset_description.json`` and ``.bidsignore`` of the derivatives.

    The source dataset is named ``raw`` in ``DatasetLinks`` (a path relative to
    the derivatives, never an absolute one) and given in ``SourceDatasets`` as
    the BIDS URI ``bids:raw:``, with its DOI and version when it has them.

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
    source_desc = validate_bids_root(source_root)
    link = Path(os.path.relpath(source_root.resolve(), deriv_root.resolve()))
    source = {"URL": f"bids:{SOURCE_LINK}:"}
    if source_desc.get("DatasetDOI"):
        source["DOI"] = source_desc["DatasetDOI"]
    if source_desc.get("DatasetVersion"):
        source["Version"] = str(source_desc["DatasetVersion"])
    name = source_desc.get("Name") or source_root.resolve().name
    generated_by = {
        "Name": PIPELINE_NAME,
        "Version": __version__,
        "Description": "EEG foundation model predictions and embeddings "
        "(research demonstration, not a diagnostic device).",
    }
    if code_url := _code_url():
        generated_by["CodeURL"] = code_url
    description = {
        "Name": f"mne-eegfm outputs for {name}",
        "BIDSVersion": _BIDS_VERSION,
        "DatasetType": "derivative",
        "GeneratedBy": [generated_by],
        "SourceDatasets": [source],
        "DatasetLinks": {SOURCE_LINK: link.as_posix() + "/"},
    }
    fname = deriv_root / "dataset_description.json"
    write_text(fname, json.dumps(description, indent=4, ensure_ascii=False) + "\n")
    write_bidsignore(deriv_root)
    return fname


def _code_url():
    """The code URL the installed package declares, or None (none is invented)."""
    try:
        meta = metadata("mne-eegfm")
    except PackageNotFoundError:
        return None
    for entry in meta.get_all("Project-URL") or []:
        label, _, url = entry.partition(",")
        if label.strip().lower() in ("source", "repository", "homepage"):
            return url.strip()
    return meta.get("Home-page")


#: Name of the source dataset in ``DatasetLinks`` and in BIDS URIs.
SOURCE_LINK = "raw"

#: Output kind -> (``desc`` entity, BIDS suffix, extension). BIDS has an
#: events file for onset/duration tables; it has no suffix for embedding
#: arrays, HTML reports or a dataset-level table of recordings: those are
#: listed in ``.bidsignore`` (:data:`BIDSIGNORE`), as the specification
#: provides for files outside it, and still get a JSON sidecar.
OUTPUTS = {
    "predictions": ("eegfmwindows", "events", ".tsv"),
    "events": ("eegfm", "events", ".tsv"),
    "embeddings": ("eegfm", "embeddings", ".npz"),
    "report": ("eegfm", "report", ".html"),
}

#: Patterns of the derivative files the BIDS validator is told to skip.
BIDSIGNORE = (
    "*_predictions.tsv",
    "*_predictions.json",
    "*_embeddings.npz",
    "*_embeddings.json",
    "*_report.html",
    "*_report.json",
    "summary.tsv",
    "summary.json",
    "embeddings.tsv",
    "embeddings.json",
)


def write_bidsignore(deriv_root):
    """Write ``.bidsignore`` listing the outputs that BIDS has no name for.

    Parameters
    ----------
    deriv_root : path-like
        Root of the derivative dataset.

    Returns
    -------
    fname : pathlib.Path
        The file written.
    """
    fname = Path(deriv_root) / ".bidsignore"
    write_text(fname, "\n".join(BIDSIGNORE) + "\n")
    return fname


@fill_doc
def output_path(bids_path, deriv_root, kind):
    """Path of one kind of output for a BIDS recording.

    Parameters
    ----------
    %(source_and_derivatives)s
    kind : str
        One of :data:`OUTPUTS`: ``"predictions"`` (one row per window),
        ``"events"`` (szCORE events), ``"embeddings"`` or ``"report"``.

    Returns
    -------
    path : pathlib.Path
        E.g. ``<deriv_root>/sub-01/eeg/sub-01_task-rest_desc-eegfm_events.tsv``.
    """
    if kind not in OUTPUTS:
        raise ValueError(f"Unknown output kind {kind!r}; use one of {list(OUTPUTS)}.")
    desc, suffix, extension = OUTPUTS[kind]
    return derivative_path(bids_path, deriv_root, suffix, extension, desc)


def sidecar_path(fname):
    """Path of the JSON sidecar of an output file (same name, ``.json``).

    Parameters
    ----------
    fname : path-like
        The output file (``.tsv``, ``.npz``, ``.html``, ...).

    Returns
    -------
    path : pathlib.Path
        The sidecar's path.
    """
    return Path(fname).with_suffix(".json")


def source_uri(bids_path):
    """BIDS URI of a source recording, e.g. ``bids:raw:sub-01/eeg/x_eeg.edf``.

    Parameters
    ----------
    bids_path : mne_bids.BIDSPath
        The source recording (with its ``root``).

    Returns
    -------
    uri : str
        The URI, relative to the source dataset named in ``DatasetLinks``.
    """
    relative = (
        Path(bids_path.fpath).resolve().relative_to(Path(bids_path.root).resolve())
    )
    return f"bids:{SOURCE_LINK}:{relative.as_posix()}"


def provenance(model_name, model_sha256, *, model_version=None):
    """Sidecar fields naming the model and the software that wrote an output.

    Parameters
    ----------
    model_name : str
        Name of the model (registered name or file name, never a path).
    model_sha256 : str | None
        SHA-256 of the model's weights file.
    model_version : str | None
        Version of the model, when its card gives one.

    Returns
    -------
    fields : dict
        ``ModelName``, ``ModelVersion``, ``ModelSHA256``, ``SoftwareName`` and
        ``SoftwareVersion``.
    """
    from . import __version__

    name = str(model_name)
    if Path(name).is_absolute():
        name = Path(name).name
    return {
        "ModelName": name,
        "ModelVersion": "n/a" if model_version is None else str(model_version),
        "ModelSHA256": model_sha256 or "n/a",
        "SoftwareName": PIPELINE_NAME,
        "SoftwareVersion": __version__,
    }


def write_sidecar(fname, *, sources, provenance, description, columns=None, **extra):
    """Write the JSON sidecar of an output file, atomically.

    Parameters
    ----------
    fname : path-like
        The output file the sidecar describes (the sidecar is
        :func:`sidecar_path` of it).
    sources : list of str
        BIDS URIs (:func:`source_uri`) or paths relative to the output folder
        of the files the output was computed from. Absolute paths are refused.
    provenance : dict
        From :func:`provenance`.
    description : str
        What the file holds.
    columns : dict | None
        Column name -> description (or a dict with ``Description``,
        ``Levels``, ``Units``) for a TSV file.
    **extra
        Further fields (JSON-serialisable, CamelCase by BIDS convention).

    Returns
    -------
    sidecar : pathlib.Path
        The file written.
    """
    for source in sources:
        if not str(source).startswith("bids:") and Path(source).is_absolute():
            raise ValueError(f"Sidecar sources must be relative, got {source}.")
    meta = {"Description": description, "Sources": [str(s) for s in sources]}
    meta.update(provenance)
    for column, about in (columns or {}).items():
        meta[column] = about if isinstance(about, dict) else {"Description": about}
    meta.update(extra)
    sidecar = sidecar_path(fname)
    write_text(sidecar, json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    return sidecar


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
