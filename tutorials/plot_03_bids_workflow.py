"""
.. _tut-bids:

==========================================================
A clinical workflow on a BIDS dataset: Python and terminal
==========================================================

Clinical studies usually arrive as a `BIDS <https://bids.neuroimaging.io>`__
dataset: one folder per subject, labels in ``participants.tsv``. This tutorial
trains, cross-validates and applies a classifier over such a dataset twice,
once from Python and once with the ``mne-eegfm`` command line, and reads the
BIDS derivatives the command line writes.

**Data.** With ``MNE_EEGFM_DATA`` set to the mne-eegfm data folder, the
tutorial uses six subjects of the Guinea-Bissau epilepsy dataset (van Hees et
al., CC BY 4.0) and the label ``group`` (Epilepsy/Control); six subjects are
far too few for a meaningful result, the point is the workflow. Without it, it
builds a small BIDS dataset from the example recording shipped with
mne-eegfm: five 30-s segments of the one recording, stored as five
*pseudo-subjects* labelled by whether the eyes were closed or open. These are
not different people; they only make the mechanics run offline.
"""

# %%
import os
import shlex
import tempfile
import warnings
from importlib.resources import files
from pathlib import Path

import matplotlib.pyplot as plt
import mne
import numpy as np
import pandas as pd
from click.testing import CliRunner
from mne_bids import BIDSPath, find_matching_paths, read_raw_bids, write_raw_bids
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from mne_eegfm import EEGFMEmbedder
from mne_eegfm.cli import main as mne_eegfm_cli

mne.set_log_level("error")
warnings.filterwarnings("ignore", message=".*too low for the contract's low-pass")
warnings.filterwarnings("ignore", message="Unable to map the following column")
workdir = Path(tempfile.mkdtemp(prefix="mne-eegfm-bids-"))

data_root = os.environ.get("MNE_EEGFM_DATA")
gb_root = Path(data_root or "") / "guinea-bissau-bids"
if data_root and gb_root.is_dir():
    participants = pd.read_csv(gb_root / "participants.tsv", sep="\t")
    chosen = pd.concat(
        [participants[participants.group == g].head(3) for g in ("Epilepsy", "Control")]
    )
    subjects = [s.removeprefix("sub-") for s in chosen.participant_id]
    bids_root, target = gb_root, "group"
else:
    example = files("mne_eegfm") / "data" / "example"
    raw = mne.io.read_raw_edf(example / "sub-024_task-restingstate_eeg.edf")
    segments = {  # pseudo-subject: (start s, eyes)
        "01": (0, "closed"),
        "02": (60, "closed"),
        "03": (120, "closed"),
        "04": (182, "open"),
        "05": (236, "open"),
    }
    bids_root = workdir / "bids"
    for sub, (start, _) in segments.items():
        segment = raw.copy().crop(start, start + 30).load_data()
        path = BIDSPath(subject=sub, task="rest", datatype="eeg", root=bids_root)
        write_raw_bids(segment, path, allow_preload=True, format="EDF", overwrite=True)
    table = pd.read_csv(bids_root / "participants.tsv", sep="\t")
    table["eyes"] = [segments[s.removeprefix("sub-")][1] for s in table.participant_id]
    table.to_csv(bids_root / "participants.tsv", sep="\t", index=False)
    subjects, target = list(segments), "eyes"

print(f"BIDS root: {bids_root}\nsubjects: {subjects}, label column: {target!r}")

# %%
# From Python
# -----------
# mne-bids finds and reads the recordings (with channel types and any
# electrode positions from the sidecar files); the labels come from
# ``participants.tsv``.
paths = find_matching_paths(
    bids_root, subjects=subjects, datatypes="eeg", suffixes="eeg", extensions=".edf"
)
labels = pd.read_csv(bids_root / "participants.tsv", sep="\t").set_index(
    "participant_id"
)[target]
raws = [read_raw_bids(p) for p in paths]
y = np.array([labels[f"sub-{p.subject}"] for p in paths])
print(list(zip([p.basename for p in paths], y)))

# %%
# One embedding per window; a recording is described by the mean of its
# windows, and each recording is one sample of a subject-wise
# cross-validation (a subject's windows are never on both sides).
embedder = EEGFMEmbedder()
per_window = [embedder.transform(raw) for raw in raws]
X = np.stack([emb.mean(axis=0) for emb in per_window])
cv = StratifiedKFold(n_splits=2, shuffle=True, random_state=0)
proba = cross_val_predict(
    LogisticRegression(max_iter=1000), X, y, cv=cv, method="predict_proba"
)
classes = np.unique(y)
for path, label, p in zip(paths, y, proba):
    print(f"sub-{path.subject}: true {label:8s} P({classes[1]}) = {p[1]:.2f}")

# %%
# From the terminal
# -----------------
# The same steps with the command line. We call it here through its Python
# entry point so that this page can run it; in a terminal, type the lines
# that start with ``$``.


