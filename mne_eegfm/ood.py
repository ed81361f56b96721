"""Out-of-distribution note: is a recording like the model's training data?

:func:`reference_statistics` summarises the training recordings of a model in
a small JSON-serialisable dict (stored in a model card's ``input_statistics``);
:func:`assess` compares one recording with it and says, in words a clinician
can read, what lies outside. Everything is measured after the input
contract's preprocessing (band-pass, resampling), on the windows the model
sees.

The statistic
-------------
Three things are compared; each gives a score that is 1 at its threshold, and
a recording is flagged when any score exceeds 1 (``OODResult.score`` is the
largest of the three).

Montage
    Every channel is assigned to the nearest of the 19 electrode sites of the
    10-20 system (Fp1 ... O2, standard_1005 positions), its *region*. The
    overlap of the recording's regions R with the training regions T is
    ``|R & T| / |R | T|`` (Jaccard); flagged below ``MONTAGE_MIN_OVERLAP``
    (0.75): the recording misses or adds more than a quarter of the regions.
Amplitude
    A recording's amplitude is the median, over windows, of the median over
    channels of each channel's standard deviation in the window (contract
    units, before normalisation). The reference keeps the median over training
    recordings; flagged when the ratio to it exceeds the reference's
    ``amplitude_ratio`` or is below its inverse. That threshold is twice the
    largest ratio of the central 95 % of training recordings (the 2.5th and
    97.5th percentiles), and at least ``AMPLITUDE_MIN_RATIO`` (3).
Spectrum
    The relative power in five bands (delta, theta, alpha, beta, gamma, cut to
    the contract's band-pass) of each channel of each window (Hann-tapered
    periodogram), averaged over channels and windows; the profile is its
    log10. The distance is the root-mean-square difference of two profiles
    (in decades). The reference keeps the median training profile; flagged
    when the distance exceeds the reference's ``spectrum_distance``: twice the
    95th percentile of the training recordings' own distances, and at least
    ``SPECTRUM_MIN_DISTANCE`` (0.1 decade).
"""

from dataclasses import asdict, dataclass, field

import numpy as np

from ._docs import fill_doc

__all__ = [
    "InputProfile",
    "OODResult",
    "assess",
    "note",
    "profile",
    "reference_statistics",
    "regions",
]

STATISTIC = "mne-eegfm input profile 1"
SITES_1020 = (
    "Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7", "C3", "Cz",
    "C4", "T8", "P7", "P3", "Pz", "P4", "P8", "O1", "O2",
)  # fmt: skip
BANDS = (
    ("delta", 1.0, 4.0),
    ("theta", 4.0, 8.0),
    ("alpha", 8.0, 13.0),
    ("beta", 13.0, 30.0),
    ("gamma", 30.0, 80.0),
)
MONTAGE_MIN_OVERLAP = 0.75
AMPLITUDE_MIN_RATIO = 3.0
SPECTRUM_MIN_DISTANCE = 0.1


def _site_positions():
    from .montage import _template

    table = _template()
    return np.array([table[name.upper()][1] for name in SITES_1020])


def regions(positions):
    """The 10-20 regions a montage covers.

    Parameters
    ----------
    positions : array, shape (n_channels, 3)
        Electrode positions in metres (as from :func:`mne_eegfm.get_positions`).

    Returns
    -------
    names : list of str
        The 10-20 sites nearest to at least one electrode, in 10-20 order.
    """
    positions = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    sites = _site_positions()
    nearest = np.linalg.norm(positions[:, None] - sites[None], axis=-1).argmin(1)
    return [SITES_1020[i] for i in sorted(set(nearest.tolist()))]


def _bands(contract):
    """Band edges cut to the contract's band-pass; empty bands dropped."""
    low = contract.l_freq or 0.0
    high = contract.h_freq or contract.sfreq / 2
    out = []
    for name, lo, hi in BANDS:
        lo, hi = max(lo, low), min(hi, high)
        if hi > lo:
            out.append((name, lo, hi))
    return out


