"""LUNA front end: patch embedding, electrode-position encoding, channel unification.

Parameter names follow the published LUNA/LuMamba checkpoints. The maths is that of
the reference implementation, rewritten for speed on CPUs:

- the temporal convolutions of a patch are small linear maps, applied as dense
  matrices to all tokens at once (``tokens @ W``);
- the discrete Fourier transform of a 40-sample patch is a matrix product;
- the channel cross-attention folds the key projection into the (fixed) queries
  and the value projection after the attention average, so the per-electrode
  work is one LayerNorm and one small matrix product;
- everything after the patch GroupNorm statistics runs in chunks of patches,
  which bounds memory for recordings of any length.

Input checks and electrode-position encoding are in :mod:`.positions`, the
channel cross-attention in :mod:`.unifier`.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from .._docs import fill_doc
from .positions import PATCH_SIZE, check_inputs, nerf_encoding, normalize_positions
from .precision import float32_region
from .unifier import CrossAttentionUnifier, Mlp


def _dense_conv_matrix(conv, in_channels, length):
    """The (in_channels*length) -> (out*L_out) matrix of a bias-free Conv2d (1, k).

    Rows and columns are ordered (position, channel).
    """
    n_in = in_channels * length
    basis = torch.eye(n_in, dtype=conv.weight.dtype, device=conv.weight.device)
    basis = basis.view(n_in, length, in_channels).permute(0, 2, 1)[:, :, None, :]
    out = F.conv2d(basis, conv.weight, None, conv.stride, conv.padding)
    return out[:, :, 0, :].transpose(1, 2).reshape(n_in, -1)


class PatchEmbedding(nn.Module):
    """LUNA temporal patch embedding (``patch_embed.proj_in.{0..8}``).

    Conv2d(1, E/4, (1, 19), stride 10) -> GroupNorm(4) -> GELU -> twice
    [Conv2d(E/4, E/4, (1, 3)) -> GroupNorm(4) -> GELU], flattened (position,
    channel). The GroupNorm statistics are taken, as in the reference, over all
    real tokens of a sample.

    Parameters
    ----------
    embed_dim : int
        Token width E.
    patch_size : int
        Samples per patch.
    """

    def __init__(self, embed_dim=64, patch_size=PATCH_SIZE):
        super().__init__()
        width, half = embed_dim // 4, patch_size // 2
        self.patch_size = patch_size
        self.proj_in = nn.Sequential(
            nn.Conv2d(1, width, (1, half - 1), (1, half // 2), (0, half // 2 - 1)),
            nn.GroupNorm(4, width),
            nn.GELU(),
            nn.Conv2d(width, width, (1, 3), padding=(0, 1)),
            nn.GroupNorm(4, width),
            nn.GELU(),
            nn.Conv2d(width, width, (1, 3), padding=(0, 1)),
            nn.GroupNorm(4, width),
            nn.GELU(),
        )

    def dense_weights(self):
        """Dense matrices and biases of the three convolutions (float32)."""
        with float32_region(self.proj_in[0].weight):
            return self._dense_weights()

    def _dense_weights(self):
        convs = [self.proj_in[i] for i in (0, 3, 6)]
        width = convs[0].out_channels
        mats = [_dense_conv_matrix(convs[0], 1, self.patch_size)]
        n_pos = mats[0].shape[1] // width
        mats += [_dense_conv_matrix(c, width, n_pos) for c in convs[1:]]
        biases = [c.bias.repeat(n_pos) for c in convs]
        return mats, biases

    def forward(self, x, parts, channel_mask=None):
        """Embed the patches of ``x``, chunk by chunk.

        Parameters
        ----------
        x : torch.Tensor, shape (B, C, T)
            Signals.
        parts : list of slice
            Consecutive ranges of patches covering the recording.
        channel_mask : torch.Tensor | None, shape (B, C)
            Real channels (padding is excluded from the statistics).

        Returns
        -------
        out : list of torch.Tensor, shape (B, s, C, E)
            One tensor per range of patches.
        """
        mats, biases = self.dense_weights()
        norms = [self.proj_in[i] for i in (1, 4, 7)]
        outs = [patch_tokens(x, part, self.patch_size) for part in parts]
        affine = None
        # Each layer's GroupNorm needs statistics over the whole recording: one
        # pass per layer over small chunks (no large temporaries).
        for mat, bias, norm in zip(mats, biases, norms):
            stats = GroupStats(norm, bias)
            for i, h in enumerate(outs):
                if affine is not None:
                    h = _affine_gelu(h, *affine)
                outs[i] = torch.matmul(h, mat)  # bias folded into the affine map
                stats.add(outs[i], channel_mask)
            affine = stats.affine()
        n_batch, n_chan = x.shape[:2]
        return [
            _affine_gelu(h, *affine).view(n_batch, -1, n_chan, h.shape[-1])
            for h in outs
        ]


def patch_tokens(x, part, patch_size):
    """Patches ``part`` of x (B, C, T) as tokens (B, s, C, P), patch-major."""
    n_batch, n_chan = x.shape[:2]
    chunk = x[:, :, part.start * patch_size : part.stop * patch_size]
    chunk = chunk.reshape(n_batch, n_chan, -1, patch_size).transpose(1, 2)
    return chunk.contiguous()


def _affine_gelu(h, scale, shift):
    """``gelu(h * scale + shift)``, in place at inference."""
    if torch.is_grad_enabled():
        return F.gelu(torch.addcmul(shift, h, scale))
    return torch.ops.aten.gelu_(h.mul_(scale).add_(shift))


class GroupStats:
    """Accumulate GroupNorm statistics of ``h + bias`` over chunks of tokens.

    Statistics are per sample over (tokens, positions, channels of a group);
    columns are ordered (position, channel). They come from column sums and
    sums of squares, combined in float64, rather than from strided reductions.

    Parameters
    ----------
    norm : torch.nn.GroupNorm
        The GroupNorm (groups, affine parameters, eps).
    bias : torch.Tensor, shape (L*c,)
        Bias added to the chunks before normalisation.
    """

    def __init__(self, norm, bias):
        self.norm, self.bias = norm, bias.double()
        self.n_tok = self.col_sum = self.col_sq = None

    def add(self, h, channel_mask=None):
        """Add a chunk (B, s, C, L*c); padded channels are left out."""
        with float32_region(h):
            self._add(h.float(), channel_mask)

    def _add(self, h, channel_mask):
        flat = h.flatten(1, 2)
        if channel_mask is None:
            n_tok = torch.full((h.shape[0], 1), h.shape[1] * h.shape[2])
            col_sum = flat.sum(dim=1)
            col_sq = torch.linalg.vecdot(flat, flat, dim=1)
        else:
            w = channel_mask.to(h.dtype)[:, None, :].expand(-1, h.shape[1], -1)
            w = w.reshape(h.shape[0], 1, -1)
            n_tok = w.sum(dim=2)
            col_sum = torch.bmm(w, flat)[:, 0]
            col_sq = torch.bmm(w, flat * flat)[:, 0]
        n_tok, col_sum, col_sq = (
            t.double().to(h.device) for t in (n_tok, col_sum, col_sq)
        )
        if self.n_tok is None:
            self.n_tok, self.col_sum, self.col_sq = n_tok, col_sum, col_sq
        else:
            self.n_tok = self.n_tok + n_tok
            self.col_sum = self.col_sum + col_sum
            self.col_sq = self.col_sq + col_sq

    def affine(self):
        """``(scale, shift)`` of shape (B, 1, 1, L*c) for the whole recording."""
        norm, bias, n_tok = self.norm, self.bias, self.n_tok
        col_sq = self.col_sq + 2 * bias * self.col_sum + n_tok * bias.square()
        col_sum = self.col_sum + n_tok * bias
        groups, width = norm.num_groups, norm.num_channels
        n_batch, n_col = col_sum.shape
        per_group = n_tok * (n_col // groups)
        shape = (n_batch, -1, groups, width // groups)
        mean = col_sum.view(shape).sum(dim=(1, 3)) / per_group
        var = (
            col_sq.view(shape).sum(dim=(1, 3)) / per_group - mean.square()
        ).clamp_min(0)
        rstd = torch.rsqrt(var + norm.eps)  # (B, G)
        scale = rstd[:, None, :, None] * norm.weight.double().view(groups, -1)
        shift = norm.bias.double().view(groups, -1) - mean[:, None, :, None] * scale
        n_pos = n_col // width
        scale = scale.expand(-1, n_pos, -1, -1).reshape(n_batch, 1, 1, n_col)
        shift = shift.expand(-1, n_pos, -1, -1).reshape(n_batch, 1, 1, n_col)
        shift = shift + bias * scale
        dtype = norm.weight.dtype
        return scale.to(dtype), shift.to(dtype)


class MultiBranchEmbedding(nn.Module):
    """EEGM2-style multi-branch temporal embedding (kernels 1, 3 and 7).

    Parallel Conv1d branches with "same" padding over each patch, concatenated,
    fused by a 1x1 convolution, per-token GroupNorm and GELU, then averaged into
    4 segments and flattened (segment, channel) to width E.

    Parameters
    ----------
    embed_dim : int
        Token width E (a multiple of 4).
    patch_size : int
        Samples per patch (a multiple of 4).
    """

    kernels = (1, 3, 7)

    def __init__(self, embed_dim=64, patch_size=PATCH_SIZE):
        super().__init__()
        width = embed_dim // 4
        self.patch_size = patch_size
        self.branches = nn.ModuleList(
            nn.Conv1d(1, width, k, padding=k // 2) for k in self.kernels
        )
        self.fuse = nn.Conv1d(len(self.kernels) * width, width, 1)
        self.norm = nn.GroupNorm(4, width)

    def forward(self, x, parts, channel_mask=None):
        """Embed the patches of ``x`` by ranges ``parts``: list of (B, s, C, E)."""
        return [
            self.embed_tokens(patch_tokens(x, part, self.patch_size)) for part in parts
        ]

    def embed_tokens(self, tokens):
        """Embed independent tokens (..., P) -> (..., E)."""
        shape, n_times = tokens.shape[:-1], tokens.shape[-1]
        flat = tokens.reshape(-1, 1, n_times)
        h = torch.cat([branch(flat) for branch in self.branches], dim=1)
        h = F.gelu(self.norm(self.fuse(h)))
        h = F.avg_pool1d(h, n_times // 4)  # (n, width, 4)
        return h.transpose(1, 2).reshape(*shape, -1)


def _dft_matrix(patch_size, dtype, device):
    """Real and imaginary rfft matrices, each (P, P // 2 + 1)."""
    n_freq = patch_size // 2 + 1
    t = torch.arange(patch_size, dtype=torch.float64)
    k = torch.arange(n_freq, dtype=torch.float64)
    phase = 2 * math.pi * torch.outer(t, k) / patch_size
    real, imag = torch.cos(phase), -torch.sin(phase)
    imag[:, 0] = 0.0
    if patch_size % 2 == 0:
        imag[:, -1] = 0.0
    return tuple(m.to(dtype=dtype, device=device).contiguous() for m in (real, imag))


class FrequencyEmbedding(nn.Module):
    """Magnitude and phase of each patch's rfft -> MLP (``freq_embed``).

    Parameters
    ----------
    embed_dim : int
        Width E of the MLP's output token.
    patch_size : int
        Samples per patch P; the MLP reads the P // 2 + 1 magnitudes and as
        many phases.
    """

    def __init__(self, embed_dim=64, patch_size=PATCH_SIZE):
        super().__init__()
        n_feat = 2 * (patch_size // 2 + 1)
        self.patch_size = patch_size
        self.frequency_to_embed = Mlp(n_feat, 4 * n_feat, embed_dim)
        self._dft = None

    def dft(self, tokens):
        """The cached real and imaginary DFT matrices for ``tokens``' dtype/device."""
        dft = self._dft
        if (
            dft is None
            or dft[0].dtype != tokens.dtype
            or dft[0].device != tokens.device
        ):
            dft = self._dft = _dft_matrix(self.patch_size, tokens.dtype, tokens.device)
        return dft

    def forward(self, tokens):
        """Embed tokens (..., P) -> (..., E)."""
        real_mat, imag_mat = self.dft(tokens)
        with float32_region(tokens):  # phases of small bins need float32
            real = torch.matmul(tokens, real_mat)
            # The DC (and Nyquist) columns of imag_mat are exact zeros; adding
            # +0.0 turns any -0.0 into +0.0 so that their phase is 0 or pi as
            # with rfft.
            imag = torch.matmul(tokens, imag_mat) + 0.0
            feats = torch.cat(
                [torch.hypot(real, imag), torch.atan2(imag, real)], dim=-1
            )
        return self.frequency_to_embed(feats)


class ChannelUnifiedModel(nn.Module):
    """Base class: the LUNA front end shared by LuMamba and LUNA.

    Registers, in checkpoint order, ``mask_token``, ``patch_embed``,
    ``freq_embed``, ``channel_location_embedder`` and ``cross_attn``.

    Parameters
    ----------
    num_queries : int
        Learned queries Q.
    embed_dim : int
        Token width E (D = Q * E).
    num_heads : int
        Heads of the channel cross-attention.
    patch_size : int
        Samples per patch.
    embedding : "luna" | "multibranch"
        Temporal patch embedding.
    dropout : float
        Dropout of the channel unification (training only).
    """

    #: electrode tokens (sample x patch x channel) per front-end chunk: small
    #: chunks bound memory and avoid large temporaries.
    chunk_tokens = 16384

    def __init__(
        self,
        num_queries=6,
        embed_dim=64,
        num_heads=2,
        patch_size=PATCH_SIZE,
        embedding="luna",
        dropout=0.1,
    ):
        super().__init__()
        if embedding not in ("luna", "multibranch"):
            raise ValueError(
                f"embedding must be 'luna' or 'multibranch', got {embedding!r}"
            )
        self.patch_size = patch_size
        self.num_queries = num_queries
        self.patch_embed_dim = embed_dim
        self.embed_dim = num_queries * embed_dim
        self.mask_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        nn.init.normal_(self.mask_token, std=0.02)
        embed_cls = PatchEmbedding if embedding == "luna" else MultiBranchEmbedding
        self.patch_embed = embed_cls(embed_dim, patch_size)
        self.freq_embed = FrequencyEmbedding(embed_dim, patch_size)
        self.channel_location_embedder = nn.Sequential(
            Mlp(embed_dim, 2 * embed_dim, embed_dim, norm=True)
        )
        self.cross_attn = CrossAttentionUnifier(
            num_queries, embed_dim, num_heads, dropout
        )

    def location_embedding(self, positions, channel_mask=None, jitter=0.0):
        """Embedding (B, C, E) of electrode positions (B, C, 3)."""
        coords = normalize_positions(positions, channel_mask)
        if jitter > 0:
            coords = coords + jitter * torch.randn_like(coords)
        return self.channel_location_embedder(
            nerf_encoding(coords, self.patch_embed_dim)
        )

    @fill_doc
    def unify(  # noqa: D417 (docdict)
        self,
        x,
        positions,
        channel_mask=None,
        patch_mask=None,
        jitter=0.0,
        need_weights=False,
    ):
        """Tokens of each patch unified over the electrodes.

        Parameters
        ----------
        %(unified_inputs)s
        channel_mask : torch.Tensor | None, shape (B, C)
            True for real channels.
        patch_mask : torch.Tensor | None, shape (B, C, S)
            True where a patch is replaced by ``mask_token``.
        jitter : float
            Std of the Gaussian noise on normalised coordinates (pretraining).
        need_weights : bool
            Also return attention maps.

        Returns
        -------
        unified : torch.Tensor, shape (B, S, Q*E)
        attention : torch.Tensor | None, shape (B, S, Q, C)
        loc_emb : torch.Tensor, shape (B, C, E)
        """
        positions, channel_mask = check_inputs(
            x, positions, channel_mask, self.patch_size
        )
        n_batch, n_chan, n_times = x.shape
        n_patch = n_times // self.patch_size
        loc_emb = self.location_embedding(positions, channel_mask, jitter)
        # Tokens ordered (sample, patch, channel) so rows of a patch are contiguous.
        if patch_mask is not None:
            patch_mask = torch.as_tensor(patch_mask, device=x.device).bool()
            if patch_mask.shape != (n_batch, n_chan, n_patch):
                raise ValueError(
                    f"patch_mask must have shape {(n_batch, n_chan, n_patch)}, "
                    f"got {tuple(patch_mask.shape)}"
                )
            patch_mask = patch_mask.transpose(1, 2)
        step = max(1, self.chunk_tokens // (n_batch * n_chan))
        parts = [slice(s, min(s + step, n_patch)) for s in range(0, n_patch, step)]
        temporal = self.patch_embed(x, parts, channel_mask)
        outs, maps = [], []
        for i, part in enumerate(parts):
            emb = self.freq_embed(patch_tokens(x, part, self.patch_size))
            emb = emb + temporal[i]
            temporal[i] = None  # free as we go
            if patch_mask is not None:
                emb = torch.where(patch_mask[:, part, :, None], self.mask_token, emb)
            emb = emb + loc_emb[:, None]
            rows = emb.reshape(-1, n_chan, emb.shape[-1])
            key_mask = None
            if channel_mask is not None:
                key_mask = channel_mask[:, None].expand(-1, emb.shape[1], -1)
                key_mask = key_mask.reshape(-1, n_chan)
            out, attn = self.cross_attn(rows, key_mask, need_weights)
            outs.append(out.view(n_batch, -1, self.embed_dim))
            if need_weights:
                maps.append(attn.view(n_batch, -1, self.num_queries, n_chan))
        unified = torch.cat(outs, dim=1) if len(outs) > 1 else outs[0]
        attention = None
        if need_weights:
            attention = torch.cat(maps, dim=1) if len(maps) > 1 else maps[0]
        return unified, attention, loc_emb

    def temporal_encode(self, unified):
        """Temporal encoder over the unified tokens (B, S, D) -> (B, S, D)."""
        raise NotImplementedError

    def encode(self, x, positions, channel_mask=None):
        """Encoder output (B, S, D) for signals (B, C, T) and positions.

        Parameters
        ----------
        x : torch.Tensor, shape (B, C, T)
            Normalised signals; T a multiple of ``patch_size``.
        positions : torch.Tensor, shape (B, C, 3) | (C, 3)
            Electrode positions in metres (MNE head frame).
        channel_mask : torch.Tensor | None, shape (B, C)
            True for real channels, False for padding.

        Returns
        -------
        latent : torch.Tensor, shape (B, S, D)
        """
        if x.ndim == 3 and x.shape[0] == 0:  # an empty batch encodes to nothing
            check_inputs(x, positions, channel_mask, self.patch_size)
            n_patch = x.shape[2] // self.patch_size
            return x.new_zeros(0, n_patch, self.embed_dim)
        unified = self.unify(x, positions, channel_mask)[0]
        return self.temporal_encode(unified)

    def embed(self, x, positions, channel_mask=None):
        """Pooled embedding (B, D): the encoder output averaged over patches."""
        return self.encode(x, positions, channel_mask).mean(dim=1)

    def forward(self, x, positions, channel_mask=None):
        """Logits (B, n_outputs) of the classification head."""
        if self.classifier is None:
            raise ValueError(
                "this model has no classification head; create it with "
                "n_outputs=... (or use encode/embed)"
            )
        return self.classifier(self.encode(x, positions, channel_mask))

    def channel_attention(self, x, positions, channel_mask=None):
        """Attention (B, Q, C) of each query over the electrodes.

        Averaged over heads and patches; padded channels get 0.
        """
        attention = self.unify(x, positions, channel_mask, need_weights=True)[1]
        return attention.mean(dim=1)

    @fill_doc
    def pretrain_forward(  # noqa: D417 (docdict)
        self, x, positions, patch_mask, channel_mask=None, jitter=0.0, channel_ids=None
    ):
        """Masked-patch reconstruction pass.

        Parameters
        ----------
        %(unified_inputs)s
        patch_mask : torch.Tensor | None, shape (B, C, S)
            True where a patch is replaced by ``mask_token``.
        channel_mask : torch.Tensor | None, shape (B, C)
            True for real channels.
        jitter : float
            Std of the Gaussian noise on the normalised coordinates.
        channel_ids : torch.Tensor | None, shape (B, C) | (C,)
            Optional channel-name indices for ``channel_emb``; None decodes from
            positions only (any montage).

        Returns
        -------
        out : dict
            ``recon`` (B, C, T), ``attention`` (B*S, Q, C), ``latent`` (B, S, D).
        """
        if self.decoder_head is None:
            raise ValueError(
                "pretrain_forward needs the reconstruction decoder; create the "
                "model with n_outputs=None"
            )
        unified, attention, loc_emb = self.unify(
            x, positions, channel_mask, patch_mask, jitter, need_weights=True
        )
        latent = self.temporal_encode(unified)
        queries = loc_emb
        if channel_ids is not None:
            if self.channel_emb is None:
                raise ValueError("channel_ids given but the model has no channel_emb")
            ids = torch.as_tensor(channel_ids, device=x.device).long()
            queries = queries + self.channel_emb(ids)
        channel_mask = check_inputs(x, positions, channel_mask, self.patch_size)[1]
        recon = self.decoder_head(latent, queries, channel_mask)
        n_chan = x.shape[1]
        attention = attention.reshape(-1, self.num_queries, n_chan)
        return {"recon": recon, "attention": attention, "latent": latent}
