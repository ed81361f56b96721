"""FEMBA: fixed 22-channel bipolar EEG encoder with post-norm bidirectional Mamba."""

import torch
import torch.nn.functional as F
from torch import nn

from .._docs import fill_doc
from .heads import make_head
from .lumamba import BiMamba

N_CHANNELS = 22

# ---------------------------------------------------------------------------
# Declarations read by the factory and the checkpoint registry.

#: Configurations (name -> constructor arguments) built by ``create_model``.
CONFIGS = {
    "femba-tiny": {"embed_dim": 35, "num_blocks": 2},
    "femba-base": {"embed_dim": 35, "num_blocks": 12},
    "femba-large": {"embed_dim": 79, "num_blocks": 4},
}
#: Key mapping: prefixes stripped from published keys, and the pretraining-only
#: part a task model drops.
CHECKPOINT_PREFIXES = ("model.", "module.")
DECODER_PREFIXES = ("decoder.",)
CITATION = (
    "Tegon A, Ingolfsson TM, Wang X, Benini L, Li Y. FEMBA: Efficient and "
    "Scalable EEG Analysis with a Bidirectional Mamba Foundation Model. "
    "arXiv:2502.06438"
)
_TASKS = {
    "tuab": (
        ["normal", "abnormal"],
        "abnormal EEG detection (TUAB)",
        ("base", "large"),
    ),
    "tuar": (None, "artifact detection (TUAR)", ("tiny", "base", "large")),
    "tusl": (None, "slowing and seizure detection (TUSL)", ("tiny", "base", "large")),
}
#: Published fine-tuned checkpoints (CC BY-ND 4.0, Hugging Face PulpBio/FEMBA).
PUBLISHED = tuple(
    {
        "name": f"femba-{size}-{task}",
        "config": f"femba-{size}",
        "hub_repo": "PulpBio/FEMBA",
        "file": f"{task.upper()}/FEMBA_{size}.safetensors",
        "release_file": None,
        "contract": "tcp",
        "team": "FEMBA",
        "citation": CITATION,
        "labels": labels,
        "head": "mamba",
        "description": f"Published FEMBA-{size.capitalize()} fine-tuned for {what}; "
        "fixed 22-channel TCP bipolar montage.",
    }
    for task, (labels, what, sizes) in _TASKS.items()
    for size in sizes
)


