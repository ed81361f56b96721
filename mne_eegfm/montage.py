"""Electrode positions for the models, from any montage MNE can describe.

The models take one 3-D position per channel (metres, MNE head frame). For each
EEG channel of an :class:`mne.Info`, :func:`get_positions` uses the digitised
position when the channel has a valid one (finite, not all zero) and otherwise
looks its name up in MNE's ``standard_1005`` template, after normalising the
name the way clinical files spell it (see :func:`normalize_name`). A bipolar
derivation such as ``FP1-F7`` gets the midpoint of its two electrodes, so the
22-channel TUH TCP montage works. Reference and ear channels (``A1``,
``EEG A2-A1``) are left out and logged like other non-scalp channels, and
unusable digitised positions (non-finite, far from any head, collapsed to a
point) are ignored with a warning.
"""

import re
from functools import lru_cache

import numpy as np
from mne import pick_types
from mne.utils import logger, verbose, warn

from ._docs import fill_doc

__all__ = ["get_positions", "normalize_name"]

# References that can follow an electrode name ("EEG FP1-REF", "C3-LE", ...).
_REFERENCE_SUFFIXES = frozenset(
    ["REF", "LE", "RE", "AR", "AV", "AVG", "AVERAGE", "CAR", "REF1", "REF2", "LINKED"]
    + ["LM", "LINKEDEARS", "EARS", "MAST", "CZREF"]
)
# Ear and mastoid electrodes: a reference when written as a suffix ("C3-A1") in a
# referential montage, an electrode of a bipolar pair in a bipolar one ("T4-A2").
_EAR_ELECTRODES = frozenset(["A1", "A2", "M1", "M2"])
# Old 10-20 names and their 10-10 equivalents.
_OLD_NAMES = {"T3": "T7", "T4": "T8", "T5": "P7", "T6": "P8"}
# EDF signal-label prefixes that say the channel is not EEG ("ECG ECG1", "POL E").
_NON_EEG_PREFIXES = frozenset(
    ["ECG", "EKG", "EOG", "EMG", "RESP", "TEMP", "MISC", "STIM", "BIO", "SAO2"]
    + ["SPO2", "POL", "PHOTIC", "SEEG", "ECOG", "DBS", "DC", "TRIG"]
)
# Names of EEG-typed channels that record something else (eyes, heart, ...).
_NON_EEG_NAME = re.compile(
    r"^(H|V|L|R)?(EOG|ECG|EKG|EMG)|^(LOC|ROC|PHOTIC|RESP|SAO2|SPO2|PULSE|IBI|BURSTS"
    r"|SUPPR|STATUS|TRIGGER|STI|EVENT|TEMP|GSR)",
)
# BioSemi ABC cap labels beyond A2 (A3..A32): then A1/A2 are not the ear lobes.
_BIOSEMI_LABEL = re.compile(r"^A([3-9]|[12][0-9]|3[0-2])$", re.IGNORECASE)
_VALID_ON_MISSING = ("raise", "warn", "drop")
_MAX_RADIUS = 1.0  # metres from the head origin: farther is not a head
_MIN_SPREAD = 0.005  # metres: digitised positions all this close are collapsed


@lru_cache(maxsize=1)
def _template():
    """Return {UPPER name: (canonical name, position)} of standard_1005.

    The template's own coordinates are used as they are (not moved to the head
    frame through its fiducials), as the reference implementation does when
    the published checkpoints were trained; digitised positions differ from
    them by a near-translation, which the model's per-sample min-max
    normalisation of the coordinates removes.
    """
    from mne.channels import get_builtin_montages, make_standard_montage

    # MNE 1.13 renamed standard_1005 (same positions) to colin27_1005.
    kind = "colin27_1005" if "colin27_1005" in get_builtin_montages() else None
    montage = make_standard_montage(kind or "standard_1005")
    ch_pos = montage.get_positions()["ch_pos"]
    return {name.upper(): (name, pos.copy()) for name, pos in ch_pos.items()}


def _canonical_electrode(token):
    """Canonical 10-05 spelling of one electrode token, or None if unknown."""
    key = token.strip().rstrip(".").strip().upper()
    key = _OLD_NAMES.get(key, key)
    entry = _template().get(key)
    return None if entry is None else entry[0]


