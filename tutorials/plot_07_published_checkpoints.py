"""
.. _tut-published:

=================================================
Load the published LuMamba and LUNA checkpoints
=================================================

The authors of LuMamba, LUNA and FEMBA published weights pretrained on more
than 21,000 hours of clinical EEG (Temple University Hospital corpus) on
Hugging Face (``PulpBio/LuMamba``, ``PulpBio/LUNA``, ``PulpBio/FEMBA``).
mne-eegfm's architectures have exactly their parameter names and shapes, so
these files load as they are.

**Licence.** The published weights are licensed CC BY-ND 4.0: you may use and
share the *unmodified* files with attribution; fine-tuned, quantised or
converted copies may be used internally but not redistributed. mne-eegfm
reads the file you downloaded, renames keys in memory only and never writes a
converted copy.

**Offline.** This page cannot download anything, so it builds
**stand-in files**: state dicts with exactly the published key names (including
the ``model.`` prefix of the released files) filled with random numbers. They
exercise the same code path as the real files and give meaningless
embeddings. To run it on the real weights, download them and point the
environment variables ``MNE_EEGFM_LUMAMBA_WEIGHTS`` and
``MNE_EEGFM_LUNA_WEIGHTS`` to the files.
"""

# %%
import os
import tempfile
import warnings
from importlib.resources import files
from pathlib import Path

import mne
import pandas as pd
import torch
from safetensors.torch import save_file

from mne_eegfm import EEGFMEmbedder, list_models, load_model
from mne_eegfm.models import create_model
from mne_eegfm.registry import resolve

mne.set_log_level("warning")
warnings.filterwarnings("ignore", message=".*too low for the contract's low-pass")
workdir = Path(tempfile.mkdtemp(prefix="mne-eegfm-published-"))

# %%
# What the registry knows
# -----------------------
# Each entry records the architecture, the input contract the weights were
# trained with (for the published ones: 256 Hz, 0.1-75 Hz, microvolts, 5-s
# windows), the labels of task heads, the licence and where the file lives.
# ``available`` says whether the weights are on this machine.
table = pd.DataFrame(list_models())
columns = ["name", "arch", "params", "licence", "available"]
print(table[columns].to_string(index=False))

# %%
# A stand-in for the published LuMamba file
# -----------------------------------------
# The released LuMamba checkpoints hold the encoder, the reconstruction
# decoder and a channel-name embedding, every key prefixed with ``model.``.


def stand_in(arch, fname):
    """Random weights with the published layout (``model.`` + parameter name)."""
    torch.manual_seed(0)
    state = create_model(arch).state_dict()
    save_file({f"model.{k}": v.contiguous() for k, v in state.items()}, fname)
    return fname


lumamba_file = os.environ.get("MNE_EEGFM_LUMAMBA_WEIGHTS") or stand_in(
    "lumamba-tiny", workdir / "LuMamba-stand-in.safetensors"
)
print(f"LuMamba weights: {lumamba_file}")

# %%
# Load it by registry name plus the file: the ``model.`` prefix is stripped,
# every key is matched (a missing or unexpected key is an error that lists
# them by name, never a silent partial load), and the model carries its input
# contract and a model card with the attribution.
model = load_model("lumamba-recon-tuh", weights=lumamba_file)
print(model.contract)
print(model.card["licence"], "-", model.card["attribution"][:120], "...")

# %%
# A downloaded file on its own
# ----------------------------
# A file from a release, without any sidecar, also loads by its path: the
# architecture and head are inferred from its keys and shapes, and a file
# name the registry knows gets that entry's contract and card. What a spec
# names is what :func:`mne_eegfm.registry.resolve` returns:
release_file = workdir / "LuMamba_ReconstructionOnly.safetensors"
release_file.write_bytes(Path(lumamba_file).read_bytes())
found = resolve(release_file)
print(found.kind, found.name, found.arch)
bare = load_model(release_file)
print(bare.card.name, bare.card.weights_file, bare.card.weights_sha256[:12])

# %%
# The estimators take the same two arguments; everything else (positions,
# resampling, filtering, windows) is as with the shipped model:
example = files("mne_eegfm") / "data" / "example" / "sub-024_task-restingstate_eeg.edf"
raw = mne.io.read_raw_edf(example).crop(0, 30)
embedder = EEGFMEmbedder(model="lumamba-recon-tuh", weights=lumamba_file)
print(embedder.fit_transform(raw).shape)

# %%
# For a classification task, ask for a head: the encoder weights come from the
# file, the new head starts from random values and is what
# :class:`~mne_eegfm.EEGFMClassifier` trains (``mode="linear-probe"`` keeps the
# published encoder frozen, ``"finetune"`` adapts it too; a fine-tuned copy of
# CC BY-ND weights is for your own use only).
classifier_model = load_model("lumamba-recon-tuh", weights=lumamba_file, n_outputs=2)
print(type(classifier_model).__name__, classifier_model.config["head"])

# %%
# LUNA
# ----
# The LUNA checkpoints (base, large, huge) work the same way, with
# ``LUNA_base.safetensors`` and friends from ``PulpBio/LUNA``:
luna_file = os.environ.get("MNE_EEGFM_LUNA_WEIGHTS") or stand_in(
    "luna-base", workdir / "LUNA_base-stand-in.safetensors"
)
luna = load_model("luna-base", weights=luna_file)
n_params = sum(p.numel() for p in luna.parameters())
print(f"LUNA-base: {n_params / 1e6:.2f} M parameters, embedding size {luna.embed_dim}")

# %%
# A file that does not match
# --------------------------
# Loading the LUNA file as LuMamba fails, listing what does not match rather
# than loading what it can:
try:
    load_model("lumamba-recon-tuh", weights=luna_file)
except ValueError as err:
    print(f"ValueError: {str(err)[:400]} ...")

# %%
# Getting the real files
# ----------------------
# Download them in a browser or with ``huggingface_hub`` (``pip install
# "mne-eegfm[hub]"``), then::
#
#     export MNE_EEGFM_LUMAMBA_WEIGHTS=/path/to/LuMamba_checkpoint.safetensors
#
# or pass ``local_files_only=False`` to :func:`~mne_eegfm.load_model` to let
# it download registry files that name one (nothing touches the network
# otherwise). Please cite the papers listed on the :doc:`models page
# </models>` when you use them.
