"""Transfer benchmark: does a pretrained encoder help on subjects it never saw?

Every task uses only subjects held out of pretraining
(:mod:`mne_eegfm.pretrain.heldout`), on two devices and montages:

- ``mi-rest-move``: PhysioNet EEG Motor Movement/Imagery (64 ch, 160 Hz),
  13 held-out subjects, runs R03/R04/R06/R07: rest (T0) vs movement or
  imagery (T1 or T2), one event-locked window (0-4 s, cropped to 3.75 s) per
  event. (The other held-out subject, S003 in ``formats/eegbci-S003``, has
  only the eyes-open/closed baseline runs, no T1/T2 events.)
- ``mi-left-right``: same subjects, runs R03 (left vs right fist) and R04
  (imagined): T1 vs T2.
- ``gb-eyes``: Guinea-Bissau (Emotiv, 14 ch, 128 Hz), 24 held-out subjects:
  eyes closed vs open per 10-s window, from the block order in
  ``participants.tsv`` (windows within 5 s of the block change left out).
- ``gb-epilepsy``: same windows, epilepsy vs control, scored per recording
  (mean of the window probabilities).

Methods, on the same subject-wise stratified folds within one run:
``pretrained + LR`` (frozen encoder, mean-pooled patch tokens,
StandardScaler + LogisticRegression), ``random init + LR`` (the same
architecture, seed 0; the goal compares with it), ``random inits + LR (mean)``
(fold-wise mean over ``--random-inits`` seeds 0, 1, ...: one random init is a
noisy baseline, its score moves by about 0.02 from seed to seed),
``pretrained + query head`` and ``random init + query head``
(:class:`mne_eegfm.EEGFMClassifier` as ``EEGFMClassifier().fit(X, y)``
trains it: frozen encoder, the attention-pooling query head on the patch
tokens, 30 epochs at most with early stopping; seed 0 for the random init),
``fine-tuned`` (:class:`mne_eegfm.EEGFMClassifier`,
``mode="finetune"``: up to 10 head-only epochs on the frozen encoder, then a
few epochs of the whole model, see ``--finetune-epochs``), ``band power +
LR`` (log relative power in 5 bands per channel) and ``tangent space + LR``
(pyriemann, OAS covariances, log-Euclidean tangent space). Balanced accuracy
(threshold 0.5, balanced class weights) and ROC AUC, mean +- sd over folds.

Preprocessed windows, embeddings and features are cached under
``--cache-dir`` (default ``~/.cache/mne-eegfm/transfer``), keyed by the data,
the contract and the encoder's weights, so a re-run only fits the probes.

Usage::

    python benchmarks/transfer.py [--encoder NAME_OR_PATH] [--quick]
        [--data PATH] [--out table.md] [--folds 5] [--finetune-epochs 2]
        [--random-inits 5]
"""

import argparse
import hashlib
import json
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import mne
import numpy as np
import torch
from scipy.signal import welch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mne_eegfm.pretrain import heldout

DEFAULT_DATA = Path(
    os.environ.get(
        "MNE_EEGFM_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"
    )
)
DEFAULT_CACHE = Path.home() / ".cache" / "mne-eegfm" / "transfer"
BANDS = ((1.0, 4.0), (4.0, 8.0), (8.0, 13.0), (13.0, 30.0), (30.0, 45.0))
TASKS = ("mi-rest-move", "mi-left-right", "gb-eyes", "gb-epilepsy")
METHODS = (
    "pretrained + LR",
    "random init + LR",
    "random inits + LR (mean)",
    "pretrained + query head",
    "random init + query head",
    "fine-tuned",
    "band power + LR",
    "tangent space + LR",
)
#: Head-only epochs before fine-tuning (EEGFMClassifier's default).
PROBE_EPOCHS = 10
#: Methods that train EEGFMClassifier (left out with --quick).
TRAINED = ("pretrained + query head", "random init + query head", "fine-tuned")
EVENT_S = 4.0  # event-locked epoch length (T1/T2 last 4.1 s)
EYES_MARGIN_S = 5.0
_CACHE_VERSION = 1


