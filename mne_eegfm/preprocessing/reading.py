"""Reading a recording file with the checks the input contract needs."""

from pathlib import Path

from mne.utils import verbose

from .._docs import fill_doc


def _edf_reserved_field(path):
    with open(path, "rb") as fid:
        header = fid.read(236)
    return header[192:236] if len(header) >= 236 else b""


@verbose
@fill_doc
def read_raw(path, verbose=None):  # noqa: D417 (docdict)
    """Read any recording MNE reads, lazily (``preload=False``).

    Parameters
    ----------
    path : path-like
        The file (EDF/EDF+, BDF, BrainVision ``.vhdr``, EEGLAB ``.set``, FIF, GDF...).
    %(verbose)s

    Returns
    -------
    raw : mne.io.Raw
        The recording, not loaded into memory.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If MNE cannot read it, or for discontinuous EDF+D/BDF+D files, which are
        refused rather than read as if continuous.
    """
    import mne

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No such recording file: {path}")
    if path.suffix.lower() in (".edf", ".bdf", ".rec"):
        reserved = _edf_reserved_field(path)
        if reserved[:5] in (b"EDF+D", b"BDF+D"):
            raise ValueError(
                f"{path} is a discontinuous {reserved[:5].decode()} file: its "
                "records have gaps in time, and reading it as continuous would "
                "misplace every window after the first gap. Convert it to "
                "continuous EDF+C segments first (e.g. one file per segment)."
            )
    try:
        return mne.io.read_raw(path, preload=False, verbose=verbose)
    except Exception as err:
        if _is_epoched_eeglab(path, err):
            raise ValueError(
                f"{path} holds epochs, not a continuous recording: read it with "
                "mne.read_epochs_eeglab and give the Epochs to mne_eegfm.predict, "
                "mne_eegfm.embed or the estimators (the command line reads "
                "continuous recordings)."
            ) from err
        raise ValueError(f"Could not read {path}: {type(err).__name__}: {err}") from err


def _is_epoched_eeglab(path, err):
    """Whether MNE refused an EEGLAB file because it holds several trials."""
    return path.suffix.lower() == ".set" and "read_epochs_eeglab" in str(err)


# ----------------------------------------------------------------------------
# Filtering and resampling
