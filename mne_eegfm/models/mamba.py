"""Mamba (v1) block with the parameter layout of mamba-ssm 2.3.2."""

import math

import torch
import torch.nn.functional as F
from torch import nn

from .._docs import fill_doc
from .initial import on_device
from .scan import selective_scan

#: Tokens (batch x time) per piece when inference walks a long sequence in
#: pieces: the temporaries of a piece stay a few MB, so they are reused by the
#: allocator instead of being mapped (and page-faulted) afresh.
PIECE_TOKENS = 2048


def causal_depthwise_conv(x, weight, bias, history=None):
    """Causal depthwise 1-D convolution over time.

    Parameters
    ----------
    x : torch.Tensor, shape (batch, length, channels)
        Input sequence.
    weight : torch.Tensor, shape (channels, 1, kernel)
        Depthwise kernels (``nn.Conv1d`` layout).
    bias : torch.Tensor, shape (channels,) | None
        Bias.
    history : torch.Tensor, shape (batch, kernel - 1, channels) | None
        The inputs just before ``x`` (None: zeros, the start of a sequence).

    Returns
    -------
    y : torch.Tensor, shape (batch, length, channels)
        ``y[t] = bias + sum_k weight[k] * x[t - kernel + 1 + k]``.
    """
    kernel, length = weight.shape[-1], x.shape[1]
    taps = weight[:, 0].t().contiguous()  # (kernel, channels)
    if history is None:
        padded = F.pad(x, (0, 0, kernel - 1, 0))
    else:
        padded = torch.cat([history, x], dim=1)
    last = padded[:, kernel - 1 :]
    y = (
        torch.mul(last, taps[-1])
        if bias is None
        else torch.addcmul(bias, last, taps[-1])
    )
    for k in range(kernel - 1):
        y.addcmul_(padded[:, k : k + length], taps[k])
    return y


def init_dt_bias(n, dt_min, dt_max, dt_init_floor, device=None):
    """Inverse softplus of step sizes drawn log-uniformly in ``[dt_min, dt_max]``."""
    log_lo, log_hi = math.log(dt_min), math.log(dt_max)
    dt = torch.exp(torch.rand(n, device="cpu") * (log_hi - log_lo) + log_lo)
    dt = dt.clamp(min=dt_init_floor)
    return on_device(dt + torch.log(-torch.expm1(-dt)), device)


class MambaBlock(nn.Module):
    """What the Mamba and Mamba-2 blocks share: their sizes and convolution.

    Parameters
    ----------
    d_model : int
        Model width (input and output channels).
    d_state : int
        State size N (per channel in Mamba, per head in Mamba-2).
    d_conv : int
        Kernel length of the causal depthwise convolution.
    expand : int
        ``d_inner = expand * d_model``.
    """

    def __init__(self, d_model, d_state, d_conv, expand):
        super().__init__()
        self.d_model = d_model
        self.d_state = d_state
        self.d_conv = d_conv
        self.expand = expand
        self.d_inner = int(expand * d_model)

    @fill_doc
    def forward(self, hidden_states, inference_params=None, reverse=False):  # noqa: D417 (docdict)
        """Apply the block.

        Parameters
        ----------
        hidden_states : torch.Tensor, shape (batch, length, d_model)
            Input sequence.
        %(ssm_options)s

        Returns
        -------
        out : torch.Tensor, shape (batch, length, d_model)
            Output sequence, in the input dtype.
        """
        if inference_params is not None:
            raise NotImplementedError("step-by-step decoding is not supported")
        return self._forward(hidden_states, reverse)

    def _conv1d(self, channels, bias, factory):
        """The depthwise convolution, padded to be causal (``conv1d`` weights)."""
        return nn.Conv1d(
            channels,
            channels,
            kernel_size=self.d_conv,
            groups=channels,
            padding=self.d_conv - 1,
            bias=bias,
            **factory,
        )


