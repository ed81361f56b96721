"""Events from window predictions, in the szCORE annotation layout.

The szCORE layout (used by seizure-detection benchmarks and the
``timescoring`` / ``szcore-evaluation`` tools) is a TSV file with the columns
``onset, duration, eventType, confidence, channels, dateTime,
recordingDuration``: onsets and durations in seconds from the start of the
recording, the event type (``bckg`` for background), a confidence in [0, 1] or
``n/a``, the channels (``n/a``: not channel-specific), the start of the
recording as ``yyyy-mm-dd HH:MM:SS`` and the recording length in seconds. One
more column, ``reason``, says why a span was not evaluated (``n/a`` for
predicted events).
"""

import numpy as np

#: Event type of windows predicted as background.
BACKGROUND = "bckg"

#: Event type of spans the model did not evaluate (never background).
NOT_EVALUATED = "not_evaluated"

#: Columns of the szCORE layout, in order, then ``reason``.
COLUMNS = (
    "onset",
    "duration",
    "eventType",
    "confidence",
    "channels",
    "dateTime",
    "recordingDuration",
    "reason",
)

#: Reason given to parts of the recording covered by no window and no span.
NO_WINDOW = "no complete window"

_TOL = 1e-6  # seconds: windows closer than this are contiguous


def _merge_windows(onsets, ends, types, confidences):
    """Merge runs of contiguous or overlapping windows of the same type."""
    runs = []
    for onset, end, kind, conf in zip(onsets, ends, types, confidences):
        last = runs[-1] if runs else None
        if last and last["type"] == kind and onset <= last["end"] + _TOL:
            last["end"] = max(last["end"], end)
            last["conf"].append(conf)
        else:
            runs.append({"onset": onset, "end": end, "type": kind, "conf": [conf]})
    return runs


def _merge_spans(spans):
    """Merge overlapping spans that share a reason; sorted by onset."""
    merged = []
    for onset, end, reason in sorted(spans):
        same = [m for m in merged if m[2] == reason and onset <= m[1] + _TOL]
        if same:
            same[-1][1] = max(same[-1][1], end)
        else:
            merged.append([onset, end, reason])
    return merged


def _uncovered(intervals, duration):
    """Parts of [0, duration] that no interval covers."""
    gaps, cursor = [], 0.0
    for onset, end in sorted(intervals):
        if onset > cursor + _TOL:
            gaps.append((cursor, onset))
        cursor = max(cursor, end)
    if duration > cursor + _TOL:
        gaps.append((cursor, duration))
    return gaps


def _date_time(meas_date):
    if meas_date is None:
        return "n/a"
    return meas_date.strftime("%Y-%m-%d %H:%M:%S")