def _strip(name):
    """Remove the ``EEG`` prefix, spaces and EEGBCI-style trailing dots."""
    text = name.strip()
    text = re.sub(r"^EEG[\s_:]+", "", text, flags=re.IGNORECASE)
    return text.strip().rstrip(".").strip()


def _split(name):
    """Split a name into (first, second-or-None) around a single derivation dash."""
    text = _strip(name)
    parts = [part.strip().rstrip(".") for part in re.split(r"\s*-\s*", text)]
    if len(parts) == 2 and parts[0] and parts[1]:
        return parts[0], parts[1]
    return text, None


def _parse(name, bipolar):
    """Return the canonical electrode(s) of a channel name, or None if unknown.

    The result is a tuple of one name (unipolar) or two (bipolar derivation).
    """
    first, second = _split(name)
    active = _canonical_electrode(first)
    if second is None:
        return None if active is None else (active,)
    suffix = second.upper().replace(" ", "")
    if suffix in _REFERENCE_SUFFIXES:
        return None if active is None else (active,)
    other = _canonical_electrode(second)
    if suffix in _EAR_ELECTRODES and not bipolar and active not in _EAR_ELECTRODES:
        return None if active is None else (active,)
    if active is None or other is None:
        return None
    return (active, other)


def _is_unambiguous_bipolar(name):
    """True for a pair of two scalp electrodes such as ``FP1-F7`` or ``A1-T3``."""
    first, second = _split(name)
    if second is None or second.upper() in _REFERENCE_SUFFIXES:
        return False
    if second.upper() in _EAR_ELECTRODES:  # "C3-A2" may be referential, and
        return False  # "A2-A1" is a reference channel (left out)
    return None not in (_canonical_electrode(first), _canonical_electrode(second))


def _is_bipolar(names):
    """A bipolar montage: every channel a pair, at least one unambiguously.

    ``["C3-A2", "C4-A1"]`` is referential (ears as references); one ``FP1-F7``
    among referential channels does not make the recording bipolar.
    """
    pairs = [_split(n)[1] for n in names]
    return all(
        p is not None and p.upper().replace(" ", "") not in _REFERENCE_SUFFIXES
        for p in pairs
    ) and any(_is_unambiguous_bipolar(n) for n in names)


def normalize_name(name, *, bipolar=False):
    """Return the canonical 10-05 spelling of a channel name.

    Parameters
    ----------
    name : str
        A channel name as a file spells it, e.g. ``"EEG FP1-REF"``, ``"Fc5."``,
        ``"T3"`` or ``"FP1-F7"``.
    bipolar : bool
        Whether ear or mastoid suffixes (``-A1``, ``-A2``, ``-M1``, ``-M2``) name
        the second electrode of a bipolar pair (``"T4-A2"`` in the TCP montage)
        rather than the reference of a referential channel (``"C3-A2"``). Other
        suffixes are unambiguous: ``-REF``, ``-LE``, ``-AR``, ``-AVG``... are
        references and a second scalp electrode makes a bipolar pair.

    Returns
    -------
    canonical : str | None
        The canonical name (``"Fp1"``, ``"FC5"``, ``"T7"``), ``"Fp1-F7"`` for a
        bipolar pair, or None when the name is not a known 10-05 electrode.

    Notes
    -----
    Matching ignores case, an ``EEG`` prefix, spaces and trailing dots (EEGBCI).
    Old 10-20 names are mapped to 10-10 ones: T3/T4/T5/T6 -> T7/T8/P7/P8.
    """
    electrodes = _parse(name, bipolar)
    return None if electrodes is None else "-".join(electrodes)


def _looks_non_eeg(name):
    """True for EEG-typed channels whose names say they record something else."""
    text = name.strip()
    prefix = re.match(r"^([A-Za-z0-9]+)[\s_:]", text)
    if prefix and prefix.group(1).upper() in _NON_EEG_PREFIXES:
        return True
    return bool(_NON_EEG_NAME.match(_strip(text).upper()))


def _digitised(ch):
    """Digitised position of a channel, or None when it has none.

    All-NaN and all-zero locations are MNE's "no position"; any other value is
    returned as is (:func:`_digitisation_problem` judges it).
    """
    from mne.io.constants import FIFF

    pos = np.asarray(ch["loc"][:3], dtype=np.float64)
    if np.all(np.isnan(pos)) or not np.any(pos):
        return None
    if ch["coord_frame"] not in (FIFF.FIFFV_COORD_HEAD, FIFF.FIFFV_COORD_UNKNOWN):
        return None
    return pos


