"""Clinical acceptance benchmark: epilepsy vs control on the Guinea-Bissau EEG.

Subject-wise stratified k-fold cross-validation (one resting recording per
subject, so no subject's windows are ever in both train and test) of three
window-level classifiers, all evaluated per recording (a recording's
probability is the mean of its windows' probabilities):

- ``EEGFMEmbedder() -> StandardScaler -> LogisticRegression``: the frozen
  foundation-model encoder. Its embeddings are computed once per recording and
  reused by every fold, which gives exactly what refitting
  ``make_pipeline(EEGFMEmbedder(), StandardScaler(), LogisticRegression())``
  on each fold gives, since the embedder learns nothing.
- relative band power (delta, theta, alpha, beta, gamma; log of the share of
  1-45 Hz power, per channel) -> StandardScaler -> LogisticRegression;
- Riemannian tangent space of OAS covariances (pyriemann) -> StandardScaler ->
  LogisticRegression.

The baselines use 5-s windows of a 1-45 Hz band-passed copy of each recording;
the embedder applies its own input contract. Data: van Hees et al., Zenodo
10.5281/zenodo.1252141 (CC BY 4.0).

Usage::

    python benchmarks/clinical.py [--root PATH] [--n-subjects N] [--folds K]
"""

import argparse
import time
import warnings
from pathlib import Path

import mne
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

DEFAULT_ROOT = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "guinea-bissau-bids"
)
BANDS = {
    "delta": (1.0, 4.0),
    "theta": (4.0, 8.0),
    "alpha": (8.0, 13.0),
    "beta": (13.0, 30.0),
    "gamma": (30.0, 45.0),
}
WINDOW_S = 5.0
POSITIVE = "Epilepsy"