class InputProfile:
    """Running summary of one recording's windows, for :func:`assess`.

    Feed it each :class:`~mne_eegfm.preprocessing.Windows` of a recording (all
    chunks of :func:`~mne_eegfm.preprocessing.iter_windows` while predicting,
    so the recording is read once); it keeps a few numbers per window, not the
    data.

    Parameters
    ----------
    contract : InputContract
        The contract the windows were prepared with.
    """

    def __init__(self, contract):
        self.contract = contract
        self.bands = _bands(contract)
        self.regions = set()
        self.n_channels = 0
        self.amplitudes = []
        self.power = np.zeros(len(self.bands))
        self.n_windows = 0

    def update(self, windows):
        """Add the windows of one chunk.

        Parameters
        ----------
        windows : Windows
            Output of :func:`~mne_eegfm.preprocessing.prepare` or one chunk of
            :func:`~mne_eegfm.preprocessing.iter_windows` (with ``scale``).
        """
        if windows.scale is None:
            raise ValueError(
                "These windows carry no scale (each channel's std before "
                "normalisation); prepare them with mne_eegfm.preprocessing."
            )
        self.regions.update(regions(windows.positions))
        self.n_channels = max(self.n_channels, len(windows.ch_names))
        if not len(windows.data):
            return
        self.amplitudes.extend(np.median(windows.scale, axis=1).tolist())
        self.power += self._relative_power(windows.data, windows.sfreq).sum(0)
        self.n_windows += len(windows.data)

    def _relative_power(self, data, sfreq):
        """Relative band power of each window, averaged over its channels."""
        n = data.shape[-1]
        taper = np.hanning(n).astype(np.float32)
        power = np.abs(np.fft.rfft(data * taper, axis=-1)) ** 2
        freqs = np.fft.rfftfreq(n, 1.0 / sfreq)
        bands = np.stack(
            [power[..., (freqs >= lo) & (freqs < hi)].sum(-1) for _, lo, hi in
             self.bands],
            axis=-1,
        )  # fmt: skip
        total = bands.sum(-1, keepdims=True)
        relative = np.divide(bands, total, out=np.zeros_like(bands), where=total > 0)
        return relative.mean(axis=1)

    def summary(self):
        """The recording's numbers.

        Returns
        -------
        summary : dict
            ``regions`` (list of str), ``n_channels``, ``n_windows``,
            ``amplitude`` (contract units) and ``spectrum`` (log10 relative
            band powers), the last two None without windows.
        """
        if not self.n_windows:
            amplitude = spectrum = None
        else:
            amplitude = float(np.median(self.amplitudes))
            relative = np.maximum(self.power / self.n_windows, 1e-12)
            spectrum = np.log10(relative).tolist()
        return {
            "regions": [s for s in SITES_1020 if s in self.regions],
            "n_channels": int(self.n_channels),
            "n_windows": int(self.n_windows),
            "amplitude": amplitude,
            "spectrum": spectrum,
        }


@fill_doc
def profile(data, contract, verbose=None):  # noqa: D417 (docdict)
    """The :class:`InputProfile` of a recording or of its windows.

    Parameters
    ----------
    data : mne.io.Raw | mne.Epochs | Windows | list of Windows | InputProfile
        The recording (prepared with ``contract``; a Raw is read chunk by
        chunk) or windows already prepared with it.
    contract : InputContract
        The model's input contract.
    %(verbose)s

    Returns
    -------
    profile : InputProfile
        Its running summary.
    """
    import mne

    from .preprocessing import Windows, iter_windows, prepare

    if isinstance(data, InputProfile):
        return data
    out = InputProfile(contract)
    if isinstance(data, mne.io.BaseRaw):
        parts = iter_windows(data, contract, on_missing="drop", verbose=verbose)
    elif isinstance(data, mne.BaseEpochs):
        parts = [prepare(data, contract, on_missing="drop", verbose=verbose)]
    elif isinstance(data, Windows):
        parts = [data]
    elif isinstance(data, list | tuple) and all(isinstance(w, Windows) for w in data):
        parts = data
    else:
        raise TypeError(
            "data must be a Raw, Epochs, Windows, a list of Windows or an "
            f"InputProfile, got {type(data).__name__}"
        )
    for part in parts:
        out.update(part)
    return out


def _spectrum_distance(a, b):
    return float(np.sqrt(np.mean(np.square(np.subtract(a, b)))))