@dataclass
class Task:
    """Windows and labels of one task.

    ``X`` holds the contract-filtered, resampled windows in microvolts (not
    normalised), ``groups`` the subject of each window and ``recordings`` the
    recording (scored per recording when ``per_recording``).
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    recordings: np.ndarray
    positions: np.ndarray
    ch_names: list
    sfreq: float
    per_recording: bool = False


# ---------------------------------------------------------------------------
# Labels (pure functions, tested on synthetic input)


def event_labels(descriptions, task):
    """Binary labels of event descriptions for an MI task.

    Parameters
    ----------
    descriptions : sequence of str
        ``"T0"``, ``"T1"`` or ``"T2"`` per event.
    task : "mi-rest-move" | "mi-left-right"
        Rest (0) vs T1|T2 (1), or T1 (0) vs T2 (1).

    Returns
    -------
    labels : ndarray of int
        0/1 per event, -1 for events the task does not use.
    """
    codes = {
        "mi-rest-move": {"T0": 0, "T1": 1, "T2": 1},
        "mi-left-right": {"T1": 0, "T2": 1},
    }[task]
    return np.array([codes.get(str(d), -1) for d in descriptions], dtype=int)


def eyes_labels(onsets, window_s, eyes_condition, margin_s=EYES_MARGIN_S):
    """Eyes closed (1) / open (0) label of each window from the block order.

    Parameters
    ----------
    onsets : array of float
        Window starts (s from the start of the recording).
    window_s : float
        Window length (s).
    eyes_condition : str
        ``"closed-3min-then-open-2min"`` style block order.
    margin_s : float
        Windows closer than this to the block change get -1 (left out).

    Returns
    -------
    labels : ndarray of int
        1 (closed), 0 (open) or -1 (ambiguous) per window.
    """
    parts = str(eyes_condition).split("-")
    if len(parts) != 5 or parts[2] != "then" or parts[0] == parts[3]:
        raise ValueError(f"unexpected eyes_condition {eyes_condition!r}")
    first = 1 if parts[0] == "closed" else 0
    change = 60.0 * float(parts[1].removesuffix("min"))
    onsets = np.asarray(onsets, dtype=float)
    labels = np.full(len(onsets), -1, dtype=int)
    labels[onsets + window_s <= change - margin_s] = first
    labels[onsets >= change + margin_s] = 1 - first
    return labels


# ---------------------------------------------------------------------------
# Data


def _contract_for(contract):
    """The encoder's contract without normalisation (baselines need amplitudes)."""
    from mne_eegfm.preprocessing import InputContract

    return InputContract.from_dict({**contract.to_dict(), "normalization": "none"})


def _mi_files(root):
    """(subject, path) of the held-out eegmmidb task runs."""
    files = []
    for subject in heldout.EEGMMIDB:
        for run in ("R03", "R04", "R06", "R07"):
            path = root / "eegmmidb" / subject / f"{subject}{run}.edf"
            if path.is_file():
                files.append((subject, path))
    return files


def load_mi(root, contract, task):
    """Event-locked windows of the held-out eegmmidb subjects for an MI task."""
    from mne_eegfm.preprocessing import prepare, read_raw

    nonorm = _contract_for(contract)
    X, y, groups, recs, first = [], [], [], [], None
    runs = ("R03", "R04") if task == "mi-left-right" else ("R03", "R04", "R06", "R07")
    for subject, path in _mi_files(root):
        if path.stem[-3:] not in runs:
            continue
        raw = read_raw(path, verbose=False).load_data(verbose=False)
        events, event_id = mne.events_from_annotations(raw, verbose=False)
        tmax = EVENT_S - 1.0 / raw.info["sfreq"]
        epochs = mne.Epochs(
            raw, events, event_id, tmin=0.0, tmax=tmax, baseline=None,
            preload=True, verbose=False,
        )  # fmt: skip
        names = {code: name for name, code in epochs.event_id.items()}
        labels = event_labels([names[c] for c in epochs.events[:, 2]], task)
        windows = prepare(epochs, nonorm, window_s=EVENT_S, on_missing="drop")
        keep = labels >= 0
        first = first or windows
        X.append(windows.data[keep])
        y.append(labels[keep])
        groups += [subject] * int(keep.sum())
        recs += [path.stem] * int(keep.sum())
    return Task(
        task, np.concatenate(X), np.concatenate(y), np.array(groups), np.array(recs),
        first.positions, list(first.ch_names), first.sfreq,
    )  # fmt: skip


