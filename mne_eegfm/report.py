"""HTML reports of predictions: timeline over the signal and attention topomaps."""

import html
import re

import numpy as np
from mne.utils import logger, verbose

from ._docs import fill_doc
from .utils import atomic_path

_N_POINTS = 2000  # columns of the signal overview
_MAX_TRACES = 8
_CHUNK_S = 120.0


_ELECTRODE = re.compile(r"^[A-Za-z]{1,4}(\d{1,2}|z|Z)$")


def _side(name):
    """``left``, ``right``, ``midline`` or ``other`` from a 10-20 style name.

    Odd numbers are on the left, even numbers on the right, ``z`` on the
    midline; the first electrode-like token of the name counts (``EEG
    Fp1-REF`` is ``Fp1``).
    """
    for token in re.split(r"[-\s:/]+", name.strip()):
        match = _ELECTRODE.match(token)
        if match:
            number = match.group(1)
            if number in "zZ":
                return "midline"
            return "left" if int(number) % 2 else "right"
    return "other"


def _pick_traces(raw, max_traces=_MAX_TRACES):
    """Up to ``max_traces`` EEG channels spread over both hemispheres.

    Channels are grouped by side (left, right, midline, other); each group
    gets slots in turn, and within a group the channels are taken evenly
    spaced, so alternating left/right lists show both sides. Returned in the
    recording's channel order.
    """
    import mne

    picks = mne.pick_types(raw.info, eeg=True, exclude="bads")
    if len(picks) == 0:
        picks = np.arange(len(raw.ch_names))
    groups = {}
    for pick in picks:
        groups.setdefault(_side(raw.ch_names[pick]), []).append(pick)
    groups = list(groups.values())
    quota = [0] * len(groups)
    while sum(quota) < min(max_traces, len(picks)):
        for g, members in enumerate(groups):
            if quota[g] < len(members) and sum(quota) < max_traces:
                quota[g] += 1
    chosen = []
    for members, n in zip(groups, quota):
        index = np.linspace(0, len(members) - 1, n).round().astype(int)
        chosen.extend(members[i] for i in index)
    return np.array(sorted(chosen), int)