def _digitisation_problem(digitised):
    """Why a set of digitised positions ({name: position}) is unusable, or None."""
    names = list(digitised)
    pos = np.array([digitised[n] for n in names]).reshape(-1, 3)
    finite = np.isfinite(pos).all(axis=1)
    if not finite.all():
        bad = [n for n, ok in zip(names, finite) if not ok]
        return f"non-finite coordinates for channel(s) {', '.join(bad)}"
    radius = np.linalg.norm(pos, axis=1)
    if radius.max() > _MAX_RADIUS:
        bad = [n for n, r in zip(names, radius) if r > _MAX_RADIUS]
        return (
            f"channel(s) {', '.join(bad)} are up to {radius.max():.3g} m from the "
            f"head origin (a head is about 0.1 m: corrupt, or not in metres)"
        )
    spread = np.linalg.norm(pos - pos.mean(axis=0), axis=1).max()
    if len(names) > 1 and spread < _MIN_SPREAD:
        return (
            f"all {len(names)} digitised positions lie within {spread * 1e3:.3g} mm "
            "of one point (identical or collapsed)"
        )
    return None


def _template_position(electrodes):
    table = _template()
    points = [table[name.upper()][1] for name in electrodes]
    return np.mean(points, axis=0)


def _check_on_missing(on_missing):
    if on_missing not in _VALID_ON_MISSING:
        raise ValueError(
            f"on_missing must be one of {_VALID_ON_MISSING}, got {on_missing!r}"
        )


def _is_ear_only(name):
    """True for an ear or mastoid channel, alone or against another one.

    ``"A1"``, ``"EEG A2-REF"``, ``"EEG A2-A1"``, ``"M1-M2"``: these record the
    reference, not the scalp. ``"T4-A2"`` (scalp against ear) is not one.
    """
    first, second = _split(name)
    if _canonical_electrode(first) not in _EAR_ELECTRODES:
        return False
    suffix = None if second is None else second.upper().replace(" ", "")
    return (
        suffix is None
        or suffix in _REFERENCE_SUFFIXES
        or (_canonical_electrode(second) in _EAR_ELECTRODES)
    )


def _eeg_candidates(info):
    """Picks of EEG-typed channels, leaving out (and logging) everything else."""
    names = info["ch_names"]
    eeg = set(pick_types(info, meg=False, eeg=True, exclude=[]).tolist())
    biosemi = any(_BIOSEMI_LABEL.match(_strip(names[i])) for i in eeg)
    groups = {
        "non-EEG channel(s)": [i for i in range(len(names)) if i not in eeg],
        "channel(s) marked bad in info['bads']": [
            i for i in sorted(eeg) if names[i] in info["bads"]
        ],
        "EEG-typed channel(s) whose names say they are not EEG": [
            i
            for i in sorted(eeg)
            if names[i] not in info["bads"] and _looks_non_eeg(names[i])
        ],
        "reference or ear channel(s) (A1, A2, M1, M2)": [
            i
            for i in sorted(eeg)
            if names[i] not in info["bads"]
            and not _looks_non_eeg(names[i])
            and not biosemi
            and _is_ear_only(names[i])
        ],
    }
    left_out = set()
    for what, picks in groups.items():
        if picks:
            listed = ", ".join(names[i] for i in picks)
            logger.info(f"Leaving out {len(picks)} {what}: {listed}")
            left_out.update(picks)
    return [i for i in sorted(eeg) if i not in left_out]


def _report_missing(missing, on_missing):
    if not missing:
        return
    msg = (
        f"No position for {len(missing)} channel(s): {', '.join(missing)}. They "
        "have no digitised position and their names are not 10-05 electrodes "
        "(set a montage with raw.set_montage, rename them, or use "
        "on_missing='drop')."
    )
    if on_missing == "raise":
        raise ValueError(msg)
    if on_missing == "warn":
        warn(msg.replace("use on_missing='drop'", "they are dropped"))
    else:
        logger.info(f"Dropping {len(missing)} channel(s) without position: {missing}")