def load_recordings(root, n_subjects=None, seed=0):
    """Read the recordings and their labels.

    Parameters
    ----------
    root : path-like
        The BIDS root (with ``participants.tsv``).
    n_subjects : int | None
        Use a stratified random subset of this many subjects (all if None).
    seed : int
        Seed of the subset.

    Returns
    -------
    subjects : list of str
        Participant ids.
    raws : list of mne.io.Raw
        One preloaded recording per subject.
    labels : ndarray of int
        1 for Epilepsy, 0 for Control.
    """
    import mne_bids

    root = Path(root)
    table = pd.read_csv(root / "participants.tsv", sep="\t")
    table = table[table["group"].isin(["Epilepsy", "Control"])]
    if n_subjects is not None and n_subjects < len(table):
        table = table.groupby("group", group_keys=False).sample(
            frac=n_subjects / len(table), random_state=seed
        )
    table = table.sort_values("participant_id")
    subjects, raws = [], []
    for participant in table["participant_id"]:
        path = mne_bids.BIDSPath(
            subject=participant.removeprefix("sub-"),
            task="restingstate",
            datatype="eeg",
            root=root,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            raw = mne_bids.read_raw_bids(path, verbose=False)
        subjects.append(participant)
        raws.append(raw.load_data(verbose=False))
    labels = (table["group"].to_numpy() == POSITIVE).astype(int)
    return subjects, raws, labels


def classical_windows(raw):
    """5-s windows (volts) of a 1-45 Hz band-passed copy of ``raw``."""
    filtered = raw.copy().filter(1.0, 45.0, verbose=False)
    epochs = mne.make_fixed_length_epochs(
        filtered, duration=WINDOW_S, preload=True, verbose=False
    )
    return epochs.get_data(), raw.info["sfreq"]


def band_power_features(data, sfreq):
    """Log relative band power per channel: (n_windows, n_channels * 5)."""
    from scipy.signal import welch

    freqs, psd = welch(data, fs=sfreq, nperseg=int(2 * sfreq), axis=-1)
    total = psd[..., (freqs >= 1.0) & (freqs < 45.0)].sum(axis=-1)
    shares = [
        psd[..., (freqs >= lo) & (freqs < hi)].sum(axis=-1) / total
        for lo, hi in BANDS.values()
    ]
    return np.log(np.stack(shares, axis=-1)).reshape(len(data), -1)


def covariance_features(data):
    """OAS covariance matrices of the windows: (n_windows, C, C)."""
    from pyriemann.estimation import Covariances

    return Covariances("oas").transform(data)


def _logistic():
    return LogisticRegression(max_iter=1000)


def methods():
    """The classifiers compared, each fitted on window-level features."""
    from pyriemann.tangentspace import TangentSpace

    return {
        "EEGFMEmbedder + LR": lambda: make_pipeline(StandardScaler(), _logistic()),
        "band power + LR": lambda: make_pipeline(StandardScaler(), _logistic()),
        "tangent space + LR": lambda: make_pipeline(
            TangentSpace(metric="riemann"), StandardScaler(), _logistic()
        ),
    }


def subject_folds(subjects, labels, n_splits, seed=0):
    """Stratified folds of recordings, grouped by subject.

    Returns
    -------
    folds : list of (train, test)
        Recording indices; no subject is in both.
    """
    cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    folds = list(cv.split(np.zeros(len(labels)), labels, groups=subjects))
    for train, test in folds:
        shared = set(np.asarray(subjects)[train]) & set(np.asarray(subjects)[test])
        if shared:
            raise RuntimeError(f"Subjects in both train and test: {sorted(shared)}")
    return folds


def evaluate(features, labels, folds, make_classifier):
    """Fit on the windows of the training recordings, score test recordings.

    Parameters
    ----------
    features : list of ndarray
        Window features of each recording (first axis: windows).
    labels : ndarray of int
        Label of each recording.
    folds : list of (train, test)
        Recording indices.
    make_classifier : callable
        Returns a fresh scikit-learn classifier.

    Returns
    -------
    scores : list of dict
        Per fold: ``balanced_accuracy`` and ``roc_auc`` over test recordings,
        and the ``test`` recording indices.
    """
    scores = []
    for train, test in folds:
        X = np.concatenate([features[i] for i in train])
        y = np.concatenate([np.full(len(features[i]), labels[i]) for i in train])
        clf = make_classifier().fit(X, y)
        proba = np.array([clf.predict_proba(features[i])[:, 1].mean() for i in test])
        scores.append(
            {
                "balanced_accuracy": balanced_accuracy_score(
                    labels[test], (proba >= 0.5).astype(int)
                ),
                "roc_auc": roc_auc_score(labels[test], proba),
                "test": test,
            }
        )
    return scores


def spaced_epochs(raw, n_windows):
    """At most ``n_windows`` evenly spaced 5-s epochs of ``raw`` (lazy)."""
    sfreq = raw.info["sfreq"]
    n_samples = int(round(WINDOW_S * sfreq))
    starts = np.arange(0, raw.n_times - n_samples, n_samples)
    keep = np.unique(np.linspace(0, len(starts) - 1, n_windows).round().astype(int))
    events = np.column_stack(
        [
            starts[keep] + raw.first_samp,
            np.zeros(len(keep), int),
            np.ones(len(keep), int),
        ]
    )
    # One sample more than 5 s: 1281 samples at 256 Hz, cropped to 32 patches.
    return mne.Epochs(
        raw,
        events,
        tmin=0.0,
        tmax=WINDOW_S,
        baseline=None,
        preload=False,
        verbose=False,
    )


def embed_recordings(raws, embedder, max_windows=None):
    """Embed every recording once (the embedder is frozen).

    With ``max_windows``, each recording gives at most that many evenly spaced
    5-s windows (as Epochs) instead of all its consecutive windows.
    """
    if max_windows is None:
        return [embedder.transform(raw) for raw in raws]
    return [embedder.transform(spaced_epochs(raw, max_windows)) for raw in raws]


def run(
    root=DEFAULT_ROOT,
    n_subjects=None,
    n_splits=5,
    embedder=None,
    max_windows=None,
    seed=0,
):
    """Run the benchmark.

    Parameters
    ----------
    root : path-like
        BIDS root of the Guinea-Bissau dataset.
    n_subjects : int | None
        Number of subjects (all if None).
    n_splits : int
        Number of folds.
    embedder : EEGFMEmbedder | None
        The embedder (default: ``EEGFMEmbedder()``, the shipped model).
    max_windows : int | None
        Embed at most this many evenly spaced windows per recording (all
        consecutive windows if None). The baselines always use all windows.
    seed : int
        Seed of the subject subset and the folds.

    Returns
    -------
    results : pandas.DataFrame
        One row per method and fold: ``method``, ``fold``,
        ``balanced_accuracy``, ``roc_auc``, ``n_test``.
    info : dict
        ``timings`` (seconds per stage), ``folds`` (train/test recording
        indices), ``subjects``, ``labels``, ``n_windows`` (per method).
    """
    from mne_eegfm import EEGFMEmbedder

    timings = {}
    start = time.perf_counter()
    subjects, raws, labels = load_recordings(root, n_subjects, seed)
    timings["read"] = time.perf_counter() - start

    start = time.perf_counter()
    embedder = EEGFMEmbedder(verbose=False) if embedder is None else embedder
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # 128 Hz < contract's 75 Hz
        embeddings = embed_recordings(raws, embedder, max_windows)
    features = {"EEGFMEmbedder + LR": embeddings}
    timings["embed"] = time.perf_counter() - start

    start = time.perf_counter()
    windows = [classical_windows(raw) for raw in raws]
    features["band power + LR"] = [band_power_features(d, s) for d, s in windows]
    features["tangent space + LR"] = [covariance_features(d) for d, _ in windows]
    timings["baseline features"] = time.perf_counter() - start

    folds = subject_folds(subjects, labels, n_splits, seed)
    rows = []
    for name, make_classifier in methods().items():
        start = time.perf_counter()
        for fold, score in enumerate(
            evaluate(features[name], labels, folds, make_classifier)
        ):
            rows.append(
                {
                    "method": name,
                    "fold": fold,
                    "balanced_accuracy": score["balanced_accuracy"],
                    "roc_auc": score["roc_auc"],
                    "n_test": len(score["test"]),
                }
            )
        timings[f"cv {name}"] = time.perf_counter() - start
    info = {
        "timings": timings,
        "folds": folds,
        "subjects": subjects,
        "labels": labels,
        "n_windows": {k: sum(len(f) for f in v) for k, v in features.items()},
    }
    return pd.DataFrame(rows), info


def summary(results):
    """Mean and sd over folds of each metric, per method (as text)."""
    lines = [f"{'method':<22} {'balanced accuracy':>18} {'ROC AUC':>16}"]
    for method, group in results.groupby("method", sort=False):
        cells = [
            f"{group[m].mean():.3f} ± {group[m].std(ddof=1):.3f}"
            for m in ("balanced_accuracy", "roc_auc")
        ]
        lines.append(f"{method:<22} {cells[0]:>18} {cells[1]:>16}")
    return "\n".join(lines)


def main():
    """Command-line entry point."""
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", default=DEFAULT_ROOT, type=Path)
    parser.add_argument("--n-subjects", type=int, default=None)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument(
        "--model",
        default=None,
        help="checkpoint name or path (default: the shipped pretrained encoder)",
    )
    parser.add_argument(
        "--max-windows",
        type=int,
        default=None,
        help="embed at most this many evenly spaced windows per recording",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    mne.set_log_level("WARNING")
    from mne_eegfm import EEGFMEmbedder

    embedder = EEGFMEmbedder(model=args.model, batch_size=64, verbose=False)
    start = time.perf_counter()
    results, info = run(
        args.root, args.n_subjects, args.folds, embedder, args.max_windows, args.seed
    )
    total = time.perf_counter() - start
    n_rec = len(info["subjects"])
    print(
        f"Guinea-Bissau epilepsy vs control: {n_rec} recordings "
        f"({int(info['labels'].sum())} epilepsy), subject-wise {args.folds}-fold CV, "
        f"per-recording metrics (mean ± sd over folds); model "
        f"{args.model or 'default (shipped)'}; {args.threads} threads"
    )
    print(summary(results))
    print("windows:", ", ".join(f"{k}: {v}" for k, v in info["n_windows"].items()))
    print(
        "time (s):",
        ", ".join(f"{k} {v:.1f}" for k, v in info["timings"].items()),
        f"| total {total:.1f}",
    )


if __name__ == "__main__":
    main()
