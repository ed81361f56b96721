"""Mamba-2 block with the parameter layout of mamba-ssm 2.3.2."""

import math

import torch
import torch.nn.functional as F
from torch import nn

from .._docs import fill_doc
from .initial import on_device
from .mamba import MambaBlock, causal_depthwise_conv, init_dt_bias
from .scan import chunk_scan


class RMSNormGated(nn.Module):
    """Gated RMS normalisation: ``rmsnorm(x * silu(z))`` per group of channels.

    Parameters
    ----------
    hidden_size : int
        Number of channels.
    eps : float
        Added to the mean square.
    norm_before_gate : bool
        Normalise first, then gate (mamba-ssm's option; default gates first).
    group_size : int | None
        Channels normalised together (None: all of them).
    device, dtype : torch.device | torch.dtype | None
        Factory arguments of the weight.
    """

    def __init__(
        self,
        hidden_size,
        eps=1e-5,
        norm_before_gate=False,
        group_size=None,
        device=None,
        dtype=None,
    ):
        super().__init__()
        self.eps = eps
        self.norm_before_gate = norm_before_gate
        self.group_size = hidden_size if group_size is None else group_size
        self.weight = nn.Parameter(torch.ones(hidden_size, device=device, dtype=dtype))

    def forward(self, x, z=None):
        """Normalise ``x`` (..., hidden_size), gated by ``z`` when given."""
        dtype = x.dtype
        x = x.float()
        if z is not None and not self.norm_before_gate:
            x = x * F.silu(z.float())
        groups = x.unflatten(-1, (-1, self.group_size))
        rms = torch.rsqrt(groups.square().mean(-1, keepdim=True) + self.eps)
        x = (groups * rms).flatten(-2) * self.weight.float()
        if z is not None and self.norm_before_gate:
            x = x * F.silu(z.float())
        return x.to(dtype)


