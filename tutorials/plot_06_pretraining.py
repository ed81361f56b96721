"""
.. _tut-pretraining:

========================================
Pretrain your own model, and resume it
========================================

A foundation model learns from unlabelled EEG. mne-eegfm pretrains LuMamba
with the objective of the LuMamba paper: masked-patch reconstruction (half of
the channel-by-patch cells are hidden and must be rebuilt), a term that makes
the channel-unification queries attend to different electrodes, and LeJEPA
(local and global temporal views of a window must have matching embeddings,
while SIGReg keeps the embeddings spread like a standard normal).

Runs are resumable: a checkpoint with the model, optimiser, learning-rate
schedule, random state and data position is written atomically every
``checkpoint_every`` steps, so a run that is killed continues exactly where
its last checkpoint left off.

This page runs a deliberately tiny job (a scaled-down model, the example
recording, 8 steps) so that it finishes in seconds; real
pretraining runs for thousands of steps on hours of EEG, usually from the
command line (see the end).
"""

# %%
import json
import tempfile
import warnings
from importlib.resources import files
from pathlib import Path

import matplotlib.pyplot as plt
import mne
import torch

from mne_eegfm import EEGFMEmbedder
from mne_eegfm.checkpoints import save_model
from mne_eegfm.models import create_model
from mne_eegfm.preprocessing import InputContract
from mne_eegfm.pretrain.data import WindowDataset, cache_recordings, find_sources
from mne_eegfm.pretrain.trainer import pretrain

mne.set_log_level("error")
warnings.filterwarnings("ignore", message=".*too low for the contract's low-pass")
workdir = Path(tempfile.mkdtemp(prefix="mne-eegfm-pretrain-"))

# %%
# Data: preprocessed once, cached on disk
# ---------------------------------------
# Any mix of files, folders and BIDS roots works; each recording goes through
# the input contract once and its windows are memory-mapped from the cache,
# so later epochs (and resumed runs) do not preprocess again.
example = files("mne_eegfm") / "data" / "example"
contract = InputContract()  # 256 Hz, 0.1-75 Hz, microvolts, 5-s windows
sources = find_sources([example])
recordings = cache_recordings(sources, contract, workdir / "cache")
dataset = WindowDataset(recordings)
print(f"{len(dataset)} windows from {len(recordings)} recording(s)")

# %%
# A first session
# ---------------
# Scaled down for this page: 4 queries of width 32 and one Mamba block
# (``create_model("lumamba-tiny")`` is the paper's size).
torch.manual_seed(0)
model = create_model("lumamba-tiny", num_queries=4, embed_dim=32, num_blocks=1)
run = workdir / "run"
first = pretrain(
    model,
    dataset,
    run,
    steps=4,
    batch_size=4,
    lr=1e-3,
    checkpoint_every=2,
    device="cpu",
    progress=False,
)
print(first)

# %%
# Resume
# ------
# Suppose the job was stopped. A new process builds the same architecture and
# asks for more steps with ``resume=True``: model, optimiser, schedule and data
# position come from the checkpoint, and the step counter continues.
torch.manual_seed(123)  # the new process's own random state does not matter
model = create_model("lumamba-tiny", num_queries=4, embed_dim=32, num_blocks=1)
second = pretrain(
    model,
    dataset,
    run,
    steps=8,
    batch_size=4,
    lr=1e-3,
    checkpoint_every=2,
    device="cpu",
    progress=False,
    resume=True,
)
print(second)

# %%
# The log (``log.jsonl``, one line per step) covers both sessions:
log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
fig, ax = plt.subplots(figsize=(6, 3), layout="constrained")
ax.plot([r["step"] for r in log], [r["loss"] for r in log])
ax.axvline(first["steps"], color="k", ls="--", label="resumed here")
ax.set(xlabel="Step", ylabel="Loss (mixed objective)", title="Two sessions, one run")
ax.legend()

# %%
# Use the result
# --------------
# Save the encoder with its input contract and a model card; the file then
# works everywhere a model name does, e.g. in :class:`~mne_eegfm.EEGFMEmbedder`.
path = save_model(
    model,
    workdir / "my-lumamba",
    contract=contract,
    card={"name": "my-lumamba", "licence": "CC BY 4.0 (same as the data)"},
)
embedder = EEGFMEmbedder(model=str(path))
raw = mne.io.read_raw_edf(example / "sub-024_task-restingstate_eeg.edf")
print(embedder.fit_transform(raw.crop(0, 30)).shape)

# %%
# From the command line
# ---------------------
# The same, at full scale, with a progress bar, a model card and resumption::
#
#     $ mne-eegfm pretrain /data/bids_a /data/recordings --config lumamba-tiny \
#           --out run/ --steps 20000
#     $ mne-eegfm pretrain /data/bids_a /data/recordings --config lumamba-tiny \
#           --out run/ --steps 20000 --resume      # after an interruption
#
# and on several processes or GPUs with PyTorch's launcher (DDP; SIGReg's
# statistics are reduced across processes)::
#
#     $ torchrun --nproc-per-node 4 -m mne_eegfm.cli pretrain /data/bids_a \
#           --config lumamba-tiny --out run/ --steps 20000
#
# To learn features that transfer to other devices and montages, mix every
# montage in every batch and show the channel unification random channel
# subsets (``--mixed-montages --max-channels 16 --min-channels 4
# --channel-dropout 0.1``), and add the band-power target
# (``--objective spectral``: each electrode's band power must be predicted
# from the latent and the electrode's position); ``--view-channels 0.5``
# gives each LeJEPA view its own half of the electrodes. ``--init NAME``
# continues pretraining a shipped or saved encoder on your own recordings
# instead of starting from random weights. ``--precision bfloat16``
# runs the step in bfloat16 with float32 weights. Recordings of the subjects
# that ``benchmarks/transfer.py`` evaluates on are refused with an error that
# names them; ``--exclude-heldout`` leaves them out.
