"""
.. _tut-long-recordings:

==============================================
Long recordings: a whole night in one pass
==============================================

Transformers compare every time step with every other, so their cost grows
with the square of the recording length and they are run on short windows.
LuMamba's temporal model is a selective state-space scan: its time and memory
grow linearly, so a whole night (8 hours = 184,320 patches) can go through the
encoder in a single pass, with context carried across the entire recording.

This tutorial measures that on this machine, on recordings of increasing
length, and shows the two ways mne-eegfm handles long files:

* **windows, streamed**: one routine,
  :func:`mne_eegfm.inference.run_model`, reads a chunk, applies the input
  contract, cuts windows, sends them to the model in batches and keeps only
  the outputs. :func:`mne_eegfm.embed`, :func:`mne_eegfm.predict`, the
  estimators (:class:`~mne_eegfm.EEGFMEmbedder`,
  :class:`~mne_eegfm.EEGFMClassifier` on :class:`~mne.io.Raw`) and every
  ``mne-eegfm`` command go through it, so memory stays bounded whatever the
  length of the file *and* the overlap of the windows;
* **one pass**: the encoder takes the whole recording as one sequence.

To stay quick, the executed example goes up to a few minutes of the example
recording repeated end to end (14 channels); the full-scale numbers
(24 hours, 22 channels) are on the :doc:`performance page </performance>`,
measured by ``benchmarks/scaling.py``.
"""

# %%
import resource
import time
import warnings
from importlib.resources import files

import matplotlib.pyplot as plt
import mne
import numpy as np
import torch

from mne_eegfm import embed, load_model
from mne_eegfm.preprocessing import iter_windows, prepare

warnings.filterwarnings("ignore", message=".*too low for the contract's low-pass")
torch.set_num_threads(2)

example = files("mne_eegfm") / "data" / "example" / "sub-024_task-restingstate_eeg.edf"
raw = mne.io.read_raw_edf(example, preload=True, verbose="error")
# A longer recording: the example repeated (labelled as such, not new data).
long_raw = mne.concatenate_raws([raw.copy() for _ in range(3)], verbose=False)
print(f"{long_raw.times[-1] / 60:.1f} minutes, {len(long_raw.ch_names)} channels")

model = load_model()  # the shipped encoder, with its input contract
contract = model.contract
print(contract)

# %%
# Streaming windows in bounded memory
# -----------------------------------
# :func:`~mne_eegfm.preprocessing.iter_windows` reads and preprocesses one
# chunk at a time (here 2 minutes; the default is 10), so a 24-hour file never
# sits in memory in float64.
n_windows = 0
for chunk in iter_windows(long_raw, contract, chunk_s=120.0, verbose=False):
    n_windows += len(chunk)
    print(f"chunk starting at {chunk.onsets[0]:6.1f} s: {chunk.data.shape}")
print(f"{n_windows} windows of {contract.window_s:g} s")

# %%
# The one streaming path, through the functional API
# --------------------------------------------------
# :func:`mne_eegfm.embed` (and :func:`mne_eegfm.predict` for a classifier)
# run those chunks through the model batch by batch. A chunk never holds more
# windows than a chunk without overlap would, so an overlap costs time,
# not memory. Windows overlapping ``BAD_`` annotations are left out, and the
# result says which and why.
long_raw.set_annotations(
    mne.Annotations([100.0], [4.0], ["BAD_movement"], orig_time=None)
)
result = embed(long_raw, overlap=0.5, verbose=False)
print(
    f"{result.n_windows} embeddings of size {result.embeddings.shape[1]}, "
    f"every {np.diff(result.onsets[:2])[0]:g} s; {result.n_skipped} windows left out"
)
print(result.skipped.head(3))
long_raw.set_annotations(None)

# %%
# One pass over the whole recording
# ---------------------------------
# :func:`~mne_eegfm.preprocessing.prepare` with a window as long as the
# recording gives one sequence; :meth:`encode` returns one latent vector per
# 40-sample patch (156 ms at 256 Hz). We time it, and record the growth of
# the process's peak memory, for increasing lengths.


def peak_rss_mb():
    # ru_maxrss is in kilobytes on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


minutes = [0.5, 1, 2, 4]
timings, peaks = [], []
for length in minutes:
    segment = long_raw.copy().crop(0, length * 60.0)
    whole = prepare(segment, contract, window_s=length * 60.0, verbose=False)
    x = torch.from_numpy(whole.data)  # (1, n_channels, n_samples)
    positions = torch.from_numpy(whole.positions)
    before = peak_rss_mb()
    start = time.perf_counter()
    with torch.inference_mode():
        latent = model.encode(x, positions)
    timings.append(time.perf_counter() - start)
    peaks.append(peak_rss_mb() - before)
    print(
        f"{length:4.1f} min: x {tuple(x.shape)} -> latent {tuple(latent.shape)} "
        f"in {timings[-1]:.2f} s"
    )

# %%
# Time grows linearly with length (the dashed line is a straight line through
# the origin fitted to the measurements), so we can read off what a night
# costs on this machine:
slope = np.dot(minutes, timings) / np.dot(minutes, minutes)
night = 8 * 60
fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), layout="constrained")
axes[0].plot(minutes, timings, "o-", label="measured")
axes[0].plot([0, minutes[-1]], [0, slope * minutes[-1]], "k--", label="linear fit")
axes[0].set(xlabel="Recording length (min)", ylabel="Encoder time (s)")
axes[0].legend()
axes[1].bar([str(m) for m in minutes], np.maximum(np.array(peaks), 0))
axes[1].set(xlabel="Recording length (min)", ylabel="Growth of peak RSS (MB)")
fig.suptitle(
    f"One pass, {len(long_raw.ch_names)} channels: about {slope * night:.0f} s "
    "for 8 hours at this rate"
)

# %%
# The peak-memory bars show only how much the *peak* of the process grew
# during each pass (a pass that fits in memory already reserved shows zero),
# so read them as an upper bound of the extra memory each length needed.
#
# What the latent looks like over time
# ------------------------------------
# The first principal component of the patch latents of the longest pass,
# smoothed over 5 s. The eyes-closed (first 3 minutes of every 290-s repeat)
# and eyes-open periods follow each other; the encoder saw them as one
# continuous sequence.
z = latent[0].numpy()
z = z - z.mean(0)
pc1 = z @ np.linalg.svd(z, full_matrices=False)[2][0]
kernel = np.ones(32) / 32  # 32 patches = 5 s
t = np.arange(len(pc1)) * model.patch_size / contract.sfreq / 60
fig, ax = plt.subplots(figsize=(8, 2.8), layout="constrained")
ax.plot(t, np.convolve(pc1, kernel, mode="same"), lw=1)
for repeat in range(3):
    start = repeat * raw.times[-1] / 60
    ax.axvspan(start, start + 3, color="C0", alpha=0.1, lw=0)
ax.set(xlabel="Time (min)", ylabel="Latent PC 1", title="Shaded: eyes closed")
