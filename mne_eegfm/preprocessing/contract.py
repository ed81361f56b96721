"""The input contract of a checkpoint: what its model expects, and window lengths."""

import math
from dataclasses import asdict, dataclass, fields

import numpy as np
from mne.utils import warn

PATCH_SIZE = 40
_UNIT_SCALES = {"V": 1.0, "mV": 1e3, "uV": 1e6, "µV": 1e6, "nV": 1e9}
_NORMALIZATIONS = ("zscore", "none")
_MONTAGES = ("unipolar", "bipolar")


@dataclass(frozen=True)
class InputContract:
    """What a checkpoint expects as input.

    Parameters
    ----------
    sfreq : float
        Sampling rate in Hz the model was trained at.
    l_freq, h_freq : float | None
        Band-pass edges in Hz (None: no high-pass / no low-pass).
    notch : float | tuple of float | None
        Line-noise frequencies to notch out (harmonics below ``h_freq`` too).
    units : str
        Units the model expects (``"uV"``, ``"mV"``, ``"V"`` or ``"nV"``).
    window_s : float
        Default window length in seconds.
    normalization : str
        ``"zscore"`` (per window, per channel) or ``"none"``.
    montage : str
        ``"unipolar"`` or ``"bipolar"`` (informative: positions come from names).
    """

    sfreq: float = 256.0
    l_freq: float | None = 0.1
    h_freq: float | None = 75.0
    notch: tuple | None = None
    units: str = "uV"
    window_s: float = 5.0
    normalization: str = "zscore"
    montage: str = "unipolar"

    def __post_init__(self):
        _check_positive("sfreq", self.sfreq, "Hz")
        if self.l_freq is not None and self.h_freq is not None:
            if not 0 < self.l_freq < self.h_freq:
                raise ValueError(
                    f"need 0 < l_freq < h_freq, got l_freq={self.l_freq!r}, "
                    f"h_freq={self.h_freq!r}"
                )
        if self.h_freq is not None and self.h_freq >= self.sfreq / 2:
            raise ValueError(
                f"h_freq={self.h_freq} Hz must be below the Nyquist frequency "
                f"of sfreq={self.sfreq} Hz"
            )
        if self.units not in _UNIT_SCALES:
            raise ValueError(
                f"units must be one of {list(_UNIT_SCALES)}, got {self.units!r}"
            )
        if self.normalization not in _NORMALIZATIONS:
            raise ValueError(
                f"normalization must be one of {_NORMALIZATIONS}, "
                f"got {self.normalization!r}"
            )
        if self.montage not in _MONTAGES:
            raise ValueError(
                f"montage must be one of {_MONTAGES}, got {self.montage!r}"
            )
        notch = self.notch
        if notch is not None:
            notch = tuple(float(f) for f in np.atleast_1d(notch))
            object.__setattr__(self, "notch", notch or None)
        _window_samples(self.window_s, self.sfreq)

    def check_window(self, window_s):
        """Check a requested window length against this contract.

        Parameters
        ----------
        window_s : float | None
            The requested window length in seconds (None: the contract's).

        Returns
        -------
        effective_s : float
            The window length actually used: ``window_s`` rounded down to a
            multiple of the model's 40-sample patch at ``sfreq``.

        Raises
        ------
        ValueError
            If ``window_s`` is not a positive finite number or is shorter than
            one patch.

        Warns
        -----
        RuntimeWarning
            If ``window_s`` differs from the contract's ``window_s`` (the
            length the model was trained or fitted on; both are named), and if
            it cannot be represented exactly (e.g. 2 s at 128 Hz is 256
            samples, not a multiple of 40: 240 samples, 1.875 s are used).
        """
        if window_s is None:
            window_s = self.window_s
        n = _window_samples(window_s, self.sfreq)
        if not math.isclose(float(window_s), self.window_s, rel_tol=1e-9):
            warn(
                f"Windows of {float(window_s):g} s were requested, but the model "
                f"expects {self.window_s:g}-s windows (its input contract): "
                "predictions on other lengths are less reliable.",
                RuntimeWarning,
            )
        _warn_inexact_window(window_s, n, self.sfreq)
        return n / self.sfreq

    @property
    def n_times(self):
        """Samples per window: a multiple of the 40-sample patch."""
        return _window_samples(self.window_s, self.sfreq)

    def to_dict(self):
        """Return a JSON-serialisable dict (``InputContract.from_dict`` inverts it).

        Returns
        -------
        d : dict
            The contract's fields by name; ``notch`` is a list or None.
        """
        out = asdict(self)
        out["notch"] = None if self.notch is None else list(self.notch)
        return out

    @classmethod
    def from_dict(cls, d):
        """Build a contract from :meth:`to_dict` output; unknown keys are errors.

        Parameters
        ----------
        d : dict
            Field values by name, as returned by :meth:`to_dict`; missing
            fields take their defaults.

        Returns
        -------
        contract : InputContract
            The contract.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(
                f"Unknown input-contract keys: {unknown}; known: {sorted(known)}"
            )
        return cls(**d)


def _check_positive(name, value, unit):
    """ValueError naming ``value`` unless it is a positive finite number."""
    try:
        ok = math.isfinite(float(value)) and float(value) > 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(
            f"{name} must be a positive finite number ({unit}), got {value!r}"
        )


def _resolve_window(contract, window_s):
    """Samples per window; warns as :meth:`InputContract.check_window` does."""
    if window_s is None:
        n = _window_samples(contract.window_s, contract.sfreq)
        _warn_inexact_window(contract.window_s, n, contract.sfreq)
        return n
    return int(round(contract.check_window(window_s) * contract.sfreq))


def _warn_inexact_window(window_s, n, sfreq):
    if not math.isclose(n / sfreq, float(window_s), rel_tol=1e-9):
        warn(
            f"A {float(window_s):g}-s window is {float(window_s) * sfreq:g} samples "
            f"at {sfreq:g} Hz, not a multiple of the model's {PATCH_SIZE}-sample "
            f"patch: windows of {n} samples ({n / sfreq:g} s) are used.",
            RuntimeWarning,
        )


def _window_samples(window_s, sfreq):
    _check_positive("window_s", window_s, "seconds")
    n = int(math.floor(round(float(window_s) * sfreq, 6)))
    n -= n % PATCH_SIZE
    if n < PATCH_SIZE:
        raise ValueError(
            f"window_s={window_s} s at {sfreq} Hz is shorter than one "
            f"{PATCH_SIZE}-sample patch"
        )
    return n


# ----------------------------------------------------------------------------
# Reading files
