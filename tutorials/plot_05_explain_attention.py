"""
.. _tut-explain:

===================================================
Where the model listens: channel-attention topomaps
===================================================

LuMamba's front end summarises the electrodes of every 156-ms patch with a few
learned *queries* that attend over the channels (cross-attention). The
attention weights say how much each query draws from each electrode; averaged
over time they are a map per query, which can be drawn on the scalp like any
other topography. They show what the model *reads*, which is a useful sanity
check (does it listen to the electrodes where the effect is expected?), not a
causal explanation of a prediction.

We use the example recording (eyes closed for 3 minutes, then open) and the
epilepsy-vs-control classifier shipped with mne-eegfm. This subject was part
of that classifier's training data, so its predictions here are in-sample and
say nothing about accuracy; the classifier is a research demonstration, not a
diagnostic device.
"""

# %%
import warnings
from importlib.resources import files

import matplotlib.pyplot as plt
import mne
import numpy as np
import torch

from mne_eegfm import EEGFMClassifier
from mne_eegfm.preprocessing import prepare

mne.set_log_level("error")
warnings.filterwarnings("ignore", message=".*too low for the contract's low-pass")

example = files("mne_eegfm") / "data" / "example" / "sub-024_task-restingstate_eeg.edf"
# Minutes 2 to 4: one minute with the eyes closed, one with the eyes open.
raw = mne.io.read_raw_edf(example, preload=True).crop(120, 240)
raw.set_montage("colin27_1005")  # positions for drawing topomaps
EYES_OPEN_AT = 60.0  # seconds into this excerpt

clf = EEGFMClassifier.load("lumamba-tiny-gb-epilepsy")
print(clf.model_.card["description"])

# %%
# Predictions, window by window
# -----------------------------
table = clf.predict_windows(raw)
positive = clf.classes_[-1]
fig, ax = plt.subplots(figsize=(7, 2.8), layout="constrained")
ax.plot(table.onset + table.duration / 2, table[f"proba_{positive}"], "o-", ms=3)
ax.axvline(EYES_OPEN_AT, color="k", ls="--", lw=1, label="eyes opened")
ax.set(xlabel="Time in the excerpt (s)", ylabel=f"P({positive})", ylim=(0, 1))
ax.set_title("In-sample predictions of the shipped classifier")
ax.legend()

# %%
# Attention of each query over the electrodes
# -------------------------------------------
# :meth:`channel_attention` returns, for each window, a
# ``(n_queries, n_channels)`` map averaged over attention heads and patches.
# The windows must be preprocessed with the model's contract, as the
# estimators do.
windows = prepare(raw, clf.contract_)
model = clf.model_.eval()
with torch.inference_mode():
    attention = model.channel_attention(
        torch.from_numpy(windows.data), torch.from_numpy(windows.positions)
    ).numpy()
print(attention.shape)  # (n_windows, n_queries, n_channels)
info = raw.copy().pick(windows.ch_names).info

# %%
# Each map sums to one over the 14 electrodes, so uniform attention would be
# 1/14 everywhere; a query that has specialised during pretraining listens
# mostly to a few regions.
mean_attention = attention.mean(axis=0)
n_queries = len(mean_attention)
fig, axes = plt.subplots(1, n_queries, figsize=(2.2 * n_queries, 2.6))
for q, ax in enumerate(np.atleast_1d(axes)):
    mne.viz.plot_topomap(
        mean_attention[q],
        info,
        axes=ax,
        show=False,
        cmap="viridis",
        vlim=(0, mean_attention.max()),
        contours=0,
    )
    ax.set_title(f"query {q + 1}")
fig.suptitle("Mean attention over the example recording")

# %%
# Does the attention move with the eyes?
# --------------------------------------
# The difference between eyes-closed and eyes-open windows, per query. Red:
# more attention with the eyes closed.
closed = windows.onsets + windows.data.shape[-1] / windows.sfreq <= EYES_OPEN_AT
difference = attention[closed].mean(0) - attention[~closed].mean(0)
limit = np.abs(difference).max()
fig, axes = plt.subplots(1, n_queries, figsize=(2.2 * n_queries, 2.6))
for q, ax in enumerate(np.atleast_1d(axes)):
    mne.viz.plot_topomap(
        difference[q], info, axes=ax, show=False, vlim=(-limit, limit), contours=0
    )
    ax.set_title(f"query {q + 1}")
fig.suptitle("Attention, eyes closed minus eyes open")

# %%
# The same maps appear in the HTML report of ``mne-eegfm predict --report``.
# They are averages of where the queries look; to ask which inputs change a
# prediction, perturb the input (e.g. drop or shuffle one channel at a time and
# compare ``predict_proba``) rather than read attention as importance.