@fill_doc
def reference_statistics(recordings, contract, positions=None, verbose=None):  # noqa: D417 (docdict)
    """Summarise a model's training data for :func:`assess`.

    Parameters
    ----------
    recordings : iterable
        The training recordings: each a Raw, Epochs, Windows, list of Windows
        or :class:`InputProfile` (see :func:`profile`).
    contract : InputContract
        The model's input contract (the statistics are measured after it).
    positions : array, shape (n_channels, 3) | list of array | None
        The training montage(s); None: the montages of ``recordings``.
    %(verbose)s

    Returns
    -------
    reference : dict
        JSON-serialisable and small (a few hundred bytes): ``statistic``,
        ``contract``, ``n_recordings``, ``n_windows``, ``montage`` (regions,
        channel counts), ``amplitude`` (median and percentiles over
        recordings, in ``contract.units``), ``spectrum`` (bands, median
        profile) and ``thresholds`` (see the module's documentation).
    """
    summaries = [profile(r, contract, verbose=verbose).summary() for r in recordings]
    summaries = [s for s in summaries if s["n_windows"]]
    if not summaries:
        raise ValueError("No training recording gave a window to summarise.")
    if positions is None:
        covered = set().union(*(s["regions"] for s in summaries))
    else:
        sets = positions if isinstance(positions, list) else [positions]
        covered = set().union(*(regions(p) for p in sets))
    amplitude = np.array([s["amplitude"] for s in summaries])
    median = float(np.median(amplitude))
    low, high = np.percentile(amplitude, [2.5, 97.5])
    spread = max(high / median, median / low)
    spectra = np.array([s["spectrum"] for s in summaries])
    centre = np.median(spectra, axis=0)
    distances = [_spectrum_distance(s, centre) for s in spectra]
    return {
        "statistic": STATISTIC,
        "contract": contract.to_dict(),
        "n_recordings": len(summaries),
        "n_windows": int(sum(s["n_windows"] for s in summaries)),
        "montage": {
            "regions": [s for s in SITES_1020 if s in covered],
            "n_channels": [
                min(s["n_channels"] for s in summaries),
                max(s["n_channels"] for s in summaries),
            ],
        },
        "amplitude": {
            "units": contract.units,
            "median": round(median, 4),
            "p2.5": round(float(low), 4),
            "p97.5": round(float(high), 4),
        },
        "spectrum": {
            "bands": [[name, lo, hi] for name, lo, hi in _bands(contract)],
            "profile": [round(float(v), 4) for v in centre],
            "distance_p95": round(float(np.percentile(distances, 95)), 4),
        },
        "thresholds": {
            "montage_overlap": MONTAGE_MIN_OVERLAP,
            "amplitude_ratio": round(max(AMPLITUDE_MIN_RATIO, 2 * spread), 3),
            "spectrum_distance": round(
                max(SPECTRUM_MIN_DISTANCE, 2 * float(np.percentile(distances, 95))),
                4,
            ),
        },
    }


@dataclass
class OODResult:
    """How far a recording lies from a model's training data.

    Parameters
    ----------
    flagged : bool
        Whether any of montage, amplitude or spectrum is outside its threshold.
    score : float
        The largest of the three scores, each 1 at its threshold (> 1: flagged).
    reasons : list of str
        One sentence per aspect outside its threshold, for a clinician.
    details : dict
        The measured numbers (overlap, ratio, distance) and the scores.
    """

    flagged: bool
    score: float
    reasons: list = field(default_factory=list)
    details: dict = field(default_factory=dict)

    def to_dict(self):
        """Return a JSON-serialisable dict (for sidecars and summaries).

        Returns
        -------
        d : dict
            ``flagged``, ``score``, ``reasons`` and ``details``.
        """
        return asdict(self)


def _montage(summary, reference):
    train = set(reference["montage"]["regions"])
    seen = set(summary["regions"])
    overlap = len(seen & train) / len(seen | train)
    score = (1 - overlap) / (1 - reference["thresholds"]["montage_overlap"])
    extra = [s for s in SITES_1020 if s in seen - train]
    text = (
        f"montage covers {len(seen & train)} of the training montage's "
        f"{len(train)} regions"
        + (f" and {len(extra)} it never had ({', '.join(extra)})" if extra else "")
        + f" ({summary['n_channels']} channels; training recordings had "
        + _channel_range(reference["montage"]["n_channels"])
        + ")"
    )
    return score, text, {"montage_overlap": round(overlap, 3)}