@fill_doc
class Mamba2(MambaBlock):
    """Mamba-2 (SSD) block, a drop-in for ``mamba_ssm.Mamba2``.

    Parameters have the names and shapes of mamba-ssm 2.3.2 so its state_dicts
    load with ``strict=True``. On CPU the scan runs in the chunked matmul form
    (float32); on CUDA with mamba-ssm installed, its Triton kernel is used.

    Parameters
    ----------
    d_model, d_state, d_conv : int
        Sizes (see :class:`~mne_eegfm.models.mamba.MambaBlock`).
    conv_init : float | None
        If given, the convolution weights are drawn from U(-conv_init, conv_init).
    expand : int
        ``d_inner = expand * d_model``.
    headdim : int
        Channels per head.
    d_ssm : int | None
        Channels that go through the scan (None: all of ``d_inner``); the rest
        are a gated MLP.
    ngroups : int
        Groups of heads sharing B and C.
    A_init_range : tuple of float
        Range of the initial ``-A``.
    D_has_hdim : bool
        One skip weight per channel instead of per head.
    rmsnorm : bool
        Use the gated RMS norm (else the output is gated by ``silu(z)``).
    norm_before_gate : bool
        Order of normalisation and gating.
    dt_min, dt_max, dt_init_floor : float
        Initial step sizes (log-uniform in ``[dt_min, dt_max]``, floored).
    dt_limit : tuple of float
        Clamp of the step sizes.
    %(bias)s
    %(conv_bias)s
    chunk_size : int
        Chunk length of the CUDA kernel (the CPU path uses 64).
    use_mem_eff_path : bool
        Accepted for compatibility with mamba-ssm.
    %(layer_idx)s
    process_group : None
        Tensor parallelism is not supported; must be None.
    sequence_parallel : bool
        Accepted for compatibility with mamba-ssm.
    %(factory)s
    """

    cpu_chunk_size = 64

    def __init__(
        self,
        d_model,
        d_state=128,
        d_conv=4,
        conv_init=None,
        expand=2,
        headdim=64,
        d_ssm=None,
        ngroups=1,
        A_init_range=(1, 16),
        D_has_hdim=False,
        rmsnorm=True,
        norm_before_gate=False,
        dt_min=0.001,
        dt_max=0.1,
        dt_init_floor=1e-4,
        dt_limit=(0.0, float("inf")),
        bias=False,
        conv_bias=True,
        chunk_size=256,
        use_mem_eff_path=True,
        layer_idx=None,
        process_group=None,
        sequence_parallel=True,
        device=None,
        dtype=None,
    ):
        super().__init__(d_model, d_state, d_conv, expand)
        if process_group is not None:
            raise ValueError("process_group (tensor parallelism) is not supported")
        factory = {"device": device, "dtype": dtype}
        self.headdim = headdim
        self.d_ssm = self.d_inner if d_ssm is None else d_ssm
        if self.d_ssm % headdim:
            raise ValueError(
                f"d_ssm ({self.d_ssm}) must be a multiple of headdim ({headdim})"
            )
        self.ngroups = ngroups
        self.nheads = self.d_ssm // headdim
        if self.nheads % ngroups:
            raise ValueError(
                f"the number of heads ({self.nheads}) must be a multiple of "
                f"ngroups ({ngroups})"
            )
        self.D_has_hdim = D_has_hdim
        self.rmsnorm = rmsnorm
        self.norm_before_gate = norm_before_gate
        self.dt_limit = tuple(dt_limit)
        self.chunk_size = chunk_size
        self.use_mem_eff_path = use_mem_eff_path
        self.layer_idx = layer_idx

        d_in_proj = 2 * self.d_inner + 2 * ngroups * d_state + self.nheads
        self.in_proj = nn.Linear(d_model, d_in_proj, bias=bias, **factory)
        conv_dim = self.d_ssm + 2 * ngroups * d_state
        self.conv1d = self._conv1d(conv_dim, conv_bias, factory)
        if conv_init is not None:
            nn.init.uniform_(self.conv1d.weight, -conv_init, conv_init)
        self.dt_bias = nn.Parameter(
            init_dt_bias(self.nheads, dt_min, dt_max, dt_init_floor, device=device)
        )
        self.dt_bias._no_weight_decay = True
        A = torch.empty(self.nheads, device="cpu").uniform_(*A_init_range)
        self.A_log = nn.Parameter(on_device(torch.log(A), device).to(dtype=dtype))
        self.A_log._no_weight_decay = True
        self.D = nn.Parameter(
            torch.ones(self.d_ssm if D_has_hdim else self.nheads, device=device)
        )
        self.D._no_weight_decay = True
        if rmsnorm:
            self.norm = RMSNormGated(
                self.d_ssm,
                eps=1e-5,
                norm_before_gate=norm_before_gate,
                group_size=self.d_ssm // ngroups,
                **factory,
            )
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=bias, **factory)

    def _forward(self, u, reverse):
        """The whole sequence at once (time-reversed for ``reverse``)."""
        if reverse:
            return self._forward(u.flip(1), False).flip(1)
        zxbcdt = self.in_proj(u)
        d_mlp = (
            zxbcdt.shape[-1]
            - 2 * self.d_ssm
            - 2 * self.ngroups * self.d_state
            - self.nheads
        ) // 2
        gn = self.ngroups * self.d_state
        z0, x0, z, xbc, dt = zxbcdt.split(
            [d_mlp, d_mlp, self.d_ssm, self.d_ssm + 2 * gn, self.nheads], dim=-1
        )
        xbc = causal_depthwise_conv(xbc, self.conv1d.weight, self.conv1d.bias)
        xbc = F.silu(xbc, inplace=True)
        x, B, C = xbc.split([self.d_ssm, gn, gn], dim=-1)
        dt = F.softplus(dt.float() + self.dt_bias.float())
        if self.dt_limit != (0.0, math.inf):
            dt = dt.clamp(*self.dt_limit)
        D = (
            self.D.unflatten(0, (self.nheads, self.headdim))
            if self.D_has_hdim
            else self.D
        )
        y = chunk_scan(
            x.unflatten(-1, (self.nheads, self.headdim)),
            dt,
            -torch.exp(self.A_log.float()),
            B.unflatten(-1, (self.ngroups, self.d_state)),
            C.unflatten(-1, (self.ngroups, self.d_state)),
            chunk_size=self.chunk_size if u.is_cuda else self.cpu_chunk_size,
            D=D,
        ).flatten(-2)
        if self.rmsnorm:
            y = self.norm(y, z)
        else:
            y = y * F.silu(z.float())
        if d_mlp > 0:
            y = torch.cat([F.silu(z0) * x0, y.to(x0.dtype)], dim=-1)
        return self.out_proj(y.to(u.dtype))
