"""Labelled BIDS data, subject-wise cross-validation and its metrics.

Used by ``mne-eegfm fit`` and usable by the benchmarks: :func:`load_labelled`
reads a BIDS dataset with one label per subject (a ``participants.tsv``
column) or per window (the annotations of each recording);
:func:`cross_validate` splits by subject, never windows of one subject across
train and test, and scores per window and per recording.
"""

from pathlib import Path

import numpy as np
from mne.utils import logger

__all__ = ["cross_validate", "load_labelled", "metrics", "parse_target"]

LEVELS = ("recording", "window")


def parse_target(target):
    """Split a target: ``participants:COLUMN`` or ``events`` (column None)."""
    kind, _, column = target.partition(":")
    if kind == "participants" and column:
        return kind, column
    if kind == "events" and not column:
        return kind, None
    raise ValueError(f"expected participants:COLUMN or events, got {target!r}")


def _epochs_at(raw, starts, n):
    """Epochs of ``n`` samples starting at the given samples (preloaded)."""
    import mne

    starts = np.asarray(starts, int) + raw.first_samp
    events = np.column_stack([starts, np.zeros_like(starts), np.ones_like(starts)])
    return mne.Epochs(
        raw,
        events,
        tmin=0.0,
        tmax=(n - 1) / raw.info["sfreq"],
        baseline=None,
        preload=True,
        reject_by_annotation=True,
        event_repeated="drop",
        verbose=False,
    )


def _window_samples(raw, window):
    return int(round(window * raw.info["sfreq"]))