def load_gb(root, contract, task):
    """10-s windows of the held-out Guinea-Bissau subjects."""
    import pandas as pd

    from mne_eegfm.preprocessing import prepare, read_raw

    nonorm = _contract_for(contract)
    gb = root / "guinea-bissau-bids"
    table = pd.read_csv(gb / "participants.tsv", sep="\t", index_col=0)
    X, y, groups, first = [], [], [], None
    for subject in heldout.GUINEA_BISSAU:
        path = (
            gb / f"sub-{subject}" / "eeg" / f"sub-{subject}_task-restingstate_eeg.edf"
        )
        raw = read_raw(path, verbose=False)
        windows = prepare(raw, nonorm, window_s=10.0, on_missing="drop")
        row = table.loc[f"sub-{subject}"]
        if task == "gb-eyes":
            labels = eyes_labels(windows.onsets, 10.0, row["eyes_condition"])
        else:
            labels = np.full(len(windows), int(row["group"] == "Epilepsy"))
        keep = labels >= 0
        first = first or windows
        X.append(windows.data[keep])
        y.append(labels[keep])
        groups += [subject] * int(keep.sum())
    groups = np.array(groups)
    return Task(
        task, np.concatenate(X), np.concatenate(y), groups, groups,
        first.positions, list(first.ch_names), first.sfreq,
        per_recording=task == "gb-epilepsy",
    )  # fmt: skip


def load_task(root, contract, task, cache_dir):
    """Load a task's windows, from the cache when possible."""
    key = _hash({"task": task, "contract": contract.to_dict(), "root": str(root)})
    path = Path(cache_dir) / f"task-{task}-{key}.npz"
    if path.is_file():
        data = np.load(path, allow_pickle=False)
        return Task(
            task, data["X"], data["y"], data["groups"], data["recordings"],
            data["positions"], list(data["ch_names"]), float(data["sfreq"]),
            per_recording=task == "gb-epilepsy",
        )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loader = load_gb if task.startswith("gb-") else load_mi
        result = loader(Path(root), contract, task)
    _save_npz(
        path, X=result.X, y=result.y, groups=result.groups,
        recordings=result.recordings, positions=result.positions,
        ch_names=np.array(result.ch_names), sfreq=result.sfreq,
    )  # fmt: skip
    return result


def _hash(obj):
    text = json.dumps(obj, sort_keys=True, default=str) + str(_CACHE_VERSION)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _save_npz(path, **arrays):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


# ---------------------------------------------------------------------------
# Features


def zscore(X):
    """Per-window, per-channel z-score (the models' normalisation)."""
    centred = X - X.mean(-1, keepdims=True)
    return (centred / np.maximum(centred.std(-1, keepdims=True), 1e-6)).astype(
        np.float32
    )


