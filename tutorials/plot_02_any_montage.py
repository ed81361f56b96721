"""
.. _tut-any-montage:

==============================
One model for any montage
==============================

LuMamba does not care how many electrodes a recording has or in which order:
each channel is placed by its 3-D position, and learned queries summarise all
channels into a latent of fixed size. This tutorial runs the same model on a
14-channel consumer headset, the 19-channel clinical 10-20 system, the
22-channel TCP bipolar montage of the Temple University Hospital corpus and a
64-channel research cap, and shows what happens with channel names it does not
know.

The 14 channels are the example recording shipped with mne-eegfm. To keep this
tutorial offline, the 19- and 64-channel versions are **interpolated** from
those 14 electrodes with spherical splines, and the TCP montage is derived
from the 19-channel version, so all four show the same brain activity. With
``MNE_EEGFM_DATA`` pointing to the mne-eegfm test data, the 64-channel case
uses a real 64-channel recording (PhysioNet EEG Motor Movement/Imagery,
subject 3) instead.
"""

# %%
import os
import warnings
from importlib.resources import files
from pathlib import Path

import matplotlib.pyplot as plt
import mne
import numpy as np

from mne_eegfm import EEGFMEmbedder, get_positions

# The example is sampled at 128 Hz, below what the contract's 75-Hz low-pass
# needs; mne-eegfm says so every time. We have read it once: hide it here.
warnings.filterwarnings("ignore", message=".*too low for the contract's low-pass")

example = files("mne_eegfm") / "data" / "example" / "sub-024_task-restingstate_eeg.edf"
raw14 = mne.io.read_raw_edf(example, preload=True, verbose="error").crop(0, 30)
raw14.set_montage("colin27_1005")  # only for interpolating; the model uses names

# %%
# Build the other montages
# ------------------------
names19 = [
    "Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7", "C3", "Cz",
    "C4", "T8", "P7", "P3", "Pz", "P4", "P8", "O1", "O2",
]  # fmt: skip
template = mne.channels.make_standard_montage("colin27_1005")


def interpolated(raw, names):
    """The recording seen through electrodes ``names`` (spline interpolation)."""
    positions = template.get_positions()["ch_pos"]
    montage = mne.channels.make_dig_montage(
        {name: positions[name] for name in names}, coord_frame="head"
    )
    out = raw.copy().interpolate_to(montage, method="spline")
    out.set_montage(None)  # keep names only, as most clinical files do
    return out


raw19 = interpolated(raw14, names19)

# TCP bipolar: 22 derivations named as in TUH EDF files, old 10-20 names
# included (T3 = T7, T4 = T8, T5 = P7, T6 = P8; A1/A2 are the ear lobes).
raw21 = interpolated(raw14, names19 + ["A1", "A2"])
old = {"T7": "T3", "T8": "T4", "P7": "T5", "P8": "T6"}
raw21.rename_channels(lambda name: old.get(name, name).upper())
pairs = [
    "FP1-F7", "F7-T3", "T3-T5", "T5-O1", "FP2-F8", "F8-T4", "T4-T6", "T6-O2",
    "A1-T3", "T3-C3", "C3-CZ", "CZ-C4", "C4-T4", "T4-A2", "FP1-F3", "F3-C3",
    "C3-P3", "P3-O1", "FP2-F4", "F4-C4", "C4-P4", "P4-O2",
]  # fmt: skip
raw22 = mne.set_bipolar_reference(
    raw21,
    anode=[p.split("-")[0] for p in pairs],
    cathode=[p.split("-")[1] for p in pairs],
    ch_name=pairs,
    drop_refs=True,
    verbose=False,
)
raw22.pick(pairs)

data_root = os.environ.get("MNE_EEGFM_DATA")
eegbci = Path(data_root or "") / "formats" / "eegbci-S003" / "raw" / "S003R01.edf"
if data_root and eegbci.is_file():
    raw64 = mne.io.read_raw_edf(eegbci, preload=True, verbose="error").crop(0, 30)
    source64 = "real 64-channel recording (EEGBCI S003), names like 'Fc5.'"