def window_events(
    onsets,
    durations,
    labels,
    confidences,
    *,
    recording_duration,
    skipped=(),
    background=None,
    meas_date=None,
    channels=None,
):
    """Turn per-window predictions into szCORE events.

    Contiguous (or overlapping) windows with the same predicted class become
    one event whose confidence is the mean over its windows. Windows whose
    class is in ``background`` become ``bckg`` events. Spans that were not
    evaluated (``skipped``, e.g. BAD annotations or flat segments) are rows of
    their own, with event type ``not_evaluated`` and their reason; any other
    part of the recording that no window covers (e.g. the tail shorter than a
    window) is one as well, so nothing unevaluated is reported as background.

    Parameters
    ----------
    onsets : array-like of float, shape (n_windows,)
        Window starts in seconds from the start of the recording.
    durations : float | array-like of float, shape (n_windows,)
        Window lengths in seconds.
    labels : array-like of str, shape (n_windows,)
        Predicted class of each window.
    confidences : array-like of float, shape (n_windows,)
        Probability of the predicted class of each window, in [0, 1].
    recording_duration : float
        Length of the recording in seconds.
    skipped : iterable of (onset, duration, reason)
        Spans not evaluated, in seconds, with a short reason (e.g.
        ``"BAD_muscle"``, ``"flat signal"``).
    background : str | list of str | None
        Class(es) written as ``bckg``.
    meas_date : datetime.datetime | None
        Start of the recording (``raw.info["meas_date"]``); ``n/a`` if None.
    channels : list of str | None
        Channels the events concern; None (``n/a``) for the whole montage.

    Returns
    -------
    events : pandas.DataFrame
        One row per event, columns :data:`COLUMNS`, sorted by onset.
    """
    import pandas as pd

    onsets = np.asarray(onsets, float)
    n = len(onsets)
    ends = onsets + np.broadcast_to(np.asarray(durations, float), (n,))
    confidences = np.asarray(confidences, float)
    labels = [str(label) for label in np.asarray(labels).tolist()]
    if not len(labels) == len(confidences) == n:
        raise ValueError(
            f"Got {n} onsets, {len(labels)} labels and {len(confidences)} "
            "confidences: give one of each per window."
        )
    valid = np.isfinite(confidences) & (confidences >= 0) & (confidences <= 1)
    if not valid.all():
        bad = confidences[~valid][0]
        raise ValueError(f"Confidences must be probabilities in [0, 1], got {bad}.")
    if not np.isfinite(recording_duration) or recording_duration < 0:
        raise ValueError(f"Invalid recording_duration {recording_duration!r}.")
    if isinstance(background, str):
        background = [background]
    background = set(background or ())
    types = [BACKGROUND if label in background else label for label in labels]
    order = np.argsort(onsets, kind="stable")
    runs = _merge_windows(
        onsets[order], ends[order], [types[i] for i in order], confidences[order]
    )
    spans = [(float(o), float(o) + float(d), str(r)) for o, d, r in skipped]
    covered = [(r["onset"], r["end"]) for r in runs] + [s[:2] for s in spans]
    spans += [(a, b, NO_WINDOW) for a, b in _uncovered(covered, recording_duration)]
    rows = [
        (r["onset"], r["end"] - r["onset"], r["type"], float(np.mean(r["conf"])), "")
        for r in runs
    ]
    rows += [(a, b - a, NOT_EVALUATED, np.nan, r) for a, b, r in _merge_spans(spans)]
    rows.sort(key=lambda row: row[0])
    table = pd.DataFrame(
        {
            "onset": [row[0] for row in rows],
            "duration": [row[1] for row in rows],
            "eventType": [row[2] for row in rows],
            "confidence": [row[3] for row in rows],
            "channels": ",".join(channels) if channels else "n/a",
            "dateTime": _date_time(meas_date),
            "recordingDuration": float(recording_duration),
            "reason": [row[4] or "n/a" for row in rows],
        },
        columns=list(COLUMNS),
    )
    return table


def write_events(fname, events):
    """Write events (from :func:`window_events`) as a TSV file, atomically.

    Parameters
    ----------
    fname : path-like
        The ``.tsv`` file, e.g. ``*_desc-eegfm_events.tsv``.
    events : pandas.DataFrame
        The events.

    Returns
    -------
    fname : path-like
        The file written.
    """
    from .bids import write_tsv

    table = events.copy()
    table["onset"] = table["onset"].round(6)
    table["duration"] = table["duration"].round(6)
    table["confidence"] = table["confidence"].round(4)
    write_tsv(fname, table)
    return fname


#: Descriptions of the columns, for the JSON sidecar of the events file.
COLUMN_DESCRIPTIONS = {
    "eventType": "Predicted class of a run of contiguous windows; bckg for "
    "background; not_evaluated for spans the model did not see.",
    "confidence": "Mean probability of the predicted class over the run's "
    "windows (n/a for spans not evaluated).",
    "channels": "Channels the event concerns (n/a: the whole montage).",
    "dateTime": "Start of the recording (yyyy-mm-dd HH:MM:SS), n/a if unknown.",
    "recordingDuration": {"Description": "Length of the recording.", "Units": "s"},
    "reason": "Why a span was not evaluated (n/a for predicted events).",
}


def to_annotations(events, *, orig_time=None, first_time=0.0):
    """Convert events (from :func:`window_events`) to :class:`mne.Annotations`.

    Parameters
    ----------
    events : pandas.DataFrame
        The events.
    orig_time : datetime.datetime | None
        ``raw.info["meas_date"]`` of the recording they will be attached to
        (so that they add to ``raw.annotations``).
    first_time : float
        ``raw.first_time``: added to the onsets when ``orig_time`` is given,
        since event onsets count from the first sample.

    Returns
    -------
    annotations : mne.Annotations
        One annotation per event, described by its event type
        (``not_evaluated`` spans by ``not_evaluated: <reason>``); the
        confidence is in each annotation's ``extras``.
    """
    import mne

    descriptions = [
        f"{kind}: {reason}" if kind == NOT_EVALUATED else kind
        for kind, reason in zip(events["eventType"], events["reason"])
    ]
    extras = [
        {"confidence": None if np.isnan(c) else float(c)}
        for c in events["confidence"].astype(float)
    ]
    offset = first_time if orig_time is not None else 0.0
    return mne.Annotations(
        events["onset"].to_numpy(float) + offset,
        events["duration"].to_numpy(float),
        descriptions,
        orig_time=orig_time,
        extras=extras,
    )
