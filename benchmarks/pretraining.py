"""Is the shipped pretrained encoder worth shipping? A linear probe says.

Frozen, mean-pooled embeddings of the held-out Guinea-Bissau subjects (never
seen by pretraining; their labels are never used by pretraining anyway) feed a
logistic regression that tells epilepsy from control. Windows inherit their
subject's label; a recording's probability is the mean of its windows'. The
split is subject-wise (repeated stratified K-fold over subjects, one recording
per subject). The same probe runs on a randomly initialised model of the same
configuration, in the same run.

``--step-timing`` instead times one pretraining step (forward, backward and
optimiser, band-power objective, batch of mixed 14/24-channel windows) in
float32 and in bfloat16 (:func:`mne_eegfm.pretrain.trainer.precision_context`)
in the same run, and prints the ratio and the two losses.

Usage::

    python benchmarks/pretraining.py [--data ../shared/data] [--model lumamba-tiny-gb]
    python benchmarks/pretraining.py --step-timing [--repeats 5]
"""

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from sklearn.model_selection import RepeatedStratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mne_eegfm.bids import find_recordings, read_participants, read_recording
from mne_eegfm.checkpoints import load_model
from mne_eegfm.models import create_model
from mne_eegfm.preprocessing import prepare

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", default=os.environ.get("MNE_EEGFM_DATA", DEFAULT_DATA), type=Path
    )
    parser.add_argument("--model", default="lumamba-tiny-gb")
    parser.add_argument("--folds", default=4, type=int)
    parser.add_argument("--repeats", default=10, type=int)
    parser.add_argument("--threads", default=2, type=int)
    parser.add_argument("--batch-size", default=32, type=int)
    parser.add_argument("--step-timing", action="store_true")
    parser.add_argument("--repeats", default=5, type=int)
    return parser.parse_args()


def step_timing(batch_size, repeats):
    """Seconds per training step (best of ``repeats``) in float32 and bfloat16."""
    from mne_eegfm.models.precision import precision_context, resolve_precision
    from mne_eegfm.pretrain.objectives import PretrainModule, PretrainObjective

    device = torch.device("cpu")
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch_size, 24, 640, generator=gen)
    positions = torch.randn(batch_size, 24, 3, generator=gen) * 0.05
    mask = torch.ones(batch_size, 24, dtype=torch.bool)
    mask[: batch_size // 2, 14:] = False  # half the batch has 14 channels
    x[~mask] = 0.0
    print(f"batch {batch_size} x 24 ch (half padded to 14) x 5 s @ 128 Hz, "
          f"objective spectral, {torch.get_num_threads()} threads")  # fmt: skip
    times = {}
    for precision in ("float32", "bfloat16"):
        try:
            resolved = resolve_precision(precision, device)
        except ValueError as err:
            print(f"{precision:<10} not measured: {err}")
            continue
        torch.manual_seed(0)
        model = create_model("lumamba-tiny")
        module = PretrainModule(model, PretrainObjective("spectral", sfreq=128.0))
        optimizer = torch.optim.AdamW(module.parameters(), lr=1e-4)
        best, losses = np.inf, []
        for step in range(repeats + 1):  # the first step warms up
            generator = torch.Generator().manual_seed(step)
            start = time.perf_counter()
            with precision_context(resolved, device):
                loss, _ = module(x, positions, mask, generator, step)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if step:
                best = min(best, time.perf_counter() - start)
            losses.append(float(loss))
        times[resolved] = best
        print(f"{resolved:<10} {best:8.3f} s/step   losses {np.round(losses, 4)}")
    if len(times) == 2:
        print(f"bfloat16 speed-up: {times['float32'] / times['bfloat16']:.2f}x "
              "(goal >= 3x)")  # fmt: skip


def embed_windows(model, windows, batch_size):
    """Mean-pooled embeddings (n_windows, D) of one recording's windows."""
    positions = torch.from_numpy(windows.positions)
    out = []
    with torch.no_grad():
        for start in range(0, len(windows.data), batch_size):
            x = torch.from_numpy(windows.data[start : start + batch_size])
            out.append(model.embed(x, positions))
    return torch.cat(out).numpy()


def load_subjects(root, subjects, contract):
    """Windows of each held-out subject's recording, and its group."""
    groups = read_participants(root)["group"]  # indexed by label, no "sub-"
    data = []
    for subject in subjects:
        (bids_path,) = find_recordings(root, subjects=subject, verbose=False)
        raw = read_recording(bids_path, verbose=False)
        windows = prepare(raw, contract, on_missing="drop", verbose=False)
        label = groups[subject.removeprefix("sub-")] == "Epilepsy"
        data.append((subject, label, windows))
    return data


def probe(embeddings, labels, folds, repeats):
    """Recording-level balanced accuracy and ROC AUC, mean and std over repeats."""
    y = np.asarray(labels, dtype=int)
    cv = RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=0)
    proba = np.zeros((repeats, len(y)))
    for k, (train, test) in enumerate(cv.split(np.zeros(len(y)), y)):
        x_train = np.concatenate([embeddings[i] for i in train])
        y_train = np.concatenate([np.full(len(embeddings[i]), y[i]) for i in train])
        clf = make_pipeline(
            StandardScaler(), LogisticRegression(C=1.0, max_iter=5000)
        ).fit(x_train, y_train)
        for i in test:
            proba[k // folds, i] = clf.predict_proba(embeddings[i])[:, 1].mean()
    bacc = [balanced_accuracy_score(y, p > 0.5) for p in proba]
    auc = [roc_auc_score(y, p) for p in proba]
    return np.mean(bacc), np.std(bacc), np.mean(auc), np.std(auc)


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    if args.step_timing:
        step_timing(args.batch_size, args.repeats)
        return
    pretrained = load_model(args.model).eval()
    torch.manual_seed(0)
    config = {k: v for k, v in pretrained.config.items() if k != "name"}
    random_model = create_model(pretrained.config["name"], **config).eval()
    subjects = pretrained.card["pretraining"]["holdout_subjects"]
    root = Path(args.data) / "guinea-bissau-bids"
    start = time.perf_counter()
    data = load_subjects(root, subjects, pretrained.contract)
    labels = [label for _, label, _ in data]
    n_windows = sum(len(w.data) for _, _, w in data)
    print(
        f"{len(data)} held-out subjects ({sum(labels)} epilepsy, "
        f"{len(labels) - sum(labels)} control), {n_windows} windows of "
        f"{pretrained.contract.window_s:g} s at {pretrained.contract.sfreq:g} Hz; "
        f"{args.repeats}x {args.folds}-fold subject-wise CV"
    )
    print(f"{'encoder':<28}{'balanced acc':>18}{'ROC AUC':>18}")
    results = {}
    for name, model in (
        ("pretrained " + args.model, pretrained),
        ("random init", random_model),
    ):
        embeddings = [embed_windows(model, w, args.batch_size) for _, _, w in data]
        bacc, bacc_sd, auc, auc_sd = probe(embeddings, labels, args.folds, args.repeats)
        results[name] = (bacc, auc)
        print(f"{name:<28}{bacc:>11.3f} ± {bacc_sd:.3f}{auc:>11.3f} ± {auc_sd:.3f}")
    (p_bacc, p_auc), (r_bacc, r_auc) = results.values()
    print(
        f"pretrained - random: balanced acc {p_bacc - r_bacc:+.3f}, "
        f"ROC AUC {p_auc - r_auc:+.3f}  ({time.perf_counter() - start:.0f} s)"
    )


if __name__ == "__main__":
    main()
