"""The input contract of a checkpoint and the preprocessing that applies it.

Every checkpoint declares what its model expects (:class:`InputContract`:
sampling rate, band-pass, notch, units, window length, normalisation).
:func:`prepare` applies it to a copy of a :class:`mne.io.Raw` or
:class:`mne.Epochs` and returns :class:`Windows`; :func:`iter_windows` does the
same for long recordings in bounded memory.

Pipeline
--------
For each channel (EEG channels with a position, see
:func:`mne_eegfm.montage.get_positions`), one FFT does everything:

1. the per-channel mean (computed in float64) is removed, and the data is
   float32 from there on;
2. the signal is resampled to ``contract.sfreq`` in the frequency domain
   (spectrum truncated when downsampling, zero-extended when upsampling), which
   is the cheap order: the filters then run at the low rate;
3. the band-pass is a zero-phase FIR filter designed like MNE's default
   (``fir_design="firwin"``: Hamming-windowed sinc, MNE's automatic transition
   bands and lengths; for 0.1-75 Hz at 256 Hz a 33-s filter, 53 dB stop-band),
   the notch a band-stop (stop-band f +/- 0.5 Hz, 1-Hz transitions) at each
   line frequency and harmonic below the low-pass; both are applied as a
   multiplication by their frequency response at the output rate, and the
   unit conversion (volts to ``contract.units``) is folded into that product.
   Designing them with numpy keeps ``scipy.signal`` (seconds to import) out.

Applied to a segment extended by at least half the filter on both sides, this
equals linear convolution with the FIR filter, so long recordings are processed
in chunks (``chunk_s``) with that margin and give the same samples as the whole
recording processed at once (up to float32 rounding). Recording edges are padded
by reflection, as :func:`mne.filter.filter_data` does. The DC offset (e.g. the
4 mV of Emotiv headsets) is removed by the mean subtraction and the high-pass.

Windows
-------
The window length in samples is ``window_s * contract.sfreq`` rounded down to a
multiple of the model's 40-sample patch (5 s at 256 Hz = 1280 samples = 32
patches exactly); a length that is not a whole number of patches warns with the
effective length, and one that differs from the contract's warns naming both
(:meth:`InputContract.check_window`). Raw is cut into consecutive windows
(``overlap`` fraction shared); windows overlapping ``BAD_*`` annotations and
flat windows (every channel constant, :func:`window_quality`) are left out and
counted by reason (``Windows.skipped``). Each window is z-scored per channel
(:func:`normalize_windows`); ``Windows.scale`` keeps each channel's std before
that. Epochs give one window each (see :func:`prepare` for the crop rule);
flat epochs are marked in ``Windows.reasons``.

Checks
------
Errors: NaN/inf samples (naming the channels), a Raw shorter than one window,
empty Epochs, channels without position (``on_missing="raise"``), a sampling
rate or window length that is not a positive finite number (naming it).
Warnings (``RuntimeWarning``): flat channels (named; zeros after
normalisation), flat windows or epochs (left out / marked), channels with a
physiologically impossible amplitude (named: a sample beyond 1 V or a
band-passed std above 1e-2 V), a median band-passed std above 1e-2 V (data
probably already in microvolts) or below 1e-9 V (nanovolts?), a sampling rate
too low for the low-pass (which is then lowered to 80 % of the recording's
Nyquist frequency), epochs cropped, window lengths as above, no window left.
"""

import math
from dataclasses import asdict, dataclass, field, fields
from fractions import Fraction
from pathlib import Path

import numpy as np
from mne.utils import logger, use_log_level, verbose, warn

from .montage import get_positions

__all__ = [
    "SKIP_BAD_ANNOTATION",
    "SKIP_FLAT",
    "InputContract",
    "Windows",
    "iter_windows",
    "normalize_windows",
    "prepare",
    "read_raw",
    "window_quality",
]

PATCH_SIZE = 40
_UNIT_SCALES = {"V": 1.0, "mV": 1e3, "uV": 1e6, "µV": 1e6, "nV": 1e9}
_NORMALIZATIONS = ("zscore", "none")
_MONTAGES = ("unipolar", "bipolar")
_EPS = 1e-8
_FLAT_STD = 1e-15  # volts: band-passed std below this is a flat channel
_STD_TOO_LARGE = 1e-2  # volts: EEG this large is probably in microvolts already
_STD_TOO_SMALL = 1e-9  # volts: EEG this small is probably in nanovolts or scaled
_PEAK_IMPOSSIBLE = 1.0  # volts: no EEG amplifier input range reaches this
_FLAT_PTP = 1e-13  # volts: a window whose every channel varies less is flat
SKIP_BAD_ANNOTATION = "BAD annotation"  # reason: overlaps a BAD_* annotation
SKIP_FLAT = "flat"  # reason: every channel is constant (no signal to evaluate)
_EXTRA_MARGIN_S = 2.0  # seconds of margin beyond half the filter, per side
_MAX_CHUNK = 2**25  # channels x input samples per chunk (256 MiB in float64)


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