def annotation_epochs(raw, window):
    """Epochs of ``window`` seconds tiling each non-BAD annotation, and labels."""
    sfreq = raw.info["sfreq"]
    n = _window_samples(raw, window)
    starts, labels = [], []
    for annot in raw.annotations:
        if annot["description"].upper().startswith(("BAD", "EDGE")):
            continue
        onset = annot["onset"] - raw.first_time
        for k in range(max(1, int(annot["duration"] // window))):
            start = int(round((onset + k * window) * sfreq))
            if 0 <= start and start + n <= raw.n_times:
                starts.append(start)
                labels.append(annot["description"])
    if not starts:
        return None, []
    epochs = _epochs_at(raw, starts, n)
    return epochs, [labels[i] for i in epochs.selection]


def spread_epochs(raw, window, max_windows, label):
    """Up to ``max_windows`` windows spread evenly over the recording."""
    n = _window_samples(raw, window)
    if raw.n_times < n:
        return None, []
    count = min(max_windows, (raw.n_times - n) // n + 1)
    starts = np.linspace(0, raw.n_times - n, count).round().astype(int)
    epochs = _epochs_at(raw, starts, n)
    return epochs, [label] * len(epochs)


def progress(items, desc, unit, show=None, total=None):
    """``items`` with a progress bar on stderr.

    ``show`` None shows it when MNE logs at INFO level (``verbose=True``).
    """
    import logging
    import sys

    if show is None:
        show = logger.getEffectiveLevel() <= logging.INFO
    if not show:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit=unit, total=total, file=sys.stderr)


def describe_error(err):
    """One line saying why something failed (type and first message line)."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0] if lines else repr(err)}"


def load_labelled(
    root, recordings, target, window, max_windows=None, *, show_progress=None
):
    """Read BIDS recordings and their labels; say which were left out and why.

    Parameters
    ----------
    root : path-like
        The BIDS root.
    recordings : list of mne_bids.BIDSPath
        The recordings (see :func:`mne_eegfm.bids.find_recordings`).
    target : str
        ``"participants:COLUMN"`` or ``"events"``.
    window : float
        Window length in seconds.
    max_windows : int | None
        ``participants`` target: at most this many windows per recording,
        spread evenly (None: the whole Raw).
    show_progress : bool | None
        Show a progress bar over the recordings on stderr (None: when MNE
        logs at INFO level).

    Returns
    -------
    data : list of (subject, Raw or Epochs, labels)
        One label per Raw, or one per epoch.
    left_out : list of (file name, reason)
        Recordings not used.
    """
    from . import bids

    kind, column = parse_target(target)
    labels = bids.subject_labels(root, column) if kind == "participants" else None
    data, left_out = [], []
    for bids_path in progress(recordings, "Reading", "rec", show_progress):
        name = Path(bids_path.fpath).name
        if labels is not None and bids_path.subject not in labels:
            left_out.append((name, f"no {column} in participants.tsv"))
            continue
        try:
            raw = bids.read_recording(bids_path, verbose=False)
            if labels is None:
                item, y = annotation_epochs(raw, window)
            elif max_windows is None:
                item, y = raw, [labels[bids_path.subject]]
            else:
                label = labels[bids_path.subject]
                item, y = spread_epochs(raw, window, max_windows, label)
        except Exception as err:  # reported, the others continue
            left_out.append((name, describe_error(err)))
            continue
        if item is None or not y:
            left_out.append((name, "no window to train on"))
            continue
        data.append((bids_path.subject, item, y))
    return data, left_out


def _window_truth(table, items):
    """Index (into items) of the recording and true label of each window."""
    from mne import BaseEpochs

    owner = table["recording"].to_numpy()
    if isinstance(items[0][1], BaseEpochs):  # one label per epoch, in order
        labels = np.concatenate([y for _, _, y in items])
        if len(labels) != len(table):
            raise RuntimeError(
                f"{len(table)} predictions for {len(labels)} labelled epochs"
            )
        return owner, labels
    return owner, np.array([items[i][2][0] for i in owner])


def metrics(y_true, proba, classes):
    """Balanced accuracy and ROC AUC (one-vs-rest for more than 2 classes).

    Parameters
    ----------
    y_true : array-like, shape (n,)
        True labels.
    proba : ndarray, shape (n, n_classes)
        Predicted probabilities, columns in the order of ``classes``.
    classes : ndarray, shape (n_classes,)
        The class labels.

    Returns
    -------
    scores : dict
        ``balanced_accuracy`` and ``roc_auc`` (NaN when only one class is
        present).
    """
    from sklearn.metrics import balanced_accuracy_score, roc_auc_score

    y_pred = classes[np.argmax(proba, axis=1)]
    out = {"balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred))}
    try:
        if len(classes) == 2:
            out["roc_auc"] = float(roc_auc_score(y_true == classes[1], proba[:, 1]))
        else:
            out["roc_auc"] = float(
                roc_auc_score(y_true, proba, multi_class="ovr", labels=classes)
            )
    except ValueError:  # one class only in this fold
        out["roc_auc"] = float("nan")
    return out


def _fold_results(est, items, per_recording):
    table = est.predict_windows([item for _, item, _ in items])
    cols = [f"proba_{c}" for c in est.classes_]
    owner, y_win = _window_truth(table, items)
    results = {"window": (y_win, table[cols].to_numpy())}
    if per_recording:
        per_rec = table[cols].groupby(owner).mean()
        y_rec = np.array([items[i][2][0] for i in per_rec.index])
        results["recording"] = (y_rec, per_rec.to_numpy())
    return results


def _summarise(folds, pooled, classes):
    import pandas as pd

    summary = {}
    for level in folds:
        frame = pd.DataFrame(folds[level])
        y_all = np.concatenate(pooled[level][0])
        p_all = np.concatenate(pooled[level][1])
        summary[level] = {
            "mean": frame.mean().round(4).to_dict(),
            "std": frame.std(ddof=0).round(4).to_dict(),
            "pooled": {
                k: round(v, 4) for k, v in metrics(y_all, p_all, classes).items()
            },
            "n": int(len(y_all)),
        }
    return summary


def cross_validate(
    estimator, data, n_splits, *, per_recording, seed=0, log=None, show_progress=None
):
    """Subject-wise cross-validation: per-fold and pooled out-of-fold metrics.

    Parameters
    ----------
    estimator : EEGFMClassifier
        Cloned and fitted on each training split.
    data : list of (subject, Raw or Epochs, labels)
        As returned by :func:`load_labelled`.
    n_splits : int
        Number of folds (:class:`~sklearn.model_selection.StratifiedGroupKFold`
        with subjects as groups).
    per_recording : bool
        Also score the mean probability of each recording (one label each).
    seed : int
        Seed of the shuffled split.
    log : callable | None
        Called with one line per fold (default: the MNE logger at INFO level).
    show_progress : bool | None
        Show a progress bar over the folds on stderr (None: when MNE logs at
        INFO level).

    Returns
    -------
    summary : dict
        Per level (``recording``, ``window``): ``mean`` and ``std`` over folds
        and ``pooled`` out-of-fold metrics (see :func:`metrics`), and ``n``.
    """
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedGroupKFold

    log = logger.info if log is None else log
    units = [(i, lab) for i, (_, _, labels) in enumerate(data) for lab in labels]
    rec_of = np.array([i for i, _ in units])
    y_units = np.array([lab for _, lab in units])
    groups = np.array([data[i][0] for i in rec_of])
    levels = LEVELS if per_recording else ("window",)
    folds = {level: [] for level in levels}
    pooled = {level: ([], []) for level in levels}
    cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    split = cv.split(np.zeros(len(units)), y_units, groups)
    split = progress(split, "Cross-validation", "fold", show_progress, n_splits)
    for fold, (train, test) in enumerate(split, start=1):
        train_recs = sorted(set(rec_of[train]))
        est = clone(estimator).fit(
            [data[i][1] for i in train_recs],
            [lab for i in train_recs for lab in data[i][2]],
        )
        items = [data[i] for i in sorted(set(rec_of[test]))]
        for level, (y_true, p) in _fold_results(est, items, per_recording).items():
            folds[level].append(metrics(y_true, p, est.classes_))
            pooled[level][0].append(y_true)
            pooled[level][1].append(p)
        log(
            f"  fold {fold}/{n_splits}: "
            + ", ".join(
                f"{level} BA {folds[level][-1]['balanced_accuracy']:.3f} "
                f"AUC {folds[level][-1]['roc_auc']:.3f}"
                for level in levels
            )
        )
    return _summarise(folds, pooled, np.unique(y_units))
