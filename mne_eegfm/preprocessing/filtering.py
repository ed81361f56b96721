"""Band-pass, notch and resampling in one FFT (see :mod:`mne_eegfm.preprocessing`)."""

import math
from fractions import Fraction

import numpy as np
from mne.utils import logger, warn

from .contract import _UNIT_SCALES, _check_positive

_EXTRA_MARGIN_S = 2.0  # seconds of margin beyond half the filter, per side


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
