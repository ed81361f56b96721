"""LuMamba: LUNA channel unification followed by bidirectional Mamba blocks."""

import torch
from torch import nn

from .._docs import fill_doc
from .decoder import add_outputs
from .frontend import PATCH_SIZE, ChannelUnifiedModel

# Key mapping: LuMamba's published checkpoints follow LUNA's key layout.
from .luna import CHECKPOINT_PREFIXES, DECODER_PREFIXES  # noqa: F401

SSMS = ("mamba", "mamba2")

# ---------------------------------------------------------------------------
# Declarations read by the factory and the checkpoint registry.

#: Configurations (name -> constructor arguments) built by ``create_model``.
CONFIGS = {
    "lumamba-tiny": {"num_queries": 6, "embed_dim": 64, "num_blocks": 2},
    "lumamba-base": {"num_queries": 8, "embed_dim": 64, "num_blocks": 6},
}
#: Published checkpoints (CC BY-ND 4.0, Hugging Face PulpBio/LuMamba). ``file``
#: is the path in the hub repository (not recorded: choose one there);
#: ``release_file`` the name of the file as published, to recognise it.
CITATION = (
    "Broustail D et al. LuMamba: Latent Unified Mamba for Electrode "
    "Topology-Invariant and Efficient EEG Modeling. arXiv:2603.19100"
)
PUBLISHED = tuple(
    {
        "name": f"lumamba-{variant}-tuh",
        "config": "lumamba-tiny",
        "hub_repo": "PulpBio/LuMamba",
        "file": None,
        "release_file": release_file,
        "contract": "tuh",
        "team": "LuMamba",
        "citation": CITATION,
        "description": f"Published LuMamba-Tiny encoder pretrained on TUEG "
        f"({objective}); topology-invariant, trained on TCP bipolar TUH data.",
    }
    for variant, objective, release_file in (
        (
            "recon",
            "masked reconstruction only",
            "LuMamba_ReconstructionOnly.safetensors",
        ),
        ("lejepa", "LeJEPA only", None),
        ("mixed", "reconstruction + LeJEPA, the paper's best", None),
    )
)


def make_ssm(ssm, d_model, d_state, d_conv, expand):
    """Build one Mamba ("mamba") or Mamba-2 ("mamba2") layer."""
    if ssm == "mamba":
        from .mamba import Mamba

        return Mamba(d_model, d_state=d_state, d_conv=d_conv, expand=expand)
    if ssm == "mamba2":
        from .mamba2 import Mamba2

        return Mamba2(d_model, d_state=d_state, d_conv=d_conv, expand=expand)
    raise ValueError(f"ssm must be one of {SSMS}, got {ssm!r}")


class BiMamba(nn.Module):
    """Forward Mamba plus time-reversed Mamba, summed ("add" strategy).

    Parameters
    ----------
    d_model : int
        Width.
    ssm : "mamba" | "mamba2"
        Layer type.
    d_state, d_conv, expand : int
        Layer hyperparameters.
    """

    def __init__(self, d_model, ssm="mamba", d_state=16, d_conv=4, expand=2):
        super().__init__()
        self.mamba_fwd = make_ssm(ssm, d_model, d_state, d_conv, expand)
        self.mamba_rev = make_ssm(ssm, d_model, d_state, d_conv, expand)

    def forward(self, x):
        """(B, L, D) -> (B, L, D)."""
        out = self.mamba_fwd(x)
        rev = self.mamba_rev(x, reverse=True)
        return out.add_(rev) if not torch.is_grad_enabled() else out + rev


@fill_doc
class LuMamba(ChannelUnifiedModel):
    """LuMamba encoder with a reconstruction decoder or a classification head.

    Parameters
    ----------
    %(unified_outputs)s
    num_queries : int
        Learned queries Q of the channel unification.
    embed_dim : int
        Token width E (model width D = Q * E).
    num_heads : int
        Heads of the channel cross-attention.
    num_blocks : int
        Bidirectional Mamba blocks.
    ssm : "mamba" | "mamba2"
        Layer type of the blocks.
    d_state, d_conv, expand : int
        Hyperparameters of each Mamba layer.
    %(unified_patching)s
    """

    def __init__(
        self,
        n_outputs=None,
        head=None,
        num_queries=6,
        embed_dim=64,
        num_heads=2,
        num_blocks=2,
        ssm="mamba",
        d_state=16,
        d_conv=4,
        expand=2,
        embedding="luna",
        patch_size=PATCH_SIZE,
        dropout=0.1,
    ):
        super().__init__(
            num_queries, embed_dim, num_heads, patch_size, embedding, dropout
        )
        width = self.embed_dim
        # Registration order = key order of the published checkpoints.
        add_outputs(
            self, n_outputs, head, embed_dim, num_queries, patch_size, num_heads
        )
        self.mamba_blocks = nn.ModuleList(
            BiMamba(width, ssm, d_state, d_conv, expand) for _ in range(num_blocks)
        )
        self.norm_layers = nn.ModuleList(nn.LayerNorm(width) for _ in range(num_blocks))

    @fill_doc
    def temporal_encode(self, unified):  # noqa: D417 (docdict)
        """Pre-norm residual bidirectional Mamba blocks, (B, S, D) -> (B, S, D).

        %(temporal_encode)s
        """
        x = unified
        for block, norm in zip(self.mamba_blocks, self.norm_layers):
            x = x + block(norm(x))
        return x
