"""Documented results of :func:`mne_eegfm.embed` and :func:`mne_eegfm.predict`."""

from dataclasses import dataclass

import numpy as np

__all__ = ["Embeddings", "Predictions"]


def _skipped_frame(skipped):
    import pandas as pd

    return pd.DataFrame(
        {
            "recording": np.asarray(skipped["source"], int),
            "onset": np.asarray(skipped["onset"], float),
            "duration": np.asarray(skipped["duration"], float),
            "reason": np.asarray(skipped["reason"], object),
        }
    )


def softmax(logits):
    """Softmax over the last axis of float64 logits."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


@dataclass
class _WindowResults:
    onsets: np.ndarray
    durations: np.ndarray
    recording: np.ndarray
    skipped: object
    ch_names: list
    positions: list
    model: str

    @property
    def n_windows(self):
        """Number of windows with an output."""
        return len(self.onsets)

    @property
    def n_skipped(self):
        """Number of windows left out (see ``skipped`` for why)."""
        return len(self.skipped)

    def _frame(self):
        import pandas as pd

        return pd.DataFrame(
            {
                "recording": self.recording,
                "onset": self.onsets,
                "duration": self.durations,
            }
        )

    @classmethod
    def _common(cls, outputs, model):
        return dict(
            onsets=outputs.onsets,
            durations=outputs.durations,
            recording=outputs.source,
            skipped=_skipped_frame(outputs.skipped),
            ch_names=outputs.ch_names,
            positions=outputs.positions,
            model=model,
        )


@dataclass
class Embeddings(_WindowResults):
    """Embeddings of every window, and where each window lies.

    Parameters
    ----------
    onsets : ndarray of float, shape (n_windows,)
        Window starts in seconds (from the recording start for a Raw; for
        Epochs, from each epoch's event).
    durations : ndarray of float, shape (n_windows,)
        Window lengths in seconds.
    recording : ndarray of int, shape (n_windows,)
        Position of each window's source in the input (0 for one object).
    skipped : pandas.DataFrame
        Windows left out, one row each: ``recording``, ``onset``,
        ``duration`` and ``reason`` (e.g. the BAD annotation overlapped).
    ch_names : list of list of str
        Channels used, per input.
    positions : list of ndarray
        Their positions (n_channels, 3) in metres, per input.
    model : str
        Name of the model.
    embeddings : ndarray of float32, shape (n_windows, D) or (n_windows, D, n_patches)
        One embedding per window, in input then time order.
    """

    embeddings: np.ndarray = None

    @classmethod
    def from_outputs(cls, outputs, model):
        """Build from the outputs of the streaming path.

        Parameters
        ----------
        outputs : ModelOutputs
            Embeddings from :func:`mne_eegfm.inference.run_model`.
        model : str
            Name of the model.

        Returns
        -------
        embeddings : Embeddings
            The result.
        """
        return cls(**cls._common(outputs, model), embeddings=outputs.values)

    def pooled(self):
        """Average the embeddings of each recording.

        Returns
        -------
        pooled : ndarray, shape (n_recordings, ...)
            Mean embedding of each recording with windows.
        """
        return np.stack(
            [self.embeddings[self.recording == r].mean(axis=0)
             for r in np.unique(self.recording)]
        )  # fmt: skip


@dataclass
class Predictions(_WindowResults):
    """Class probabilities of every window, and where each window lies.

    Parameters
    ----------
    onsets, durations, recording, skipped, ch_names, positions, model : object
        As for :class:`Embeddings`.
    proba : ndarray of float64, shape (n_windows, n_classes)
        Probabilities, columns in the order of ``classes``.
    classes : ndarray, shape (n_classes,)
        The class labels.
    attention : list of ndarray | None
        With ``attention=True``: per input, the channel-unification attention
        (n_queries, n_channels) averaged over its windows.
    ood : list of dict | None
        Per input, the out-of-distribution note of :func:`mne_eegfm.ood.note`
        (``assessed``, ``flagged``, ``score``, ``reasons``, ``text``); set by
        :func:`mne_eegfm.predict`.

    Notes
    -----
    Events (runs of windows of one class, and the spans not evaluated) are
    derived from these per-window probabilities by :meth:`events` (a table in
    the szCORE layout) and :meth:`to_annotations` (the same as
    :class:`mne.Annotations`).
    """

    proba: np.ndarray = None
    classes: np.ndarray = None
    attention: list = None
    ood: list = None

    @classmethod
    def from_outputs(cls, outputs, classes, model):
        """Build from the logits given by the streaming path.

        Parameters
        ----------
        outputs : ModelOutputs
            Logits from :func:`mne_eegfm.inference.run_model`.
        classes : array-like, shape (n_classes,)
            The class labels, in the order of the logits.
        model : str | None
            Name of the model.

        Returns
        -------
        predictions : Predictions
            The result.
        """
        attention = None
        if any(total is not None for total in outputs.sums):
            attention = [
                total / max(1, outputs.n_windows_of(index))
                for index, total in enumerate(outputs.sums)
            ]
        return cls(
            **cls._common(outputs, model),
            proba=softmax(outputs.values.astype(np.float64)),
            classes=np.asarray(classes),
            attention=attention,
        )

    @property
    def labels(self):
        """Most probable class of each window."""
        return self.classes[np.argmax(self.proba, axis=1)]

    def to_dataframe(self):
        """One row per window: recording, onset, duration, label, proba_<class>.

        Returns
        -------
        table : pandas.DataFrame
            The same table as :meth:`EEGFMClassifier.predict_windows`.
        """
        table = self._frame()
        table["label"] = self.labels
        for index, label in enumerate(self.classes):
            table[f"proba_{label}"] = self.proba[:, index]
        return table

    def summary(self, recording=0):
        """Mean probabilities and most probable class of one recording.

        Parameters
        ----------
        recording : int
            Position of the recording in the input.

        Returns
        -------
        summary : dict
            ``label``, ``proba_<class>`` (means over windows), ``n_windows``
            and ``n_skipped``.
        """
        rows = self.recording == recording
        mean = self.proba[rows].mean(axis=0)
        out = {"label": str(self.classes[int(np.argmax(mean))])}
        out.update({f"proba_{c}": float(p) for c, p in zip(self.classes, mean)})
        out["n_windows"] = int(rows.sum())
        out["n_skipped"] = int((self.skipped["recording"] == recording).sum())
        return out

    def events(self, recording=0, *, raw=None, background=None):
        """Events of one recording in the szCORE layout.

        Contiguous windows of the same predicted class become one event with
        their mean confidence; the windows left out (``skipped``: BAD
        annotations, flat signal) and any part no window covers are
        ``not_evaluated`` rows of their own, never background. See
        :func:`mne_eegfm.events.window_events`.

        Parameters
        ----------
        recording : int
            Position of the recording in the input.
        raw : mne.io.Raw | None
            The recording, for its length and start time. None: the end of
            its last window or skipped span, and no start time.
        background : str | list of str | None
            Class(es) written as ``bckg`` (e.g. ``"Control"``).

        Returns
        -------
        events : pandas.DataFrame
            One row per event: ``onset, duration, eventType, confidence,
            channels, dateTime, recordingDuration, reason``.
        """
        from .events import window_events

        rows = self.recording == recording
        skipped = self.skipped[self.skipped["recording"] == recording]
        spans = list(zip(skipped["onset"], skipped["duration"], skipped["reason"]))
        if raw is not None:
            duration, meas_date = raw.n_times / raw.info["sfreq"], raw.info["meas_date"]
        else:
            ends = [o + d for o, d, _ in spans]
            ends += list(self.onsets[rows] + self.durations[rows])
            duration, meas_date = max(ends, default=0.0), None
        return window_events(
            self.onsets[rows],
            self.durations[rows],
            self.labels[rows],
            self.proba[rows].max(axis=1),
            recording_duration=duration,
            skipped=spans,
            background=background,
            meas_date=meas_date,
        )

    def to_annotations(self, recording=0, *, raw=None, background=None):
        """The events of one recording as :class:`mne.Annotations`.

        Parameters
        ----------
        recording : int
            Position of the recording in the input.
        raw : mne.io.Raw | None
            The recording the annotations are for: with it they can be added
            to ``raw.annotations`` (``raw.set_annotations(raw.annotations +
            annot)``); None gives onsets from the first sample.
        background : str | list of str | None
            Class(es) described as ``bckg``.

        Returns
        -------
        annotations : mne.Annotations
            One annotation per row of :meth:`events` (``not_evaluated: <reason>``
            for spans not evaluated), with its confidence in ``extras``.
        """
        from .events import to_annotations

        table = self.events(recording, raw=raw, background=background)
        if raw is None:
            return to_annotations(table)
        return to_annotations(
            table, orig_time=raw.info["meas_date"], first_time=raw.first_time
        )