def signal_envelope(raw, picks, n_points=_N_POINTS):
    """Amplitude envelope of channels over time, read chunk by chunk.

    Parameters
    ----------
    raw : mne.io.Raw
        The recording (need not be preloaded; never modified).
    picks : array of int
        Channels.
    n_points : int
        Number of time bins.

    Returns
    -------
    times : ndarray, shape (n_bins,)
        Start of each bin in seconds.
    low, high : ndarray, shape (n_picks, n_bins)
        Minimum and maximum of each channel in each bin relative to the bin's
        mean, in volts: slow drifts and DC offsets are removed, bursts and
        artefacts stand out.
    """
    n_times = raw.n_times
    bin_size = max(1, int(np.ceil(n_times / n_points)))
    chunk = max(bin_size, int(_CHUNK_S * raw.info["sfreq"]) // bin_size * bin_size)
    lows, highs = [], []
    for start in range(0, n_times, chunk):
        data = raw.get_data(picks, start=start, stop=min(start + chunk, n_times))
        n_bins = int(np.ceil(data.shape[1] / bin_size))
        pad = n_bins * bin_size - data.shape[1]
        data = np.pad(data, ((0, 0), (0, pad)), mode="edge")
        data = data.reshape(len(picks), n_bins, bin_size)
        data = data - data.mean(axis=2, keepdims=True)
        lows.append(data.min(axis=2))
        highs.append(data.max(axis=2))
    times = np.arange(sum(x.shape[1] for x in lows)) * bin_size / raw.info["sfreq"]
    return times, np.concatenate(lows, axis=1), np.concatenate(highs, axis=1)


def plot_timeline(raw, predictions, labels, *, not_evaluated=()):
    """Plot window probabilities above an overview of the signal.

    Parameters
    ----------
    raw : mne.io.Raw
        The recording.
    predictions : pandas.DataFrame
        One row per window with ``onset``, ``duration`` and ``proba_<label>``.
    labels : list of str
        Class names.
    not_evaluated : iterable of (onset, duration, reason)
        Spans the model did not evaluate (BAD annotations, flat or too short
        segments), shaded on both panels.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure.
    """
    import matplotlib.pyplot as plt

    picks = _pick_traces(raw)
    times, low, high = signal_envelope(raw, picks)
    fig, (ax_p, ax_s) = plt.subplots(
        2,
        1,
        sharex=True,
        figsize=(11, 2.2 + 0.45 * len(picks)),
        gridspec_kw={"height_ratios": [1.3, 0.4 * len(picks) + 0.5]},
        layout="constrained",
    )
    bottom = np.zeros(len(predictions))
    for i, label in enumerate(labels):
        proba = predictions[f"proba_{label}"].to_numpy()
        ax_p.bar(
            predictions["onset"],
            proba,
            width=predictions["duration"],
            bottom=bottom,
            align="edge",
            color=f"C{i}",
            label=f"P({label})",
        )
        bottom = bottom + proba
    for i, (onset, duration, _) in enumerate(not_evaluated):
        for ax in (ax_p, ax_s):
            ax.axvspan(
                onset,
                onset + duration,
                facecolor="0.85",
                edgecolor="0.5",
                hatch="//",
                lw=0,
                label="not evaluated" if i == 0 and ax is ax_p else None,
            )
    ax_p.axhline(0.5, color="k", lw=0.6, ls="--")
    ax_p.set(ylim=(0, 1), ylabel="probability")
    ax_p.legend(loc="upper right", fontsize="small")
    ax_p.set_title(
        "Class probabilities per window (stacked; dashed line: 0.5; hatched: "
        "not evaluated)",
        fontsize="medium",
    )
    scale = float(np.median(np.percentile(high - low, 95, axis=1))) or 1.0
    for k in range(len(picks)):
        offset = -k * scale
        ax_s.fill_between(
            times, low[k] + offset, high[k] + offset, color="k", lw=0, step="post"
        )
    ax_s.set_yticks(-np.arange(len(picks)) * scale, [raw.ch_names[p] for p in picks])
    ax_s.set_ylim(-len(picks) * scale, scale)
    ax_s.set(xlabel="time (s)", xlim=(0, raw.n_times / raw.info["sfreq"]))
    ax_s.set_title(
        "Signal: amplitude envelope (min/max around the local mean, "
        f"{_unit_scale(scale)} between traces)",
        fontsize="medium",
    )
    return fig


def _unit_scale(scale):
    return f"{scale * 1e6:.0f} µV"


def plot_attention_topomaps(attention, ch_names, positions):
    """Topomap of each channel-unification query's attention over electrodes.

    Parameters
    ----------
    attention : ndarray, shape (n_queries, n_channels)
        Attention weights (e.g. averaged over windows).
    ch_names : list of str
        Channel names.
    positions : ndarray, shape (n_channels, 3)
        Electrode positions in metres, MNE head frame.

    Returns
    -------
    fig : matplotlib.figure.Figure
        One topomap per query.
    """
    import matplotlib.pyplot as plt
    import mne

    info = mne.create_info(list(ch_names), 256.0, "eeg")
    montage = mne.channels.make_dig_montage(
        ch_pos=dict(zip(ch_names, np.asarray(positions, float))), coord_frame="head"
    )
    info.set_montage(montage)
    n_q = attention.shape[0]
    fig, axes = plt.subplots(
        1, n_q, figsize=(2.2 * n_q, 2.6), layout="constrained", squeeze=False
    )
    for q, ax in enumerate(axes[0]):
        im, _ = mne.viz.plot_topomap(
            attention[q],
            info,
            axes=ax,
            show=False,
            cmap="viridis",
            vlim=(0, float(attention.max())),
            sensors=True,
            contours=0,
        )
        ax.set_title(f"query {q + 1}", fontsize="small")
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.8, label="attention")
    return fig


def summary_line(summary, *, model_name, model_sha256=None, not_evaluated=()):
    """One line summing up a recording's result.

    Parameters
    ----------
    summary : dict
        ``label``, ``proba_<label>``, ``n_windows`` and ``n_skipped``.
    model_name : str
        Name of the model.
    model_sha256 : str | None
        SHA-256 of the model's weights file (shown shortened).
    not_evaluated : iterable of (onset, duration, reason)
        Spans the model did not evaluate.

    Returns
    -------
    line : str
        E.g. ``"Epilepsy (P = 0.94); windows: 3 used, 1 skipped; not
        evaluated: 2 spans, 8.0 s; model lumamba-tiny (SHA-256 d18f64cc6499)"``.
    """
    label = summary.get("label", "?")
    proba = summary.get(f"proba_{label}")
    spans = list(not_evaluated)
    seconds = sum(float(duration) for _, duration, _ in spans)
    line = f"{label}" + ("" if proba is None else f" (P = {proba:.2f})")
    line += (
        f"; windows: {summary.get('n_windows', '?')} used, "
        f"{summary.get('n_skipped', '?')} skipped; not evaluated: "
        f"{len(spans)} span{'s' * (len(spans) != 1)}, {seconds:.1f} s"
        f"; model {model_name}"
    )
    return line + (f" (SHA-256 {model_sha256[:12]})" if model_sha256 else "")


