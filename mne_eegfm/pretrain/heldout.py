"""Subjects held out of pretraining, fixed once for the transfer benchmark.

``benchmarks/transfer.py`` evaluates encoders on these subjects only, so an
encoder must never have seen them. :func:`check_sources` makes pretraining
refuse their recordings unless the caller overrides it explicitly.

- Guinea-Bissau (Emotiv EPOC, 14 ch): the 24 subjects (12 epilepsy, 12
  control) already held out of the first shipped encoder, so that encoder
  stays comparable.
- PhysioNet EEG Motor Movement/Imagery (64 ch, 160 Hz): 13 of the 23
  subjects with runs R03 and R04 (the transfer tasks) plus S003 (the
  ``eegbci-S003`` recordings). The 12 other subjects (S005, S007, ..., S023,
  S032, S047) are pretraining data.
"""

import json
import re
from pathlib import Path

#: Guinea-Bissau subjects (BIDS labels) held out of pretraining.
GUINEA_BISSAU = (
    "008", "015", "018", "021", "023", "025", "026", "027", "029", "030", "032",
    "036", "041", "043", "054", "061", "063", "065", "071", "078", "079", "085",
    "092", "093",
)  # fmt: skip
#: EEG Motor Movement/Imagery subjects held out of pretraining.
EEGMMIDB = (
    "S002", "S003", "S004", "S006", "S008", "S010", "S012", "S014", "S016", "S018",
    "S020", "S022", "S024", "S042",
)  # fmt: skip
#: Name (prefix) of the Guinea-Bissau BIDS dataset in dataset_description.json.
GUINEA_BISSAU_NAME = "Guinea-Bissau epilepsy"
_EEGMMIDB_FILE = re.compile(r"^(S\d{3})_?R\d{2}")
_BIDS_SUBJECT = re.compile(r"sub-([A-Za-z0-9]+)")


def _bids_name(path):
    """Name of the BIDS dataset holding ``path`` ("" when none)."""
    for folder in Path(path).resolve().parents:
        description = folder / "dataset_description.json"
        if description.is_file():
            try:
                return str(json.loads(description.read_text()).get("Name", ""))
            except (OSError, ValueError):
                return ""
    return ""


def heldout_subject(path):
    """Return the held-out subject a recording belongs to, or None.

    Parameters
    ----------
    path : path-like
        A recording file (or folder format).

    Returns
    -------
    subject : str | None
        ``"guinea-bissau sub-008"`` or ``"eegmmidb S004"`` style label when the
        recording is one of a held-out subject, else None.
    """
    path = Path(path)
    match = _EEGMMIDB_FILE.match(path.name)
    if match and match.group(1) in EEGMMIDB:
        return f"eegmmidb {match.group(1)}"
    match = _BIDS_SUBJECT.search(path.name)
    if match and match.group(1) in GUINEA_BISSAU:
        in_gb_folder = any("guinea-bissau" in p.name.lower() for p in path.parents)
        if in_gb_folder or _bids_name(path).startswith(GUINEA_BISSAU_NAME):
            return f"guinea-bissau sub-{match.group(1)}"
    return None


def check_sources(paths, allow_heldout=False):
    """Refuse recordings of held-out subjects.

    Parameters
    ----------
    paths : iterable of path-like
        The recordings pretraining would use.
    allow_heldout : bool
        If True, return the held-out recordings instead of raising (the
        caller then owns the consequence: the transfer benchmark is no longer
        on unseen subjects).

    Returns
    -------
    heldout : list of str
        ``"<file> (<subject>)"`` for each held-out recording (empty unless
        ``allow_heldout``).

    Raises
    ------
    ValueError
        Naming the files and subjects, when a recording is held out and
        ``allow_heldout`` is False.
    """
    found = []
    for path in paths:
        subject = heldout_subject(path)
        if subject is not None:
            found.append(f"{path} ({subject})")
    if found and not allow_heldout:
        listed = "; ".join(found[:5]) + ("; ..." if len(found) > 5 else "")
        raise ValueError(
            f"{len(found)} recording(s) belong to subjects held out for the "
            f"transfer benchmark (mne_eegfm.pretrain.heldout): {listed}. Leave "
            "them out (--holdout-subjects / --exclude-heldout) or pass "
            "--allow-heldout to use them anyway."
        )
    return found
