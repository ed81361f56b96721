"""The input contract of a checkpoint and the preprocessing that applies it.

Modules: :mod:`.contract` (:class:`InputContract`, window lengths),
:mod:`.reading` (:func:`read_raw`), :mod:`.filtering` (band-pass, notch and
resampling in one FFT), :mod:`.quality` (signal and window checks) and
:mod:`.windows` (:func:`prepare`, :func:`iter_windows`, :class:`Windows`).

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

from .contract import PATCH_SIZE, InputContract
from .quality import SKIP_BAD_ANNOTATION, SKIP_FLAT, window_quality
from .reading import read_raw
from .windows import Windows, iter_windows, normalize_windows, prepare

__all__ = [
    "PATCH_SIZE",
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