def _edf_reserved_field(path):
    with open(path, "rb") as fid:
        header = fid.read(236)
    return header[192:236] if len(header) >= 236 else b""


@verbose
def read_raw(path, verbose=None):
    """Read any recording MNE reads, lazily (``preload=False``).

    Parameters
    ----------
    path : path-like
        The file (EDF/EDF+, BDF, BrainVision ``.vhdr``, EEGLAB ``.set``, FIF, GDF...).
    verbose : bool | str | int | None
        MNE-style logging level (None: MNE's current level).

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
        raise ValueError(f"Could not read {path}: {type(err).__name__}: {err}") from err


# ----------------------------------------------------------------------------
# Filtering and resampling


class _Plan:
    """Resampling ratio and zero-phase filter response for one input rate."""

    def __init__(self, sfreq_in, contract, epoch_s=None):
        _check_positive("The recording's sampling rate", sfreq_in, "Hz")
        self.sfreq_in = float(sfreq_in)
        self.sfreq_out = float(contract.sfreq)
        ratio = Fraction(self.sfreq_out / self.sfreq_in).limit_denominator(10000)
        self.up, self.down = ratio.numerator, ratio.denominator
        self.scale = _UNIT_SCALES[contract.units]
        self.remove_mean = contract.l_freq is not None
        self.l_freq = _effective_l_freq(contract.l_freq, epoch_s, self.sfreq_out)
        self.h_freq = _effective_h_freq(contract.h_freq, self.sfreq_in)
        nyquist = min(self.sfreq_in, self.sfreq_out) / 2
        limit = nyquist if self.h_freq is None else self.h_freq
        self.notch = tuple(
            f * k
            for f in (contract.notch or ())
            for k in range(1, int(limit // f) + 1)
            if f * k < limit
        )
        self.kernels = self._design()
        half = max((len(h) - 1) // 2 for h in self.kernels) if self.kernels else 0
        margin_s = half / self.sfreq_out + _EXTRA_MARGIN_S
        # Margin in input samples, a multiple of `down` so output grids align.
        self.margin = self._align(int(math.ceil(margin_s * self.sfreq_in)))
        self._responses = {}

    def _align(self, n):
        return int(math.ceil(n / self.down)) * self.down

    def _design(self):
        kernels = []
        if self.l_freq is not None or self.h_freq is not None:
            kernels.append(_bandpass_kernel(self.sfreq_out, self.l_freq, self.h_freq))
        for freq in self.notch:
            band = _bandpass_kernel(self.sfreq_out, freq - 0.5, freq + 0.5, 1.0, 1.0)
            band = -band
            band[len(band) // 2] += 1.0  # band-stop = identity - band-pass
            kernels.append(band)
        return kernels

    def n_out(self, n_in):
        """Output samples for n_in input samples (MNE's convention: 5 s -> 5 s).

        The last one may lie up to one input sample past the last input sample,
        as in :meth:`mne.io.Raw.resample`; it is computed from the edge padding.
        """
        return n_in * self.up // self.down

    def response(self, n_fft_out):
        """Zero-phase frequency response (with unit scale) on an rfft grid."""
        if n_fft_out not in self._responses:
            resp = np.full(n_fft_out // 2 + 1, self.scale, dtype=np.float64)
            for h in self.kernels:
                centred = np.zeros(n_fft_out)
                half = (len(h) - 1) // 2
                centred[: half + 1] = h[half:]
                centred[n_fft_out - half :] = h[:half]
                resp *= np.fft.rfft(centred).real
            resp *= self.up / self.down  # irfft length change
            self._responses[n_fft_out] = resp.astype(np.float32)
        return self._responses[n_fft_out]


def _lowpass_kernel(cutoff, trans, sfreq, n_taps):
    """Hamming-windowed sinc low-pass, ``n_taps`` long (odd), unit DC gain."""
    length = int(math.ceil(3.3 / trans * sfreq)) | 1  # MNE's Hamming length rule
    t = np.arange(length) - (length - 1) / 2
    h = np.sinc(2 * cutoff / sfreq * t) * np.hamming(length)
    h /= h.sum()
    out = np.zeros(n_taps)
    start = (n_taps - length) // 2
    out[start : start + length] = h
    return out


def _auto_trans(l_freq, h_freq, sfreq):
    """MNE's automatic transition bandwidths (``"auto"``) for firwin designs."""
    l_trans = None if l_freq is None else min(max(0.25 * l_freq, 2.0), l_freq)
    h_trans = None
    if h_freq is not None:
        h_trans = min(max(0.25 * h_freq, 2.0), sfreq / 2.0 - h_freq)
    return l_trans, h_trans


def _bandpass_kernel(sfreq, l_freq, h_freq, l_trans=None, h_trans=None):
    """Zero-phase FIR band-pass (or high-/low-pass) like MNE's firwin design.

    Each transition is a Hamming-windowed sinc whose length follows MNE's rule
    (3.3 / transition bandwidth seconds) and whose -6 dB point is the middle of
    the transition band; transitions default to MNE's ``"auto"`` widths.
    """
    auto_l, auto_h = _auto_trans(l_freq, h_freq, sfreq)
    l_trans = auto_l if l_trans is None else l_trans
    h_trans = auto_h if h_trans is None else h_trans
    lengths = [int(math.ceil(3.3 / tr * sfreq)) | 1 for tr in (l_trans, h_trans) if tr]
    n_taps = max(lengths)
    if h_freq is None:
        h = np.zeros(n_taps)
        h[n_taps // 2] = 1.0
    else:
        h = _lowpass_kernel(h_freq + h_trans / 2, h_trans, sfreq, n_taps)
    if l_freq is not None:
        h -= _lowpass_kernel(l_freq - l_trans / 2, l_trans, sfreq, n_taps)
    return h


def _effective_l_freq(l_freq, epoch_s, sfreq):
    """Leave the high-pass out for epochs shorter than its filter."""
    if l_freq is None or epoch_s is None:
        return l_freq
    length_s = (
        int(math.ceil(3.3 / _auto_trans(l_freq, None, sfreq)[0] * sfreq)) | 1
    ) / sfreq
    if epoch_s >= length_s:
        return l_freq
    logger.info(
        f"Epochs ({epoch_s:.3g} s) are shorter than the {length_s:.3g}-s high-pass "
        f"filter at {l_freq} Hz: only their mean is removed (the high-pass would "
        "remove little more, and the z-score removes the mean anyway)."
    )
    return None


def _effective_h_freq(h_freq, sfreq_in):
    """Lower the low-pass (with a warning) when the recording's rate cannot hold it."""
    if h_freq is None:
        return None
    nyquist = sfreq_in / 2
    # MNE's default transition band is 25 % of h_freq; it must end below Nyquist.
    if h_freq * 1.25 <= nyquist:
        return h_freq
    lowered = round(0.8 * nyquist, 3)
    warn(
        f"The recording's sampling rate ({sfreq_in} Hz, Nyquist {nyquist} Hz) is "
        f"too low for the contract's low-pass at h_freq={h_freq} Hz: the low-pass "
        f"is lowered to {lowered} Hz. The model was trained on content up to "
        f"{h_freq} Hz, which this recording does not have.",
        RuntimeWarning,
    )
    return lowered


def _fast_length(n, multiple):
    """Smallest length >= n that is a multiple of `multiple` and FFT-friendly."""
    from scipy.fft import next_fast_len

    m = next_fast_len(int(math.ceil(n / multiple)), real=True)
    return m * multiple


def _padded(x, plan, pad_left, pad_right):
    """Float32 copy of `x` less its mean, in a zero buffer of FFT-friendly length.

    At a recording edge (pad_left / pad_right), ``plan.margin`` samples are
    padded by reflection (as far as the signal goes, then zeros), as MNE's
    ``reflect_limited`` does. Returns the buffer and the left padding.
    """
    n = x.shape[-1]
    left = plan.margin if pad_left else 0
    right = plan.margin if pad_right else 0
    out = np.zeros(x.shape[:-1] + (_fast_length(left + n + right, plan.down),), "f4")
    core = out[..., left : left + n]
    core[...] = x
    if plan.remove_mean:  # the high-pass removes the offset anyway
        with np.errstate(invalid="ignore"):  # inf - inf: NaN, caught later
            core -= x.mean(axis=-1, keepdims=True).astype(np.float32)
    reverse = core[..., ::-1]
    n_left, n_right = min(left, n - 1), min(right, n - 1)
    out[..., left - n_left : left] = reverse[..., n - 1 - n_left : n - 1]
    out[..., left + n : left + n + n_right] = reverse[..., 1 : 1 + n_right]
    return out, left


def _filter_resample(x, plan, pad_left, pad_right):
    """Band-pass, notch, resample and rescale the last axis of `x`.

    `x` is float64, input rate, first sample on the output grid. Returns float32
    at the output rate, plan.n_out(n) samples (the padded margins are removed).
    """
    from scipy.fft import irfft, rfft

    n = x.shape[-1]
    buffer, left = _padded(x, plan, pad_left, pad_right)
    n_fft_in = buffer.shape[-1]
    spec = rfft(buffer, axis=-1)
    del buffer
    n_fft_out = n_fft_in // plan.down * plan.up
    n_bins = n_fft_out // 2 + 1
    resp = plan.response(n_fft_out)
    if spec.shape[-1] >= n_bins:  # downsampling (or same rate): truncate
        spec = spec[..., :n_bins]
        spec *= resp
    else:  # upsampling: zero-extend the spectrum
        n_in_bins = spec.shape[-1]
        spec_in, spec = spec, np.zeros(spec.shape[:-1] + (n_bins,), np.complex64)
        np.multiply(spec_in, resp[:n_in_bins], out=spec[..., :n_in_bins])
        del spec_in
    y = irfft(spec, n=n_fft_out, axis=-1)
    start = left * plan.up // plan.down
    return y[..., start : start + plan.n_out(n)]


# ----------------------------------------------------------------------------
# Checks


class _Checks:
    """Data checks that warn once per call (chunks repeat them)."""

    def __init__(self, ch_names, scale):
        self.ch_names = ch_names
        self.scale = scale
        self.said = set()

    def _warn_once(self, key, msg):
        if key not in self.said:
            self.said.add(key)
            warn(msg, RuntimeWarning)

    def output(self, y, where="", peak=None):
        """Check band-passed data (contract units, channels on axis -2).

        NaN or inf anywhere in a channel's input spreads to its whole output
        through the mean and the FFT, so one std per channel catches them.
        ``peak`` is each channel's largest absolute input sample in volts.
        """
        std = y.std(axis=-1, dtype=np.float64)
        while std.ndim > 1:
            std = std.max(axis=0)
        std /= self.scale  # volts
        finite = np.isfinite(std)
        if not finite.all():
            bad = [self.ch_names[i] for i in np.flatnonzero(~finite)]
            raise ValueError(
                f"NaN or infinite samples in channel(s) {', '.join(bad)}{where}; "
                "interpolate or drop them (e.g. raw.drop_channels) first."
            )
        flat = std < _FLAT_STD
        self._flat(flat, where)
        typical = float(np.median(std[~flat])) if not flat.all() else 0.0
        if not flat.all():
            self._units(typical)
        if typical <= _STD_TOO_LARGE:  # else the unit warning says it all
            self._impossible(std, peak, where)

    def _impossible(self, std, peak, where):
        """Warn, naming them, about channels no scalp EEG can produce."""
        peak = np.zeros_like(std) if peak is None else peak
        bad = (std > _STD_TOO_LARGE) | (peak > _PEAK_IMPOSSIBLE)
        if not bad.any():
            return
        names = [self.ch_names[i] for i in np.flatnonzero(bad)]
        self._warn_once(
            ("impossible", tuple(names)),
            f"Physiologically impossible amplitude in channel(s) {', '.join(names)}"
            f"{where}: largest sample {float(peak[bad].max()):.3g} V, band-passed "
            f"std up to {float(std[bad].max()):.3g} V (scalp EEG stays below "
            f"{_STD_TOO_LARGE:g} V). The channel is broken or mis-scaled; drop it "
            "(raw.drop_channels) or mark it bad (raw.info['bads']).",
        )

    def _flat(self, flat, where):
        if flat.all():
            self._warn_once(
                "all-flat",
                f"All {len(flat)} channels are flat{where}: the windows carry no "
                "signal and are all zeros after normalisation.",
            )
        elif flat.any():
            names = [self.ch_names[i] for i in np.flatnonzero(flat)]
            self._warn_once(
                ("flat", tuple(names)),
                f"Flat channel(s) {', '.join(names)}{where} (no signal in the "
                "band-pass): they are zeros after normalisation; consider "
                "dropping or interpolating them.",
            )

    def _units(self, typical):
        """Warn when the band-passed amplitude looks like the wrong unit."""
        if typical > _STD_TOO_LARGE:
            self._warn_once(
                "units",
                f"The EEG looks like the wrong unit: median channel std after "
                f"band-pass is {typical:.3g} V (EEG is ~1e-5 V). MNE stores volts; "
                "the data may already be in microvolts (1e6 too large). Check the "
                "file's units or rescale (raw.apply_function(lambda x: x * 1e-6)).",
            )
        elif typical < _STD_TOO_SMALL:
            self._warn_once(
                "units",
                f"The EEG looks like the wrong unit: median channel std after "
                f"band-pass is {typical:.3g} V (EEG is ~1e-5 V), as if it were "
                "scaled to nanovolts or 1e6 too small. Check the file's units.",
            )


# ----------------------------------------------------------------------------
# Windows


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


def window_quality(data):
    """Why each window should not be evaluated, from its samples in volts.

    Parameters
    ----------
    data : array, shape (n_windows, n_channels, n_times)
        Windows as read from the recording (volts, before normalisation;
        filtering does not matter).

    Returns
    -------
    reasons : ndarray of str, shape (n_windows,) | None
        :data:`SKIP_FLAT` for a window in which every channel varies by less
        than 1e-13 V (a flat line: there is no signal to evaluate, and the
        model's answer on it would be meaningless), ``""`` for the others;
        None when every window can be evaluated.

    Notes
    -----
    :func:`iter_windows` and :func:`prepare` leave flat windows of a Raw out
    and count them in ``Windows.skipped[SKIP_FLAT]``; for Epochs, which keep
    one window per epoch, they set ``Windows.reasons``.
    """
    data = np.asarray(data)
    if data.ndim != 3:
        raise ValueError(
            f"data must have shape (n_windows, n_channels, n_times), got {data.shape}"
        )
    return _reasons(np.ptp(data, axis=-1))


def _reasons(ptp):
    """Reasons (or None) from each window's per-channel peak-to-peak in volts."""
    flat = (ptp < _FLAT_PTP).all(axis=-1)
    if not flat.any():
        return None
    return np.where(flat, SKIP_FLAT, "").astype(object)


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
def iter_windows(
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
    contract : InputContract
        What the model expects.
    window_s : float | None
        Window length in seconds (None: ``contract.window_s``); rounded down to
        a multiple of 40 samples at ``contract.sfreq``.
    overlap : float
        Fraction of a window shared with the next one, in [0, 1).
    on_missing : "raise" | "warn" | "drop"
        Channels without position (see :func:`mne_eegfm.get_positions`).
    reject_by_annotation : bool
        Leave out windows that overlap ``BAD_*`` annotations (counted in
        ``n_skipped``).
    chunk_s : float | None
        Seconds of output per chunk (None: the whole recording at once). Memory
        is about 20 bytes per channel and input sample of a chunk; chunks are
        also capped at 2**25 channels x input samples (e.g. 305 s of 22
        channels at 5 kHz), so memory stays bounded whatever the rate.
    verbose : bool | str | int | None
        MNE-style logging level (None: MNE's current level).

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
def prepare(
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
    contract : InputContract
        What the model expects.
    window_s : float | None
        Window length in seconds (None: ``contract.window_s``), rounded down to a
        multiple of 40 samples at ``contract.sfreq``.
    overlap : float
        Raw only: fraction of a window shared with the next one, in [0, 1).
    on_missing : "raise" | "warn" | "drop"
        Channels without position (see :func:`mne_eegfm.get_positions`).
    reject_by_annotation : bool
        Raw only: leave out windows overlapping ``BAD_*`` annotations.
    chunk_s : float | None
        Raw only: process this many seconds at a time (None: all at once); the
        result is the same up to float32 rounding (see :func:`iter_windows`).
    verbose : bool | str | int | None
        MNE-style logging level (None: MNE's current level).

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


def _warn_skipped(windows):
    """Warn about windows left out: flat ones always, all of them loudly."""
    flat = windows.skipped.get(SKIP_FLAT, 0)
    bad = windows.skipped.get(SKIP_BAD_ANNOTATION, 0)
    if len(windows.data) == 0:
        n = windows.n_skipped
        if not flat:
            msg = f"All {n} windows overlap BAD annotations"
        elif not bad:
            msg = f"All {n} windows are flat (every channel constant)"
        else:
            msg = f"Of {n} windows, {bad} overlap BAD annotations and {flat} are flat"
        warn(
            f"{msg}: no window is left to evaluate"
            + (" (use reject_by_annotation=False to keep them)." if bad else "."),
            RuntimeWarning,
        )
    elif flat:
        warn(
            f"{flat} window(s) are flat (every channel constant): they are left "
            "out, not evaluated.",
            RuntimeWarning,
        )


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