def mne_eegfm(command):
    print(f"$ mne-eegfm {command}")
    result = CliRunner().invoke(mne_eegfm_cli, shlex.split(command))
    print(result.output)
    if result.exit_code != 0:
        raise RuntimeError(f"mne-eegfm {command} failed") from result.exception


model = workdir / "eyes.eegfm"
subject_args = " ".join(f"--subject {s}" for s in subjects)
mne_eegfm(
    f"fit {bids_root} --target participants:{target} --cv 2 --max-epochs 10 "
    f"{subject_args} --out {model}"
)

# %%
# ``fit`` printed the subject-wise cross-validation, then trained on all
# subjects and saved the classifier (safetensors + a JSON model card). Now
# predict every recording. For a BIDS input the results are BIDS derivatives:
derivatives = workdir / "derivatives"
mne_eegfm(f"predict {bids_root} {subject_args} --model {model} --out {derivatives}")

# %%
# Reading the derivatives
# -----------------------
# ``summary.tsv`` has one row per recording; each recording has a
# ``*_desc-eegfm_predictions.tsv`` with one row per window and a JSON sidecar
# describing the columns.
for path in sorted(derivatives.rglob("*"))[:8]:
    print(path.relative_to(derivatives))
summary = pd.read_csv(derivatives / "summary.tsv", sep="\t")
print(summary.drop(columns=["source"]).to_string(index=False))

# %%
# The per-window probabilities over time, one line per recording:
fig, ax = plt.subplots(figsize=(7, 3.2), layout="constrained")
for tsv in sorted(derivatives.rglob("*_desc-eegfm_predictions.tsv")):
    windows = pd.read_csv(tsv, sep="\t")
    column = [c for c in windows.columns if c.startswith("proba_")][-1]
    ax.plot(windows.onset, windows[column], "o-", ms=3, label=tsv.name.split("_")[0])
ax.set(xlabel="Window onset (s)", ylabel=f"P({column.removeprefix('proba_')})")
ax.set_title("Per-window predictions read back from the derivatives")
ax.legend(fontsize="small", ncol=2)

# %%
# Re-running ``predict`` skips the recordings whose outputs are complete (use
# ``--overwrite`` to recompute), a recording that cannot be read is reported
# and the others continue, and ``--report`` adds an HTML report per recording
# with the prediction timeline and the channel-attention topomaps (see
# :ref:`tut-explain`).

# %%
# Events for seizure and abnormality tools
# ----------------------------------------
# Tools that score detections over time (``timescoring``, szCORE) read events,
# not windows: :func:`mne_eegfm.events.window_events` merges contiguous windows
# with the same predicted class into one event with their mean confidence,
# writes a chosen class as background (``bckg``) and lists every span the
# model did not see (BAD annotations, the tail shorter than a window) as
# ``not_evaluated``, never as background. The result has the szCORE columns;
# :func:`mne_eegfm.events.write_events` writes it as a TSV and
# :func:`mne_eegfm.events.to_annotations` turns it into :class:`mne.Annotations`.
from mne_eegfm import events  # noqa: E402

tsv = sorted(derivatives.rglob("*_desc-eegfm_predictions.tsv"))[0]
windows = pd.read_csv(tsv, sep="\t")
probas = windows[[c for c in windows.columns if c.startswith("proba_")]]
row = summary[summary.source.str.contains(tsv.name.split("_desc-")[0] + "_eeg.")]
table = events.window_events(
    windows.onset,
    windows.duration,
    windows.label,
    probas.max(axis=1),
    recording_duration=float(row.duration_s.iloc[0]),
    background=probas.columns[0].removeprefix("proba_"),
)
print(table.drop(columns=["dateTime"]).to_string(index=False))

# %%
# Benchmarking with MOABB
# -----------------------
# `MOABB <https://moabb.neurotechx.com>`__ compares pipelines across datasets.
# A MOABB user adds mne-eegfm as one more entry of the pipeline dict; the
# evaluation must pass :class:`mne.Epochs` (``return_epochs=True``), since the
# model reads the channel names and positions. Building the dict costs
# nothing; the evaluation itself (commented out here: it fits one model per
# fold) runs on any MOABB dataset, e.g. its offline ``FakeDataset``.
from sklearn.pipeline import make_pipeline  # noqa: E402

from mne_eegfm import EEGFMClassifier  # noqa: E402

pipelines = {
    "EEGFM linear probe": make_pipeline(EEGFMClassifier(mode="linear-probe")),
    "EEGFM fine-tuned": make_pipeline(EEGFMClassifier(mode="finetune")),
}
print(pipelines)
# from moabb.datasets import BNCI2014_001
# from moabb.evaluations import CrossSubjectEvaluation
# from moabb.paradigms import LeftRightImagery
#
# evaluation = CrossSubjectEvaluation(
#     paradigm=LeftRightImagery(), datasets=[BNCI2014_001()], return_epochs=True
# )
# results = evaluation.process(pipelines)
