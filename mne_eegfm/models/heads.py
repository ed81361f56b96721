"""Classification heads on top of an encoder output (B, S, D).

Names follow the published checkpoints: ``classifier.learned_agg`` /
``decoder_attn`` / ``decoder_ffn`` (query head), ``classifier.fc1`` /
``mamba_1`` / ``fc3`` (Mamba head) and ``classifier.fc1`` (linear head).
"""

import torch
import torch.nn.functional as F
from torch import nn

from .frontend import Mlp
from .mamba import Mamba

HEADS = ("query", "mamba", "linear")


class QueryHead(nn.Module):
    """One learned query attends over the sequence, then an MLP D -> 4D -> n.

    Parameters
    ----------
    embed_dim : int
        Width D of the encoder output.
    n_outputs : int
        Number of outputs (classes).
    num_heads : int
        Attention heads.
    dropout : float
        Dropout (training only).
    """

    def __init__(self, embed_dim, n_outputs, num_heads=2, dropout=0.15):
        super().__init__()
        self.learned_agg = nn.Parameter(torch.randn(1, 1, embed_dim) * 0.02)
        self.decoder_attn = nn.MultiheadAttention(
            embed_dim, num_heads, dropout=dropout, batch_first=True
        )
        self.decoder_ffn = Mlp(embed_dim, 4 * embed_dim, n_outputs, drop=dropout)

    def forward(self, latent):
        """Logits (B, n_outputs) from the encoder output (B, S, D)."""
        query = self.learned_agg.expand(latent.shape[0], -1, -1)
        pooled = self.decoder_attn(query, latent, latent, need_weights=False)[0]
        return self.decoder_ffn(pooled[:, 0])


class MambaHead(nn.Module):
    """Linear D -> hidden -> GELU -> Mamba -> mean over time -> Linear.

    Parameters
    ----------
    embed_dim : int
        Width D of the encoder output.
    n_outputs : int
        Number of outputs (classes).
    hidden : int
        Width of the head's Mamba layer.
    """

    def __init__(self, embed_dim, n_outputs, hidden=256):
        super().__init__()
        self.fc1 = nn.Linear(embed_dim, hidden)
        self.mamba_1 = Mamba(hidden, d_state=16, d_conv=4, expand=2)
        self.fc3 = nn.Linear(hidden, n_outputs)

    def forward(self, latent):
        """Logits (B, n_outputs) from the encoder output (B, S, D)."""
        h = self.mamba_1(F.gelu(self.fc1(latent)))
        return self.fc3(h.mean(dim=1))


class LinearHead(nn.Module):
    """Mean over time, then one Linear layer.

    Parameters
    ----------
    embed_dim : int
        Width D of the encoder output.
    n_outputs : int
        Number of outputs (classes).
    """

    def __init__(self, embed_dim, n_outputs):
        super().__init__()
        self.fc1 = nn.Linear(embed_dim, n_outputs)

    def forward(self, latent):
        """Logits (B, n_outputs) from the encoder output (B, S, D)."""
        return self.fc1(latent.mean(dim=1))


def make_head(head, embed_dim, n_outputs):
    """Build a head by name ("query", "mamba" or "linear")."""
    if head == "query":
        return QueryHead(embed_dim, n_outputs)
    if head == "mamba":
        return MambaHead(embed_dim, n_outputs)
    if head == "linear":
        return LinearHead(embed_dim, n_outputs)
    raise ValueError(f"head must be one of {HEADS}, got {head!r}")
