"""Reconstruction decoder for masked-patch pretraining (``decoder_head``)."""

from torch import nn

from .heads import make_head
from .unifier import Mlp

#: Size of the channel-name vocabulary of the published checkpoints.
N_CHANNEL_NAMES = 90


class ChannelEmbedding(nn.Module):
    """Learned embedding per channel-name index (``channel_emb.embeddings``).

    Parameters
    ----------
    embed_dim : int
        Token width E.
    n_names : int
        Vocabulary size.
    """

    def __init__(self, embed_dim, n_names=N_CHANNEL_NAMES):
        super().__init__()
        self.embeddings = nn.Embedding(n_names, embed_dim)

    def forward(self, channel_ids):
        """Embeddings (B, C, E) of name indices (B, C) or (C,)."""
        return self.embeddings(channel_ids)


class ReconstructionDecoder(nn.Module):
    """Reconstruct every patch of every channel from the latent queries.

    One query per output channel (its location embedding, optionally plus a
    channel-name embedding) goes through a pre-norm TransformerDecoderLayer
    (self-attention over channels, cross-attention to the Q latent tokens of
    the patch), a LayerNorm and an MLP E -> 4E -> P.

    Parameters
    ----------
    embed_dim : int
        Token width E.
    num_queries : int
        Latent tokens Q per patch (the latent width is Q * E).
    patch_size : int
        Samples per patch P.
    num_heads : int
        Attention heads.
    """

    def __init__(self, embed_dim, num_queries, patch_size, num_heads=2):
        super().__init__()
        self.num_queries = num_queries
        layer = nn.TransformerDecoderLayer(
            embed_dim,
            num_heads,
            dim_feedforward=4 * embed_dim,
            dropout=0.0,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.decoder_pred = nn.TransformerDecoder(layer, num_layers=1)
        self.norm = nn.LayerNorm(embed_dim)
        self.decoder_linear = Mlp(embed_dim, 4 * embed_dim, patch_size)

    def forward(self, latent, queries, channel_mask=None):
        """Reconstruct the signals.

        Parameters
        ----------
        latent : torch.Tensor, shape (B, S, Q*E)
            Encoder output.
        queries : torch.Tensor, shape (B, C, E)
            Decoder query of each output channel.
        channel_mask : torch.Tensor | None, shape (B, C)
            True for real channels (padding is not attended to).

        Returns
        -------
        recon : torch.Tensor, shape (B, C, S*P)
        """
        layer = self.decoder_pred.layers[0]
        n_batch, n_patch, _ = latent.shape
        n_chan, width = queries.shape[1:]
        pad = None if channel_mask is None else ~channel_mask
        # The self-attention block sees the same queries for every patch of a
        # sample: compute it once per sample.
        h = layer.norm1(queries)
        h = layer.self_attn(h, h, h, key_padding_mask=pad, need_weights=False)[0]
        tgt = queries + layer.dropout1(h)
        tgt = tgt[:, None].expand(-1, n_patch, -1, -1).reshape(-1, n_chan, width)
        memory = latent.reshape(n_batch * n_patch, self.num_queries, width)
        h = layer.norm2(tgt)
        h = layer.multihead_attn(h, memory, memory, need_weights=False)[0]
        tgt = tgt + layer.dropout2(h)
        h = layer.linear2(
            layer.dropout(layer.activation(layer.linear1(layer.norm3(tgt))))
        )
        tgt = tgt + layer.dropout3(h)
        out = self.decoder_linear(self.norm(tgt))  # (B*S, C, P)
        out = out.view(n_batch, n_patch, n_chan, -1).permute(0, 2, 1, 3)
        return out.reshape(n_batch, n_chan, -1)


def add_outputs(model, n_outputs, head, embed_dim, num_queries, patch_size, num_heads):
    """Give a channel-unified model its pretraining layout or its task head.

    With ``n_outputs=None`` the model gets ``decoder_head`` and ``channel_emb``;
    otherwise ``classifier`` (and its unused mask token stops learning). The
    attributes are registered in this order, the key order of the checkpoints.

    Parameters
    ----------
    model : ChannelUnifiedModel
        The model, modified in place.
    n_outputs : int | None
        Outputs of the classification head; None for the pretraining layout.
    head : "query" | "mamba" | "linear" | None
        Head type (default "query").
    embed_dim : int
        Token width E.
    num_queries : int
        Learned queries Q (model width D = Q * E).
    patch_size : int
        Samples per patch.
    num_heads : int
        Heads of the decoder's attention.
    """
    model.decoder_head = model.channel_emb = model.classifier = None
    if n_outputs is None:
        model.decoder_head = ReconstructionDecoder(
            embed_dim, num_queries, patch_size, num_heads
        )
        model.channel_emb = ChannelEmbedding(embed_dim, N_CHANNEL_NAMES)
    else:
        model.mask_token.requires_grad_(False)
        model.classifier = make_head(head or "query", model.embed_dim, n_outputs)
