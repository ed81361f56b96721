"""LUNA: channel unification followed by a rotary-position transformer."""

import torch
import torch.nn.functional as F
from torch import nn

from .._docs import fill_doc
from .decoder import add_outputs
from .frontend import PATCH_SIZE, ChannelUnifiedModel
from .initial import on_device

# ---------------------------------------------------------------------------
# Declarations read by the factory and the checkpoint registry.

#: Configurations (name -> constructor arguments) built by ``create_model``.
CONFIGS = {
    "luna-base": {"num_queries": 4, "embed_dim": 64, "depth": 8},
    "luna-large": {"num_queries": 6, "embed_dim": 96, "depth": 10},
    "luna-huge": {"num_queries": 8, "embed_dim": 128, "depth": 24},
}
#: Key mapping: prefixes stripped from published keys, and the pretraining-only
#: parts a task model drops.
CHECKPOINT_PREFIXES = ("model.", "module.")
DECODER_PREFIXES = ("decoder_head.", "channel_emb.")
CITATION = (
    "Doner B et al. LUNA: Efficient and Topology-Agnostic Foundation Model for "
    "EEG Signal Analysis. arXiv:2510.22257"
)
#: Published checkpoints (CC BY-ND 4.0, Hugging Face PulpBio/LUNA).
PUBLISHED = tuple(
    {
        "name": f"luna-{size}",
        "config": f"luna-{size}",
        "hub_repo": "PulpBio/LUNA",
        "file": f"LUNA_{size}.safetensors",
        "release_file": f"LUNA_{size}.safetensors",
        "contract": "tuh",
        "team": "LUNA",
        "citation": CITATION,
        "source": "PulpBio/LUNA (Hugging Face, formerly thorir/LUNA), "
        "pulp-bio/BioFoundation",
        "description": f"Published LUNA-{size.capitalize()} encoder pretrained on "
        "TUEG and Siena; topology-invariant.",
    }
    for size in ("base", "large", "huge")
)


class RotaryEmbedding(nn.Module):
    """Rotary position embedding on interleaved pairs (``rotary_emb.freqs``).

    Parameters
    ----------
    dim : int
        Head width (even).
    theta : float
        Base of the frequencies ``theta ** (-2i / dim)``.
    """

    def __init__(self, dim, theta=10000.0):
        super().__init__()
        steps = torch.arange(0, dim, 2, device="cpu")[: dim // 2].float()
        freqs = on_device(1.0 / theta ** (steps / dim))
        self.freqs = nn.Parameter(freqs, requires_grad=False)

    def forward(self, x):
        """Rotate (B, H, L, dim) by position along L."""
        pos = torch.arange(x.shape[-2], device=x.device, dtype=self.freqs.dtype)
        angles = torch.outer(pos, self.freqs).repeat_interleave(2, dim=-1)
        pairs = x.unflatten(-1, (-1, 2))
        rotated = torch.stack([-pairs[..., 1], pairs[..., 0]], dim=-1).flatten(-2)
        return x * angles.cos().to(x.dtype) + rotated * angles.sin().to(x.dtype)


@fill_doc
class RotaryAttention(nn.Module):
    """Multi-head self-attention with rotary queries and keys.

    Parameters
    ----------
    %(attention_size)s
    """

    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.rotary_emb = RotaryEmbedding(dim // num_heads)
        self.qkv_proj = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        """(B, L, D) -> (B, L, D)."""
        n_batch, length, dim = x.shape
        qkv = self.qkv_proj(x).view(n_batch, length, 3, self.num_heads, -1)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        q, k = self.rotary_emb(q), self.rotary_emb(k)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(n_batch, length, dim))


class BlockMlp(nn.Module):
    """fc1 -> GELU -> LayerNorm -> fc2 (registered as fc1, fc2, norm)."""

    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.norm = nn.LayerNorm(hidden)

    def forward(self, x):
        """(..., dim) -> (..., dim)."""
        return self.fc2(self.norm(F.gelu(self.fc1(x))))


@fill_doc
class RotaryBlock(nn.Module):
    """Pre-norm transformer block with rotary attention.

    Parameters
    ----------
    %(attention_size)s
    mlp_ratio : float
        Hidden width of the MLP relative to ``dim``.
    """

    def __init__(self, dim, num_heads, mlp_ratio=4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = RotaryAttention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = BlockMlp(dim, int(dim * mlp_ratio))

    def forward(self, x):
        """(B, L, D) -> (B, L, D)."""
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


@fill_doc
class LUNA(ChannelUnifiedModel):
    """LUNA encoder with a reconstruction decoder or a classification head.

    Parameters
    ----------
    %(unified_outputs)s
    num_queries : int
        Learned queries Q.
    embed_dim : int
        Token width E (model width D = Q * E).
    num_heads : int
        Heads of the channel cross-attention (the transformer has
        ``num_heads * num_queries``).
    depth : int
        Transformer blocks.
    mlp_ratio : float
        MLP width of the blocks relative to D.
    %(unified_patching)s
    """

    def __init__(
        self,
        n_outputs=None,
        head=None,
        num_queries=4,
        embed_dim=64,
        num_heads=2,
        depth=8,
        mlp_ratio=4.0,
        embedding="luna",
        patch_size=PATCH_SIZE,
        dropout=0.1,
    ):
        super().__init__(
            num_queries, embed_dim, num_heads, patch_size, embedding, dropout
        )
        width = self.embed_dim
        self.blocks = nn.ModuleList(
            RotaryBlock(width, num_heads * num_queries, mlp_ratio) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(width)
        add_outputs(
            self, n_outputs, head, embed_dim, num_queries, patch_size, num_heads
        )

    @fill_doc
    def temporal_encode(self, unified):  # noqa: D417 (docdict)
        """Rotary transformer blocks and final norm, (B, S, D) -> (B, S, D).

        %(temporal_encode)s
        """
        x = unified
        for block in self.blocks:
            x = block(x)
        return self.norm(x)