def _card_field(card, key):
    """A field of a model card given as a dict or as an object."""
    value = card.get(key) if isinstance(card, dict) else getattr(card, key, None)
    return "?" if value is None else value


def _summary_html(summary, card, disclaimer, line):
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>"
        for k, v in summary.items()
    )
    model = html.escape(str(_card_field(card, "name")))
    licence = html.escape(str(_card_field(card, "licence")))
    return (
        f"<p><strong>{html.escape(disclaimer)}</strong></p>"
        f"<p class='lead'>{html.escape(line)}</p>"
        f"<table class='table table-sm'>{rows}</table>"
        f"<p>Model: {model} (licence {licence}).</p>"
    )


def _fmt(value):
    return f"{value:.3f}" if isinstance(value, float) else str(value)


@verbose
@fill_doc
def write_report(  # noqa: D417 (docdict)
    fname,
    raw,
    predictions,
    *,
    summary,
    card=None,
    attention=None,
    ch_names=None,
    positions=None,
    title="mne-eegfm",
    disclaimer="Research demonstration, not a diagnostic device.",
    not_evaluated=(),
    model_sha256=None,
    verbose=None,
):
    """Write an HTML report (:class:`mne.Report`) for one recording, atomically.

    Parameters
    ----------
    fname : path-like
        The ``.html`` file to write.
    raw : mne.io.Raw
        The recording (not modified).
    predictions : pandas.DataFrame
        One row per window: ``onset``, ``duration``, ``label``, ``proba_<label>``.
    summary : dict
        Summary of the recording (label, mean probabilities, windows).
    card : dict | None
        Model card (name, licence, ...).
    attention : ndarray, shape (n_queries, n_channels) | None
        Channel-unification attention averaged over windows; no topomaps if
        None.
    ch_names : list of str | None
        Names of the channels in ``attention``.
    positions : ndarray, shape (n_channels, 3) | None
        Their positions in metres, MNE head frame.
    title : str
        Report title.
    disclaimer : str
        Shown at the top of the report.
    not_evaluated : iterable of (onset, duration, reason)
        Spans the model did not evaluate, drawn on the timeline and counted
        in the summary line.
    model_sha256 : str | None
        SHA-256 of the model's weights file, for the summary line.
    %(verbose)s

    Returns
    -------
    fname : pathlib.Path
        The file written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import mne

    labels = [c.removeprefix("proba_") for c in predictions if c.startswith("proba_")]
    card = card or {}
    not_evaluated = list(not_evaluated)
    line = summary_line(
        summary,
        model_name=_card_field(card, "name"),
        model_sha256=model_sha256,
        not_evaluated=not_evaluated,
    )
    report = mne.Report(title=title, verbose=False)
    report.add_html(
        _summary_html(summary, card, disclaimer, line), title="Summary", section=None
    )
    fig = plot_timeline(raw, predictions, labels, not_evaluated=not_evaluated)
    report.add_figure(
        fig,
        title="Prediction timeline",
        caption="Probability per window above a min/max overview of up to "
        f"{_MAX_TRACES} EEG channels.",
        image_format="png",
    )
    plt.close(fig)
    if attention is not None and len(ch_names) < 3:
        report.add_html(
            f"<p>No attention topomaps: they need at least 3 electrodes, this "
            f"recording has {len(ch_names)}.</p>",
            title="Channel-unification attention",
        )
    elif attention is not None:
        fig = plot_attention_topomaps(np.asarray(attention), ch_names, positions)
        report.add_figure(
            fig,
            title="Channel-unification attention",
            caption="How much each learned query of the channel-unification "
            "layer attends to each electrode, averaged over windows and patches.",
            image_format="png",
        )
        plt.close(fig)
    with atomic_path(fname) as tmp:
        report.save(tmp, open_browser=False, overwrite=True, verbose=False)
    logger.info(f"Wrote {fname}")
    return fname