else:
    names64 = mne.channels.make_standard_montage("biosemi64").ch_names
    names64 = [n for n in names64 if n in template.ch_names]
    raw64 = interpolated(raw14, names64)
    source64 = "interpolated from the 14 channels"

recordings = {
    "14-channel headset": raw14,
    "19-channel 10-20": raw19,
    "22-channel TCP bipolar": raw22,
    f"{len(raw64.ch_names)}-channel cap": raw64,
}
for title, raw in recordings.items():
    print(f"{title:24s} {raw.ch_names[:4]} ...")
print("64-channel data:", source64)

# %%
# Where the model places the electrodes
# -------------------------------------
# :func:`~mne_eegfm.get_positions` is what the estimators use: digitised
# positions when the file has them, otherwise a lookup by name after
# normalising clinical spellings (``EEG FP1-REF``, ``T3``, ``Fc5.``...). A
# bipolar derivation sits halfway between its two electrodes.
fig, axes = plt.subplots(1, 4, figsize=(12, 3.4), layout="constrained")
for ax, (title, raw) in zip(axes, recordings.items()):
    _, ch_names, pos = get_positions(raw.info, verbose=False)
    ax.add_patch(plt.Circle((0, 0.005), 0.095, fill=False, color="0.6"))
    ax.scatter(pos[:, 0], pos[:, 1], s=14, c="C3" if "bipolar" in title else "C0")
    ax.set(title=f"{title}\n{len(ch_names)} positions", aspect="equal")
    ax.set_axis_off()

# %%
# Same model, same embedding size
# -------------------------------
# One embedder handles all four; every window becomes a 384-number vector,
# whatever the montage.
embedder = EEGFMEmbedder()
embeddings = {title: embedder.transform(raw) for title, raw in recordings.items()}
for title, emb in embeddings.items():
    print(f"{title:24s} -> {emb.shape}")

# %%
# Because the four versions carry the same signals, their embeddings of the
# same window should be closer to each other than to other windows. The
# matrix below compares each window of the 14-channel recording with each
# window of the other montages (cosine similarity, centred per montage):


def centred(x):
    x = x - x.mean(axis=0)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


ref = centred(embeddings["14-channel headset"])
fig, axes = plt.subplots(1, 3, figsize=(11, 3.6), layout="constrained")
for ax, title in zip(axes, list(embeddings)[1:]):
    other = centred(embeddings[title])
    n = min(len(ref), len(other))
    sim = ref[:n] @ other[:n].T
    im = ax.imshow(sim, vmin=-1, vmax=1, cmap="RdBu_r")
    ax.set(title=f"14-ch vs {title}", xlabel="window", ylabel="window (14-ch)")
    print(
        f"{title}: mean similarity same window {np.mean(np.diag(sim)):.2f}, "
        f"other windows {np.mean(sim[~np.eye(n, dtype=bool)]):.2f}"
    )
fig.colorbar(im, ax=axes, shrink=0.8, label="cosine similarity")

# %%
# Channel names the model does not know
# -------------------------------------
# A channel must have a position. If its name is not a 10-05 electrode (after
# normalisation) and the file has no digitised position for it, the default is
# an error that names it:
raw_odd = raw19.copy().rename_channels({"Cz": "Vertex", "O2": "Ch 18"})
try:
    embedder.transform(raw_odd)
except ValueError as err:
    print(f"ValueError: {err}")

# %%
# Three ways out. Say what the channels are (best):
fixed = raw_odd.copy().rename_channels({"Vertex": "Cz", "Ch 18": "O2"})
print(embedder.transform(fixed).shape)

# %%
# or give them positions (a digitisation, or any montage that has them), or
# leave them out, with a warning (``on_missing="warn"``) or silently
# (``on_missing="drop"``):
dropping = EEGFMEmbedder(on_missing="warn")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    out = dropping.transform(raw_odd)
print(out.shape)
print([str(w.message)[:100] for w in caught if "No position" in str(w.message)])

# %%
# Non-EEG channels (EOG, ECG, EMG, stimulus, and EEG-typed channels whose
# names say otherwise, such as ``"ECG EKG"`` in clinical EDF files) are left
# out automatically and logged.
