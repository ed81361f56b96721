"""Quality checks of the signal and of each window: flat, implausible, left out."""

import numpy as np
from mne.utils import warn

_FLAT_STD = 1e-15  # volts: band-passed std below this is a flat channel
_STD_TOO_LARGE = 1e-2  # volts: EEG this large is probably in microvolts already
_STD_TOO_SMALL = 1e-9  # volts: EEG this small is probably in nanovolts or scaled
_PEAK_IMPOSSIBLE = 1.0  # volts: no EEG amplifier input range reaches this
_FLAT_PTP = 1e-13  # volts: a window whose every channel varies less is flat
SKIP_BAD_ANNOTATION = "BAD annotation"  # reason: overlaps a BAD_* annotation
SKIP_FLAT = "flat"  # reason: every channel is constant (no signal to evaluate)


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