def _channel_range(counts):
    low, high = counts
    return str(low) if low == high else f"{low}-{high}"


def _amplitude(summary, reference):
    ratio = summary["amplitude"] / reference["amplitude"]["median"]
    limit = reference["thresholds"]["amplitude_ratio"]
    score = abs(np.log(ratio)) / np.log(limit)
    how = f"{ratio:.2g}x" if ratio >= 1 else f"1/{1 / ratio:.2g}"
    text = (
        f"amplitude {how} the training median ({summary['amplitude']:.3g} vs "
        f"{reference['amplitude']['median']:.3g} {reference['amplitude']['units']}"
        f"; limit {limit:g}x either way)"
    )
    return float(score), text, {"amplitude_ratio": round(float(ratio), 3)}


def _spectrum(summary, reference):
    distance = _spectrum_distance(summary["spectrum"], reference["spectrum"]["profile"])
    limit = reference["thresholds"]["spectrum_distance"]
    bands = reference["spectrum"]["bands"]
    diff = np.subtract(summary["spectrum"], reference["spectrum"]["profile"])
    worst = int(np.argmax(np.abs(diff)))
    text = (
        f"spectrum far from training (distance {distance:.2f} > {limit:.2f} "
        f"decades; {bands[worst][0]} power {10 ** diff[worst]:.2g}x the training "
        "share)"
    )
    return distance / limit, text, {"spectrum_distance": round(distance, 3)}


@fill_doc
def assess(data, reference, verbose=None):  # noqa: D417 (docdict)
    """Say whether a recording lies outside a model's training data.

    Parameters
    ----------
    data : mne.io.Raw | mne.Epochs | Windows | list of Windows | InputProfile
        The recording, or its windows prepared with the reference's contract.
    reference : dict
        Output of :func:`reference_statistics` (a card's ``input_statistics``).
    %(verbose)s

    Returns
    -------
    result : OODResult
        ``flagged``, ``score`` and the ``reasons`` (see the module's
        documentation for the statistic and thresholds).
    """
    from .preprocessing import InputContract

    if reference.get("statistic") != STATISTIC:
        raise ValueError(
            f"Unknown reference statistics {reference.get('statistic')!r}; "
            f"expected {STATISTIC!r} (from mne_eegfm.ood.reference_statistics)."
        )
    contract = InputContract.from_dict(reference["contract"])
    summary = profile(data, contract, verbose=verbose).summary()
    checks = [_montage]
    if summary["n_windows"]:
        checks += [_amplitude, _spectrum]
    scores, reasons, details = [], [], {"n_windows": summary["n_windows"]}
    for check in checks:
        score, text, numbers = check(summary, reference)
        scores.append(score)
        details.update(numbers)
        if score > 1:
            reasons.append(text)
    details["scores"] = [round(float(s), 3) for s in scores]
    score = float(max(scores))
    return OODResult(flagged=score > 1, score=round(score, 3), reasons=reasons,
                     details=details)  # fmt: skip


NOT_ASSESSED = "not assessed: the model card has no input_statistics"


@fill_doc
def note(data, reference, verbose=None):  # noqa: D417 (docdict)
    """The out-of-distribution note of one recording, for sidecars and reports.

    Parameters
    ----------
    data : mne.io.Raw | mne.Epochs | Windows | list of Windows | InputProfile
        As for :func:`assess` (an :class:`InputProfile` gathered while
        predicting avoids reading the recording twice).
    reference : dict | None
        A model card's ``input_statistics``; None when the card has none.
    %(verbose)s

    Returns
    -------
    note : dict
        ``assessed`` (bool), ``flagged`` (bool | None), ``score`` (float |
        None), ``reasons`` (list of str) and ``text``: one line saying the
        outcome, ``"not assessed: ..."`` without reference statistics (never a
        silent pass).
    """
    if not reference:
        return {"assessed": False, "flagged": None, "score": None, "reasons": [],
                "text": NOT_ASSESSED}  # fmt: skip
    result = assess(data, reference, verbose=verbose)
    if result.flagged:
        text = f"flagged (score {result.score:g}): " + "; ".join(result.reasons)
    else:
        text = f"within the training data (score {result.score:g})"
    return {"assessed": True, **result.to_dict(), "text": text}