def _usable_digitisation(info, candidates):
    """{name: digitised position} of the candidates; empty (warned) if unusable."""
    digitised = {}
    for idx in candidates:
        pos = _digitised(info["chs"][idx])
        if pos is not None:
            digitised[info["ch_names"][idx]] = pos
    problem = _digitisation_problem(digitised) if digitised else None
    if problem is None:
        return digitised
    warn(
        f"The recording's digitised electrode positions are unusable: {problem}. "
        "They are ignored and every channel gets the standard_1005 position of "
        "its name instead (as if no montage were set); fix the montage with "
        "inst.set_montage to use digitised positions.",
        RuntimeWarning,
    )
    return {}


@verbose
@fill_doc
def get_positions(info, on_missing="raise", verbose=None):  # noqa: D417 (docdict)
    """Electrode positions of the EEG channels of a recording.

    Parameters
    ----------
    info : mne.Info
        The measurement info (``raw.info`` or ``epochs.info``).
    on_missing : "raise" | "warn" | "drop"
        What to do with an EEG channel that has neither a valid digitised
        position nor a known 10-05 name: raise a ValueError naming it, warn and
        drop it, or drop it (logged).
    %(verbose)s

    Returns
    -------
    picks : ndarray of int, shape (n_channels,)
        Indices into ``info["ch_names"]`` of the channels kept, in info order.
    ch_names : list of str
        Their names as in ``info``.
    positions : ndarray of float32, shape (n_channels, 3)
        Positions in metres, MNE head frame; never NaN, never all zero.

    Notes
    -----
    Non-EEG channels (EOG, ECG, EMG, stim, misc, resp, bio...) and channels in
    ``info["bads"]`` are left out and logged, as are EEG-typed channels whose
    names say they record something else (``"ECG ECG1"``, ``"HEOG"``,
    ``"POL E"``), which clinical EDF exports type as EEG, and reference or
    ear channels: A1, A2, M1, M2 alone, against a reference or against each
    other (``"EEG A2-A1"``). A channel uses its digitised position when it has
    one (all-NaN or all-zero locations are MNE's "no position"); otherwise its
    name is looked up in ``standard_1005`` (see :func:`normalize_name`). When
    the digitised positions are unusable (a non-finite coordinate, a channel
    more than 1 m from the head origin, or all of them within 5 mm of one
    point), a RuntimeWarning says why and every channel gets the position of
    its name instead, as if no montage were set. A bipolar derivation
    gets the midpoint of its two electrodes; ear and mastoid suffixes (``-A1``)
    are read as bipolar partners when the montage is bipolar (every channel a
    pair of electrodes, at least one unambiguously so: ``FP1-F7``,
    ``A1-T3``) and as references otherwise. In recordings
    with BioSemi ABC labels (A3...A32), A1 and A2 are cap labels, not ear
    lobes, and get no template position.
    """
    _check_on_missing(on_missing)
    candidates = _eeg_candidates(info)
    bipolar = _is_bipolar([info["ch_names"][i] for i in candidates])
    biosemi = any(_BIOSEMI_LABEL.match(_strip(info["ch_names"][i])) for i in candidates)
    digitised = _usable_digitisation(info, candidates)
    picks, positions, missing, keys = [], [], [], {}
    for idx in candidates:
        name = info["ch_names"][idx]
        electrodes = _parse(name, bipolar)
        if biosemi and _strip(name).upper() in ("A1", "A2"):
            electrodes = None  # BioSemi cap labels, not the ear lobes
        pos = digitised.get(name)
        if pos is None and electrodes is not None:
            pos = _template_position(electrodes)
        elif pos is None:
            missing.append(name)
            continue
        key = "-".join(electrodes) if electrodes else name.upper()
        if key in keys:
            raise ValueError(
                f"Channels {keys[key]!r} and {name!r} are the same electrode "
                f"({key}) once names are normalised; drop one of them."
            )
        keys[key] = name
        picks.append(idx)
        positions.append(pos)
    n_digitised = sum(info["ch_names"][i] in digitised for i in picks)
    _report_missing(missing, on_missing)
    if not picks:
        raise ValueError(
            "No EEG channel with a position is left "
            f"(channels in the recording: {', '.join(info['ch_names']) or 'none'})."
        )
    logger.info(
        f"Using {len(picks)} EEG channel(s): {n_digitised} digitised, "
        f"{len(picks) - n_digitised} from standard_1005 names"
        + (" (bipolar montage)" if bipolar else "")
    )
    ch_names = [info["ch_names"][i] for i in picks]
    return np.array(picks, dtype=int), ch_names, np.array(positions, np.float32)