def model_fingerprint(model):
    """Hash of a model's configuration and weights (the embedding cache key)."""
    digest = hashlib.sha256(json.dumps(model.config, sort_keys=True).encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def embed(model, X, positions, batch_size=64):
    """Mean-pooled encoder output (n, D) of z-scored windows (n, C, T)."""
    patch = model.patch_size
    X = zscore(X[..., : X.shape[-1] // patch * patch])
    model.eval()
    out = []
    with torch.inference_mode():
        pos = torch.as_tensor(positions, dtype=torch.float32)
        for start in range(0, len(X), batch_size):
            batch = torch.from_numpy(X[start : start + batch_size])
            out.append(model.encode(batch, pos).mean(1).float().numpy())
    return np.concatenate(out).astype(np.float64)


def band_power(X, sfreq):
    """Log relative power in 5 bands per channel, (n, C * 5)."""
    freqs, psd = welch(X, fs=sfreq, nperseg=min(X.shape[-1], int(2 * sfreq)))
    power = np.stack(
        [psd[..., (freqs >= lo) & (freqs < hi)].sum(-1) for lo, hi in BANDS], -1
    )
    total = power.sum(-1, keepdims=True)
    return np.log(power / np.maximum(total, 1e-30) + 1e-12).reshape(len(X), -1)


def tangent_space(X):
    """Log-Euclidean tangent vectors of the OAS covariances (pyriemann).

    ``upper(logm(C))`` (off-diagonal terms times sqrt(2)): the log-Euclidean
    vectorisation of Arsigny et al. (2006), i.e. the tangent space at the
    identity. pyriemann's ``TangentSpace`` would also re-centre at a mean
    fitted on each training fold; computing the matrix logarithms once
    instead keeps the benchmark within its time budget (the affine-invariant
    mean of 64 x 64 covariances took minutes per fold on 2 loaded cores), and
    the probe's StandardScaler re-centres the vectors anyway.
    """
    from pyriemann.estimation import Covariances
    from pyriemann.geometry.base import logm
    from pyriemann.geometry.tangentspace import upper

    covs = Covariances(estimator="oas").transform(X.astype(np.float64))
    return upper(logm(covs))


def _cached(cache_dir, name, compute):
    path = Path(cache_dir) / f"{name}.npy"
    if path.is_file():
        return np.load(path)
    value = compute()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.npy")
    np.save(tmp, value)
    os.replace(tmp, path)
    return value


# ---------------------------------------------------------------------------
# Evaluation


def make_folds(y, groups, n_splits=5, seed=0):
    """Subject-wise stratified folds shared by every method.

    Parameters
    ----------
    y : array of int
        Labels.
    groups : array
        Subject of each window.
    n_splits : int
        Number of folds.
    seed : int
        Seed of the split.

    Returns
    -------
    folds : list of (ndarray, ndarray)
        Train and test indices.
    """
    cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return list(cv.split(np.zeros(len(y)), y, groups))


def _logistic():
    return LogisticRegression(C=1.0, max_iter=2000, class_weight="balanced")


def linear_probe():
    """StandardScaler + balanced LogisticRegression."""
    return make_pipeline(StandardScaler(), _logistic())


def fold_scores(proba, y, recordings=None):
    """Balanced accuracy and ROC AUC of P(class 1), per window or per recording.

    Parameters
    ----------
    proba : array of float
        Probability of class 1 per test window.
    y : array of int
        Labels of the test windows.
    recordings : array | None
        Recording of each window: scores are then per recording (mean of its
        windows' probabilities; the label is the recording's).

    Returns
    -------
    balanced_accuracy, roc_auc : float
    """
    if recordings is not None:
        names = np.unique(recordings)
        proba = np.array([proba[recordings == r].mean() for r in names])
        y = np.array([y[recordings == r][0] for r in names])
    predicted = (proba >= 0.5).astype(int)
    return balanced_accuracy_score(y, predicted), roc_auc_score(y, proba)


def cross_validate(fit_predict, task, folds):
    """Scores of one method over the folds.

    Parameters
    ----------
    fit_predict : callable
        ``fit_predict(train_idx, test_idx) -> P(class 1)`` of the test windows.
    task : Task
        The task.
    folds : list of (ndarray, ndarray)
        From :func:`make_folds`.

    Returns
    -------
    scores : ndarray, shape (n_folds, 2)
        Balanced accuracy and ROC AUC per fold.
    """
    scores = []
    for train, test in folds:
        proba = fit_predict(train, test)
        recs = task.recordings[test] if task.per_recording else None
        scores.append(fold_scores(proba, task.y[test], recs))
    return np.array(scores)


def features_probe(features, task, probe=linear_probe):
    """``fit_predict`` of a probe on precomputed features."""

    def fit_predict(train, test):
        model = probe().fit(features[train], task.y[train])
        return model.predict_proba(features[test])[:, 1]

    return fit_predict


def classifier_probe(encoder, task, **params):
    """``fit_predict`` of :class:`mne_eegfm.EEGFMClassifier` on the windows.

    ``encoder`` is a registry name or model file; ``params`` go to the
    classifier (its defaults otherwise, seed 0).
    """
    from mne_eegfm import EEGFMClassifier

    volts = (task.X * 1e-6).astype(np.float64)
    window_s = task.X.shape[-1] / task.sfreq

    def fit_predict(train, test):
        clf = EEGFMClassifier(
            model=encoder, ch_names=task.ch_names, sfreq=task.sfreq,
            window_s=window_s, on_missing="drop", random_state=0, device="cpu",
            verbose=False, **params,
        )  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.fit(volts[train], task.y[train])
            return clf.predict_proba(volts[test])[:, list(clf.classes_).index(1)]

    return fit_predict


def finetune_probe(encoder, task, epochs):
    """LP-FT: ``PROBE_EPOCHS`` head-only epochs, then ``epochs`` of the whole model."""
    return classifier_probe(
        encoder, task, mode="finetune", head="linear", probe_epochs=PROBE_EPOCHS,
        max_epochs=epochs, validation_fraction=0.0, batch_size=32,
    )  # fmt: skip


def model_file(model, contract, cache_dir):
    """A model file of ``model`` in the cache (for EEGFMClassifier), made once."""
    from mne_eegfm.checkpoints import save_model

    stem = Path(cache_dir) / f"model-{model_fingerprint(model)}"
    if not stem.with_suffix(".safetensors").is_file():
        card = {"name": stem.name, "description": "random init (transfer.py)"}
        save_model(model, stem, contract=contract, card=card, verbose=False)
    return stem.with_suffix(".safetensors")


# ---------------------------------------------------------------------------
# Driver


def load_encoder(spec, n_random=1):
    """Pretrained encoder (registry name or model file) and random twins.

    Returns
    -------
    pretrained : torch.nn.Module
        The encoder under test.
    randoms : list of torch.nn.Module
        ``n_random`` encoders of the same architecture, initialised with the
        seeds 0, 1, ... (the first is the ``random init + LR`` of the goal).
    """
    from mne_eegfm.checkpoints import load_model
    from mne_eegfm.models import create_model

    pretrained = load_model(spec)
    config = {k: v for k, v in pretrained.config.items() if k not in ("name",)}
    randoms = []
    for seed in range(max(n_random, 1)):
        torch.manual_seed(seed)
        randoms.append(create_model(pretrained.config["name"], **config).eval())
    return pretrained, randoms


def embedding_scores(model, task, key, folds, cache_dir):
    """Fold scores of the linear probe on one encoder's (cached) embeddings."""
    feats = _cached(
        cache_dir,
        f"emb-{key}-{model_fingerprint(model)}",
        lambda: embed(model, task.X, task.positions),
    )
    return cross_validate(features_probe(feats, task), task, folds)


def run_task(task, pretrained, randoms, methods, folds, cache_dir, args, timings):
    """Scores of every method on one task.

    Returns
    -------
    results : dict
        Method -> scores, shape (n_folds, 2) (balanced accuracy, ROC AUC), or
        (n_inits, n_folds, 2) for ``random inits + LR (mean)``.
    """
    key = _hash({"task": task.name, "n": len(task.y), "sum": float(task.X.sum())})
    results = {}
    for method in methods:
        start = time.perf_counter()
        if method == "pretrained + LR":
            results[method] = embedding_scores(pretrained, task, key, folds, cache_dir)
        elif method == "random init + LR":
            results[method] = embedding_scores(randoms[0], task, key, folds, cache_dir)
        elif method == "random inits + LR (mean)":
            # Seed 0 was just probed as "random init + LR": reuse its scores.
            others = [
                embedding_scores(m, task, key, folds, cache_dir) for m in randoms[1:]
            ]
            results[method] = np.stack([results["random init + LR"], *others])
        elif method.endswith("+ query head"):
            encoder = (
                args.encoder
                if method.startswith("pretrained")
                else model_file(randoms[0], pretrained.contract, cache_dir)
            )
            fit_predict = classifier_probe(encoder, task, head="query")
            results[method] = cross_validate(fit_predict, task, folds)
        elif method == "band power + LR":
            feats = _cached(
                cache_dir, f"bp-{key}", lambda: band_power(task.X, task.sfreq)
            )
            results[method] = cross_validate(features_probe(feats, task), task, folds)
        elif method == "tangent space + LR":
            feats = _cached(cache_dir, f"ts-{key}", lambda: tangent_space(task.X))
            results[method] = cross_validate(features_probe(feats, task), task, folds)
        else:
            fit_predict = finetune_probe(args.encoder, task, args.finetune_epochs)
            results[method] = cross_validate(fit_predict, task, folds)
        timings[f"{task.name} {method}"] = time.perf_counter() - start
        bacc, auc = by_fold(results[method]).mean(0)
        print(f"  {task.name} {method}: balanced accuracy {bacc:.3f}, "
              f"ROC AUC {auc:.3f} ({time.perf_counter() - start:.0f} s)",
              flush=True)  # fmt: skip
    return results


def by_fold(scores):
    """Scores per fold, (n_folds, 2): several inits are averaged fold by fold."""
    return scores.mean(0) if scores.ndim == 3 else scores


def markdown_table(all_results, tasks, header):
    """The results as a markdown table (mean +- sd over folds)."""
    lines = [
        header,
        "",
        "| task | windows (subjects) | method | balanced accuracy | ROC AUC |",
        "|---|---|---|---|---|",
    ]
    for task in tasks:
        size = f"{len(task.y)} ({len(np.unique(task.groups))})"
        for method, scores in all_results[task.name].items():
            bacc, auc = by_fold(scores).mean(0)
            sd_bacc, sd_auc = by_fold(scores).std(0)
            lines.append(
                f"| {task.name} | {size} | {method} | {bacc:.3f} +- {sd_bacc:.3f} "
                f"| {auc:.3f} +- {sd_auc:.3f} |"
            )
    return "\n".join(lines)


def _best_baseline(results):
    base = [
        results[m][:, 0].mean()
        for m in ("band power + LR", "tangent space + LR")
        if m in results
    ]
    return max(base) if base else None


def _probe_verdict(name, results, probe):
    """One line for one probe ("LR" or "query head") of one task."""
    pre = results[f"pretrained + {probe}"][:, 0].mean()
    label = name if probe == "LR" else f"{name}, {probe}"
    parts = [f"{label}: pretrained {pre:.3f}"]
    if f"random init + {probe}" in results:
        gain = pre - results[f"random init + {probe}"][:, 0].mean()
        parts.append(f"vs random init {gain:+.3f} (goal >= +0.05)")
    inits = results.get(f"random inits + {probe} (mean)")
    if inits is not None and len(inits) > 1:
        per_init = inits[..., 0].mean(1)
        parts.append(
            f"vs the mean of {len(per_init)} random inits "
            f"{pre - per_init.mean():+.3f} (inits {per_init.min():.3f}-"
            f"{per_init.max():.3f})"
        )
    best = _best_baseline(results)
    if best is not None:
        parts.append(f"vs best baseline {pre - best:+.3f}")
    return ", ".join(parts)


def verdict(all_results):
    """Lines comparing pretrained vs random and vs the better baseline."""
    return [
        _probe_verdict(name, results, probe)
        for name, results in all_results.items()
        for probe in ("LR", "query head")
        if f"pretrained + {probe}" in results
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--encoder", default="lumamba-tiny-gb")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--finetune-epochs", type=int, default=2)
    parser.add_argument(
        "--random-inits",
        type=int,
        default=5,
        help="Random inits averaged in 'random inits + LR (mean)' (1: left out).",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="Leave out the methods that train EEGFMClassifier.",
    )
    parser.add_argument("--out", type=Path, help="Also write the table here.")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    mne.set_log_level("ERROR")
    start = time.perf_counter()
    pretrained, randoms = load_encoder(args.encoder, args.random_inits)
    methods = [
        m
        for m in METHODS
        if not (args.quick and m in TRAINED)
        and not (args.random_inits < 2 and m == "random inits + LR (mean)")
    ]
    timings, all_results, tasks = {}, {}, []
    for name in args.tasks:
        t0 = time.perf_counter()
        task = load_task(args.data, pretrained.contract, name, args.cache_dir)
        timings[f"{name} data"] = time.perf_counter() - t0
        folds = make_folds(task.y, task.groups, args.folds)
        all_results[name] = run_task(
            task, pretrained, randoms, methods, folds, args.cache_dir, args, timings
        )
        tasks.append(task)
    header = (
        f"Transfer to held-out subjects: encoder `{Path(str(args.encoder)).name}`, "
        f"subject-wise stratified {args.folds}-fold CV (mean +- sd over folds), "
        f"fine-tuned: {PROBE_EPOCHS} head-only + {args.finetune_epochs} epochs, "
        f"{args.threads} threads, {time.perf_counter() - start:.0f} s"
    )
    table = markdown_table(all_results, tasks, header)
    print(table)
    print()
    print("\n".join(verdict(all_results)))
    print("time (s): " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
    if args.out:
        args.out.write_text(table + "\n\n" + "\n".join(verdict(all_results)) + "\n")


if __name__ == "__main__":
    main()
