"""Classification heads on top of an encoder output (B, S, D).

Names follow the published checkpoints: ``classifier.learned_agg`` /
``decoder_attn`` / ``decoder_ffn`` (query head), ``classifier.fc1`` /
``mamba_1`` / ``fc3`` (Mamba head) and ``classifier.fc1`` (linear head).
"""

import torch
import torch.nn.functional as F
from torch import nn

from .._docs import fill_doc
from .initial import on_device
from .mamba import Mamba
from .unifier import Mlp

HEADS = ("query", "mamba", "linear")


@fill_doc
class QueryHead(nn.Module):
    """One learned query attends over the sequence, then an MLP D -> 4D -> n.

    Fingerprint in a state dict: ``classifier.learned_agg``.

    Parameters
    ----------
    %(head_size)s
    num_heads : int
        Attention heads.
    dropout : float
        Dropout (training only).
    """

    #: A key only this head has, and its last weight (rows = outputs).
    marker = "learned_agg"
    last_weight = "decoder_ffn.fc2.weight"

    def __init__(self, embed_dim, n_outputs, num_heads=2, dropout=0.15):
        super().__init__()
        agg = torch.randn(1, 1, embed_dim, device="cpu") * 0.02
        self.learned_agg = nn.Parameter(on_device(agg))
        self.decoder_attn = nn.MultiheadAttention(
            embed_dim, num_heads, dropout=dropout, batch_first=True
        )
        self.decoder_ffn = Mlp(embed_dim, 4 * embed_dim, n_outputs, drop=dropout)

    def forward(self, latent):
        """Logits (B, n_outputs) from the encoder output (B, S, D)."""
        query = self.learned_agg.expand(latent.shape[0], -1, -1)
        pooled = self.decoder_attn(query, latent, latent, need_weights=False)[0]
        return self.decoder_ffn(pooled[:, 0])


@fill_doc
class MambaHead(nn.Module):
    """Linear D -> hidden -> GELU -> Mamba -> mean over time -> Linear.

    Parameters
    ----------
    %(head_size)s
    hidden : int
        Width of the head's Mamba layer.
    """

    marker = "mamba_1."
    last_weight = "fc3.weight"

    def __init__(self, embed_dim, n_outputs, hidden=256):
        super().__init__()
        self.fc1 = nn.Linear(embed_dim, hidden)
        self.mamba_1 = Mamba(hidden, d_state=16, d_conv=4, expand=2)
        self.fc3 = nn.Linear(hidden, n_outputs)

    def forward(self, latent):
        """Logits (B, n_outputs) from the encoder output (B, S, D)."""
        h = self.mamba_1(F.gelu(self.fc1(latent)))
        return self.fc3(h.mean(dim=1))


@fill_doc
class LinearHead(nn.Module):
    """Mean over time, then one Linear layer.

    Parameters
    ----------
    %(head_size)s
    """

    marker = None  # recognised by having fc1 and nothing else
    last_weight = "fc1.weight"

    def __init__(self, embed_dim, n_outputs):
        super().__init__()
        self.fc1 = nn.Linear(embed_dim, n_outputs)

    def forward(self, latent):
        """Logits (B, n_outputs) from the encoder output (B, S, D)."""
        return self.fc1(latent.mean(dim=1))


HEAD_CLASSES = {"query": QueryHead, "mamba": MambaHead, "linear": LinearHead}


def make_head(head, embed_dim, n_outputs):
    """Build a head by name ("query", "mamba" or "linear")."""
    if head not in HEAD_CLASSES:
        raise ValueError(f"head must be one of {HEADS}, got {head!r}")
    return HEAD_CLASSES[head](embed_dim, n_outputs)


def head_fingerprint(keys, prefix="classifier."):
    """Head type of a state dict from its keys, using each head's declared marker.

    Parameters
    ----------
    keys : iterable of str
        State-dict keys (without ``model.``/``module.`` prefixes).
    prefix : str
        Prefix of the head's keys.

    Returns
    -------
    head : str | None
        ``"query"``, ``"mamba"``, ``"linear"``, or ``None`` when no key starts
        with ``prefix``.
    last_weight : str | None
        Full key of the head's last weight (its first dimension is the number of
        outputs).
    """
    names = {key[len(prefix) :] for key in keys if key.startswith(prefix)}
    if not names:
        return None, None
    for head, cls in HEAD_CLASSES.items():
        if cls.marker is not None and any(n.startswith(cls.marker) for n in names):
            return head, prefix + cls.last_weight
    if {name.rsplit(".", 1)[0] for name in names} == {"fc1"}:
        return "linear", prefix + LinearHead.last_weight
    raise ValueError(
        "Unrecognised classifier layout in checkpoint: "
        + ", ".join(sorted(prefix + n for n in names))
    )