class FEMBA(nn.Module):
    """FEMBA encoder (22-channel TCP bipolar montage in the standard order).

    A Conv2d with kernel = stride = (2, 16) turns the (22, T) window into
    (11 * E)-wide tokens, one per 16 samples; a learned positional embedding is
    added and post-norm bidirectional Mamba blocks follow:
    ``x = LayerNorm(x + BiMamba(x))``.

    Parameters
    ----------
    n_outputs : int | None
        Outputs of the classification head; None builds the pretraining layout
        (a linear decoder back to the 2 x 16 rectangles).
    head : "query" | "mamba" | "linear" | None
        Head type (default "mamba", FEMBA's own head, when ``n_outputs`` is given).
    embed_dim : int
        Channels E of the patch convolution (model width 11 * E).
    num_blocks : int
        Bidirectional Mamba blocks.
    expand : int
        Mamba expansion factor.
    n_times : int
        Window length the positional embedding is learned for (other lengths,
        multiples of 16, interpolate it).
    """

    patch_shape = (2, 16)

    def __init__(
        self,
        n_outputs=None,
        head=None,
        embed_dim=35,
        num_blocks=2,
        expand=4,
        n_times=1280,
    ):
        super().__init__()
        rows, width = self.patch_shape
        n_rows = N_CHANNELS // rows
        self.patch_size = width
        self.num_queries = 1
        self.embed_dim = n_rows * embed_dim
        self.patch_embed = nn.Conv2d(1, embed_dim, self.patch_shape, self.patch_shape)
        self.pos_embed = nn.Parameter(torch.zeros(1, n_times // width, self.embed_dim))
        nn.init.normal_(self.pos_embed, std=0.02)
        self.mamba_blocks = nn.ModuleList(
            BiMamba(self.embed_dim, "mamba", 16, 4, expand) for _ in range(num_blocks)
        )
        self.norm_layers = nn.ModuleList(
            nn.LayerNorm(self.embed_dim) for _ in range(num_blocks)
        )
        self.decoder = self.classifier = None
        if n_outputs is None:
            self.decoder = nn.Linear(self.embed_dim, N_CHANNELS * width)
        else:
            self.classifier = make_head(head or "mamba", self.embed_dim, n_outputs)

    def _check(self, x):
        if x.ndim != 3 or x.shape[1] != N_CHANNELS:
            raise ValueError(
                f"FEMBA needs x of shape (B, {N_CHANNELS}, T) in the TCP bipolar "
                f"order, got {tuple(x.shape)}"
            )
        if x.shape[2] == 0 or x.shape[2] % self.patch_size:
            raise ValueError(
                f"T={x.shape[2]} samples is not a positive multiple of "
                f"{self.patch_size}"
            )

    def _pos_embed(self, n_tokens):
        pos = self.pos_embed
        if pos.shape[1] == n_tokens:
            return pos
        return F.interpolate(
            pos.transpose(1, 2), size=n_tokens, mode="linear", align_corners=False
        ).transpose(1, 2)

    @fill_doc
    def encode(self, x, positions=None, channel_mask=None):  # noqa: D417 (docdict)
        """Encoder output (B, T/16, 11*E); ``positions`` and ``channel_mask`` unused.

        Parameters
        ----------
        %(femba_input)s

        Returns
        -------
        latent : torch.Tensor, shape (B, T / 16, D)
            One token of width D = 11 * E per 16 samples.
        """
        self._check(x)
        if channel_mask is not None and not bool(torch.as_tensor(channel_mask).all()):
            raise ValueError(
                "FEMBA takes its 22 fixed channels; padding is not allowed"
            )
        h = self.patch_embed(x[:, None])  # (B, E, 11, S)
        h = h.flatten(1, 2).transpose(1, 2)  # (B, S, E*11)
        h = h + self._pos_embed(h.shape[1])
        for block, norm in zip(self.mamba_blocks, self.norm_layers):
            h = norm(h + block(h))
        return h

    @fill_doc
    def embed(self, x, positions=None, channel_mask=None):  # noqa: D417 (docdict)
        """Pooled embedding (B, D).

        Parameters
        ----------
        %(femba_input)s

        Returns
        -------
        embedding : torch.Tensor, shape (B, D)
            The encoder output averaged over tokens.
        """
        return self.encode(x, positions, channel_mask).mean(dim=1)

    @fill_doc
    def forward(self, x, positions=None, channel_mask=None):  # noqa: D417 (docdict)
        """Logits (B, n_outputs).

        Parameters
        ----------
        %(femba_input)s

        Returns
        -------
        logits : torch.Tensor, shape (B, n_outputs)
            Output of the classification head.
        """
        if self.classifier is None:
            raise ValueError("this model has no classification head; pass n_outputs")
        return self.classifier(self.encode(x, positions, channel_mask))

    @fill_doc
    def channel_attention(self, x, positions=None, channel_mask=None):  # noqa: D417 (docdict)
        """FEMBA has no channel attention: always raises.

        Parameters
        ----------
        %(femba_input)s

        Raises
        ------
        ValueError
            Always: FEMBA has no channel-unification attention.
        """
        raise ValueError("FEMBA has no channel-unification attention")

    def pretrain_forward(
        self, x, positions=None, patch_mask=None, channel_mask=None, jitter=0.0
    ):
        """Reconstruct x from a masked copy.

        Parameters
        ----------
        x : torch.Tensor, shape (B, 22, T)
            Normalised signals.
        positions : None
            Unused.
        patch_mask : torch.Tensor | None, shape (B, 11, T / 16)
            True where a 2 x 16 rectangle is zeroed before encoding.
        channel_mask : None
            Unused (all 22 channels are real).
        jitter : float
            Unused.

        Returns
        -------
        out : dict
            ``recon`` (B, 22, T), ``attention`` None, ``latent`` (B, T/16, D).
        """
        if self.decoder is None:
            raise ValueError("pretrain_forward needs the decoder; use n_outputs=None")
        self._check(x)
        rows, width = self.patch_shape
        if patch_mask is not None:
            keep = ~torch.as_tensor(patch_mask, device=x.device).bool()
            keep = keep.repeat_interleave(rows, 1).repeat_interleave(width, 2)
            x = x * keep
        latent = self.encode(x)
        out = self.decoder(latent)  # (B, S, 22 * 16)
        n_batch, n_tok = out.shape[:2]
        out = out.view(n_batch, n_tok, N_CHANNELS, width).permute(0, 2, 1, 3)
        recon = out.reshape(n_batch, N_CHANNELS, n_tok * width)
        return {"recon": recon, "attention": None, "latent": latent}
