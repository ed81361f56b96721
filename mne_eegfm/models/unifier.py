"""Channel unification: learned queries attend over the electrodes of each patch.

Split from :mod:`.frontend`; the attribute names follow the published
LUNA/LuMamba checkpoints.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from .precision import float32_region


class Mlp(nn.Module):
    """Linear -> GELU -> (LayerNorm) -> Linear, with the names fc1/norm/fc2.

    Parameters
    ----------
    in_features, hidden_features, out_features : int
        Widths.
    norm : bool
        Whether a LayerNorm acts on the hidden layer (after the GELU).
    drop : float
        Dropout after the activation and after ``fc2`` (training only).
    """

    def __init__(
        self, in_features, hidden_features, out_features, norm=False, drop=0.0
    ):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.drop = nn.Dropout(drop)
        self.norm = nn.LayerNorm(hidden_features) if norm else None
        self.fc2 = nn.Linear(hidden_features, out_features)

    def forward(self, x):
        """Apply the MLP to the last dimension of ``x``."""
        x = self.drop(F.gelu(self.fc1(x)))
        if self.norm is not None:
            x = self.norm(x)
        return self.drop(self.fc2(x))


class CrossAttentionUnifier(nn.Module):
    """Learned-query cross-attention over the electrodes (``cross_attn``).

    Parameters
    ----------
    num_queries : int
        Number of learned queries Q.
    embed_dim : int
        Token width E.
    num_heads : int
        Attention heads.
    dropout : float
        Dropout of the attention, FFN and query self-attention (training only).
    """

    def __init__(self, num_queries=6, embed_dim=64, num_heads=2, dropout=0.1):
        super().__init__()
        self.num_queries = num_queries
        self.num_heads = num_heads
        self.dropout = dropout
        self.query_embed = nn.Parameter(torch.empty(1, num_queries, embed_dim))
        nn.init.orthogonal_(self.query_embed)
        # Unused scalar kept (with its spelling) so published weights load.
        self.temparature = nn.Parameter(torch.tensor(1.0), requires_grad=False)
        self.cross_attention = nn.MultiheadAttention(
            embed_dim, num_heads, dropout=dropout, batch_first=True
        )
        self.ffn = Mlp(embed_dim, 4 * embed_dim, embed_dim, norm=True, drop=dropout)
        self.keys_norm = nn.LayerNorm(embed_dim)
        self.values_norm = nn.LayerNorm(embed_dim)
        self.queries_norm = nn.LayerNorm(embed_dim)
        layer = nn.TransformerEncoderLayer(
            embed_dim,
            num_heads,
            dim_feedforward=4 * embed_dim,
            dropout=dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.query_self_attn = nn.TransformerEncoder(
            layer, num_layers=3, enable_nested_tensor=False
        )

    def folded_weights(self):
        """Key projection folded into the queries, value+output projections fused.

        Returns
        -------
        score_mat : torch.Tensor, shape (E, H*Q)
            ``scores = xhat @ score_mat`` up to a per-query constant (which the
            softmax cancels); ``xhat`` is the un-affine LayerNorm of a token.
        value_mat : torch.Tensor, shape (H*E, E)
            Maps the attention-averaged ``xhat`` of each head to the output.
        value_bias : torch.Tensor, shape (H, E)
            Output contribution of a head per unit of attention mass.
        """
        with float32_region(self.query_embed):
            return self._folded_weights()

    def _folded_weights(self):
        mha = self.cross_attention
        embed_dim, heads = mha.embed_dim, self.num_heads
        head_dim = embed_dim // heads
        w_q, w_k, w_v = mha.in_proj_weight.chunk(3)
        b_q, b_k, b_v = mha.in_proj_bias.chunk(3)
        q = F.linear(self.queries_norm(self.query_embed[0]), w_q, b_q)
        q = q.view(-1, heads, head_dim).transpose(0, 1)  # (H, Q, dh)
        w_k = w_k.view(heads, head_dim, embed_dim)
        score_mat = torch.matmul(q, w_k) / math.sqrt(head_dim)  # (H, Q, E)
        score_mat = score_mat * self.keys_norm.weight
        score_mat = score_mat.reshape(-1, embed_dim).t()
        w_o = mha.out_proj.weight.view(embed_dim, heads, head_dim).transpose(0, 1)
        w_v = w_v.view(heads, head_dim, embed_dim)
        value_mat = torch.matmul(w_o, w_v * self.values_norm.weight)  # (H, E, E)
        value_mat = value_mat.transpose(1, 2).reshape(heads * embed_dim, embed_dim)
        v_shift = torch.matmul(w_v, self.values_norm.bias) + b_v.view(heads, head_dim)
        value_bias = torch.matmul(w_o, v_shift[..., None])[..., 0]  # (H, E)
        return score_mat, value_mat, value_bias

    def forward(self, tokens, key_mask=None, need_weights=False):
        """Unify the electrodes of each (sample, patch) row into Q tokens.

        Parameters
        ----------
        tokens : torch.Tensor, shape (n, C, E)
            Token of each electrode.
        key_mask : torch.Tensor | None, shape (n, C)
            True for real electrodes.
        need_weights : bool
            Also return the attention maps.

        Returns
        -------
        out : torch.Tensor, shape (n, Q, E)
        attention : torch.Tensor | None, shape (n, Q, C)
            Attention of each query over the electrodes, averaged over heads.
        """
        n_rows, n_chan, embed_dim = tokens.shape
        heads, n_q = self.num_heads, self.num_queries
        score_mat, value_mat, value_bias = self.folded_weights()
        xhat = F.layer_norm(tokens, (embed_dim,), eps=self.keys_norm.eps)
        # Softmax in float32 (under bfloat16 autocast; a no-op in float32).
        scores = torch.matmul(xhat, score_mat).transpose(1, 2).float()  # (n, H*Q, C)
        if key_mask is not None:
            scores = scores.masked_fill(~key_mask[:, None, :], -math.inf)
        attn = torch.softmax(scores, dim=-1)
        weights = (
            attn.view(n_rows, heads, n_q, n_chan).mean(dim=1) if need_weights else None
        )
        if self.training and self.dropout > 0:
            attn = F.dropout(attn, self.dropout)
        pooled = torch.bmm(attn, xhat)  # (n, H*Q, E)
        pooled = pooled.view(n_rows, heads, n_q, embed_dim).transpose(1, 2)
        mass = attn.sum(dim=-1).view(n_rows, heads, n_q).transpose(1, 2)
        out = torch.matmul(pooled.reshape(n_rows, n_q, -1), value_mat)
        out = out + torch.matmul(mass, value_bias) + self.cross_attention.out_proj.bias
        out = self.ffn(out) + out
        return self.query_self_attn(out), weights