@fill_doc
class Mamba(MambaBlock):
    """Mamba (v1) selective state-space block, a drop-in for ``mamba_ssm.Mamba``.

    Parameters have the names and shapes of mamba-ssm 2.3.2 so its state_dicts
    load with ``strict=True``. The scan runs in float32 whatever the input dtype.
    On CUDA with mamba-ssm installed, its selective-scan kernel is used.

    Parameters
    ----------
    d_model, d_state, d_conv, expand : int
        Sizes (see :class:`MambaBlock`).
    dt_rank : int | "auto"
        Rank of the step-size projection; "auto" is ``ceil(d_model / 16)``.
    dt_min, dt_max : float
        Range of the initial step sizes.
    dt_init : "random" | "constant"
        Initialisation of ``dt_proj.weight``.
    dt_scale : float
        Scale of the ``dt_proj.weight`` initialisation.
    dt_init_floor : float
        Smallest initial step size.
    %(conv_bias)s
    %(bias)s
    use_fast_path : bool
        Accepted for compatibility with mamba-ssm.
    %(layer_idx)s
    %(factory)s
    """

    def __init__(
        self,
        d_model,
        d_state=16,
        d_conv=4,
        expand=2,
        dt_rank="auto",
        dt_min=0.001,
        dt_max=0.1,
        dt_init="random",
        dt_scale=1.0,
        dt_init_floor=1e-4,
        conv_bias=True,
        bias=False,
        use_fast_path=True,
        layer_idx=None,
        device=None,
        dtype=None,
    ):
        super().__init__(d_model, d_state, d_conv, expand)
        factory = {"device": device, "dtype": dtype}
        self.dt_rank = math.ceil(d_model / 16) if dt_rank == "auto" else dt_rank
        self.use_fast_path = use_fast_path
        self.layer_idx = layer_idx
        d_inner = self.d_inner

        self.in_proj = nn.Linear(d_model, 2 * d_inner, bias=bias, **factory)
        self.conv1d = self._conv1d(d_inner, conv_bias, factory)
        self.x_proj = nn.Linear(
            d_inner, self.dt_rank + 2 * d_state, bias=False, **factory
        )
        self.dt_proj = nn.Linear(self.dt_rank, d_inner, bias=True, **factory)
        dt_std = self.dt_rank**-0.5 * dt_scale
        if dt_init == "constant":
            nn.init.constant_(self.dt_proj.weight, dt_std)
        elif dt_init == "random":
            nn.init.uniform_(self.dt_proj.weight, -dt_std, dt_std)
        else:
            raise ValueError(f"dt_init must be 'random' or 'constant', got {dt_init!r}")
        with torch.no_grad():
            self.dt_proj.bias.copy_(
                init_dt_bias(d_inner, dt_min, dt_max, dt_init_floor, device=device)
            )
        self.dt_proj.bias._no_reinit = True
        A = torch.arange(1, d_state + 1, dtype=torch.float32, device="cpu")
        self.A_log = nn.Parameter(on_device(torch.log(A).repeat(d_inner, 1), device))
        self.A_log._no_weight_decay = True
        self.D = nn.Parameter(torch.ones(d_inner, device=device))
        self.D._no_weight_decay = True
        self.out_proj = nn.Linear(d_inner, d_model, bias=bias, **factory)

    def _forward(self, hidden_states, reverse):
        """Whole sequence at once, or in pieces carrying the states (inference)."""
        batch, length = hidden_states.shape[:2]
        piece = max(1, PIECE_TOKENS // max(batch, 1))
        if not _carries_state(hidden_states) or length <= piece:
            x = hidden_states.flip(1) if reverse else hidden_states
            out = self.mix(x)[0]
            return out.flip(1) if reverse else out
        return self._forward_pieces(hidden_states, piece, reverse)

    def _forward_pieces(self, hidden_states, piece, reverse):
        """Inference over consecutive pieces of time, carrying the states."""
        length = hidden_states.shape[1]
        out = torch.empty_like(hidden_states)
        starts = range(0, length, piece)
        carry = None
        for start in reversed(starts) if reverse else starts:
            part = slice(start, min(start + piece, length))
            x = hidden_states[:, part]
            x = x.flip(1) if reverse else x
            y, carry = self.mix(x, carry)
            out[:, part] = y.flip(1) if reverse else y
        return out

    def mix(self, hidden_states, carry=None):
        """The block's computation, continuing from an optional carry.

        Parameters
        ----------
        hidden_states : torch.Tensor, shape (batch, length, d_model)
            Input (a piece of a sequence).
        carry : tuple of torch.Tensor | None
            ``(conv_history, ssm_state)`` returned for the previous piece;
            None at the start of a sequence. Inference only.

        Returns
        -------
        out : torch.Tensor, shape (batch, length, d_model)
            Output of the piece.
        carry : tuple of torch.Tensor | None
            Carry into the next piece (None under autograd or on CUDA).
        """
        d_inner, weight, bias = self.d_inner, self.in_proj.weight, self.in_proj.bias
        # Two products instead of a split one: x and z come out contiguous.
        x = F.linear(
            hidden_states, weight[:d_inner], None if bias is None else bias[:d_inner]
        )
        z = F.linear(
            hidden_states, weight[d_inner:], None if bias is None else bias[d_inner:]
        )
        history, state = (None, None) if carry is None else carry
        x_in = x
        x = causal_depthwise_conv(x, self.conv1d.weight, self.conv1d.bias, history)
        x = F.silu(x, inplace=True)
        dt, B, C = self.x_proj(x).split(
            [self.dt_rank, self.d_state, self.d_state], dim=-1
        )
        delta = F.linear(dt, self.dt_proj.weight)
        stateful = _carries_state(x)
        if stateful and state is None:
            dtype = torch.promote_types(x.dtype, torch.float32)  # the scan's
            state = x.new_zeros(x.shape[0], self.d_state, d_inner, dtype=dtype)
        y = selective_scan(
            x,
            delta,
            -torch.exp(self.A_log.float()),
            B.contiguous(),
            C.contiguous(),
            D=self.D,
            z=z,
            delta_bias=self.dt_proj.bias,
            delta_softplus=True,
            state=state,
        )
        out = self.out_proj(y.to(hidden_states.dtype))
        if not stateful:
            return out, None
        history = _last_inputs(history, x_in, self.d_conv - 1)
        return out, (history, state)


def _carries_state(x):
    """Whether a pass over ``x`` can carry its state on (CPU inference only)."""
    return not torch.is_grad_enabled() and x.device.type == "cpu"


def _last_inputs(history, x, n):
    """The last ``n`` time steps of ``history`` followed by ``x``."""
    if x.shape[1] < n and history is not None:
        x = torch.cat([history, x], dim=1)
    if x.shape[1] < n:
        x = F.pad(x, (0, 0, n - x.shape[1], 0))
    return x[:, x.shape[1] - n :].clone()
