"""Selective scans of Mamba (v1) and Mamba-2 in pure PyTorch, with CUDA fast paths.

Sequences are ``(batch, length, channels)``. The recurrence, per channel ``d`` and
state ``n``::

    h[t] = exp(delta[t, d] * A[d, n]) * h[t - 1] + delta[t, d] * B[t, n] * u[t, d]
    y[t, d] = sum_n C[t, n] * h[t, n, d] + D[d] * u[t, d]

At inference on CPU in float32, the fused numba kernel of :mod:`.scan_kernel`
runs the whole recurrence (with the ``D`` skip and the gate) in one pass. Its
pure-PyTorch fallback, used when numba is missing and for float64, walks
time with a handful of in-place operations on one
``(batch, d_state, d_inner)`` state that stays in cache, so the
``(batch, length, d_inner, d_state)`` tensor is never materialised. When the
batch is too small to fill the cores (one long recording), the sequence is cut
into segments that are scanned side by side from a zero state; a short
recurrence over the segment ends then gives each segment its true initial
state, whose (decaying) contribution is added in a second sweep. Every decay
factor is a product of ``exp(delta * A) <= 1``, so nothing can overflow and the
result equals the sequential recurrence up to float32 rounding.

With autograd, the v1 scan keeps the state of every step (``length * batch *
d_state * d_inner`` values) and a reverse sweep computes the gradients
(:class:`_ScanFunction`); inference under ``torch.no_grad()`` keeps none.

Mamba-2 has one decay per head, so its scan is written in the chunked "SSD"
form: masked matmuls inside chunks, chunk-end states, and a short recurrence
across chunks (:func:`chunk_scan`), differentiable by plain autograd.

On CUDA tensors with mamba-ssm installed, both dispatch to its kernels.
"""

import importlib.util
import warnings
from functools import cache

import torch
import torch.nn.functional as F

from .._docs import fill_doc
from .precision import float32_region

#: Number of state values updated per step that keeps the cores busy while the
#: state (plus one temporary) still fits in the L2 caches.
TARGET_STATE_SIZE = 2**18
#: Shortest segment worth scanning separately.
MIN_SEGMENT_LENGTH = 64


#: Loading the fused numba kernel costs about 0.6 s per process (plus a few
#: seconds to compile it the very first time), so the in-place loop runs short
#: scans until the kernel pays for itself: a sequence at least this long loads
#: it at once...
KERNEL_MIN_LENGTH = 256
#: ...and so do short scans once this many state updates (batch x length x
#: d_inner x d_state) were run by the loop, about what it loses to the kernel
#: in the kernel's loading time (0.5 ns per update). E.g. two hours of 10-s
#: windows at 128 Hz through LuMamba-Tiny.
KERNEL_AFTER_UPDATES = 1e9
_loop_updates = 0  # state updates run by the loop in this process


@cache
def load_kernel():
    """Load the fused CPU scan kernel now.

    Afterwards every float32 CPU scan at inference uses it. Long sequences
    (``KERNEL_MIN_LENGTH`` steps or more) load it by themselves; call this
    before scanning many short windows in one process.

    Returns
    -------
    fused_scan : callable | None
        The kernel's entry point, or None when numba is not installed (the
        pure-PyTorch loop is then used, with the same results).
    """
    if importlib.util.find_spec("numba") is None:
        return None  # the pure-PyTorch loop takes over
    try:
        from .scan_kernel import fused_scan

        # Compile it (or load it from numba's disk cache) now, on a tiny scan.
        tiny = torch.ones(1, 1, 1)
        fused_scan(tiny, tiny, -tiny[0], tiny, tiny, None, None, torch.zeros(1, 1, 1))
    except Exception as err:  # e.g. a broken numba, or no writable cache
        warnings.warn(
            f"The fused scan kernel could not be loaded ({type(err).__name__}: "
            f"{err}); the pure-PyTorch scan runs instead (same results, slower).",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    return fused_scan


def _pick_kernel(length, updates):
    """The fused kernel for a scan of ``length`` steps, or None for the loop."""
    global _loop_updates
    if (
        length >= KERNEL_MIN_LENGTH
        or _loop_updates >= KERNEL_AFTER_UPDATES
        or load_kernel.cache_info().currsize
    ):
        return load_kernel()
    _loop_updates += updates
    return None


@cache
def _mamba_ssm_scan():
    """Return mamba-ssm's ``selective_scan_fn`` or None when it is not installed."""
    try:
        from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
    except ImportError:
        return None
    return selective_scan_fn


def selective_scan(
    u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, state=None
):
    """Run the Mamba (v1) selective scan in float32.

    Parameters
    ----------
    u : torch.Tensor, shape (batch, length, d_inner)
        Input sequence.
    delta : torch.Tensor, shape (batch, length, d_inner)
        Step sizes (before ``delta_bias`` and softplus).
    A : torch.Tensor, shape (d_inner, d_state)
        State matrix diagonal (negative).
    B : torch.Tensor, shape (batch, length, d_state)
        Input projection of the state.
    C : torch.Tensor, shape (batch, length, d_state)
        Output projection of the state.
    D : torch.Tensor, shape (d_inner,) | None
        Skip connection.
    z : torch.Tensor, shape (batch, length, d_inner) | None
        Gate; the output is multiplied by ``silu(z)``.
    delta_bias : torch.Tensor, shape (d_inner,) | None
        Added to ``delta`` before the softplus.
    delta_softplus : bool
        Apply softplus to ``delta``.
    state : torch.Tensor, shape (batch, d_state, d_inner) | None
        Inference only (no autograd, CPU): the state before the first step,
        contiguous and in the scan's dtype, overwritten with the state after
        the last step, so a long sequence can be scanned in consecutive
        pieces. None starts from zero.

    Returns
    -------
    y : torch.Tensor, shape (batch, length, d_inner)
        Output in float32 (float64 for float64 inputs), also under autocast.
    """
    with float32_region(u):
        return _selective_scan(
            u, delta, A, B, C, D, z, delta_bias, delta_softplus, state
        )


def _selective_scan(u, delta, A, B, C, D, z, delta_bias, delta_softplus, state):
    """:func:`selective_scan` with autocast off."""
    fused = _mamba_ssm_scan() if u.is_cuda and state is None else None
    if fused is not None:
        y = fused(
            *(t.transpose(1, 2) for t in (u, delta)),
            A.float(),
            *(t.transpose(1, 2) for t in (B, C)),
            D=None if D is None else D.float(),
            z=None if z is None else z.transpose(1, 2),
            delta_bias=None if delta_bias is None else delta_bias.float(),
            delta_softplus=delta_softplus,
        )
        return y.transpose(1, 2).float()
    dtype = torch.promote_types(u.dtype, torch.float32)
    u, delta, A, B, C = (t.to(dtype) for t in (u, delta, A, B, C))
    At = A.t().contiguous()
    inputs = (u, delta, A, B, C, D, z, delta_bias)
    grad = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in inputs
    )
    if grad and state is not None:
        raise ValueError("state is for inference only (under torch.no_grad())")
    fused = None
    if not grad and dtype == torch.float32 and u.device.type == "cpu":
        fused = _pick_kernel(u.shape[1], u.numel() * At.shape[0])
    if fused is not None:
        if state is None:
            state = u.new_zeros(u.shape[0], *At.shape)
        return fused(u, delta, At, B, C, D, z, state, delta_bias, delta_softplus)
    if delta_bias is not None:
        delta = delta + delta_bias.to(dtype)
    if delta_softplus:
        delta = F.softplus(delta)
    if grad:
        y = _ScanFunction.apply(delta, At, B, C, delta * u)
        if D is not None:
            y = torch.addcmul(y, u, D.to(dtype))
        if z is not None:
            y = y * F.silu(z.to(dtype))
        return y
    # No autograd: finish in place on the scan's own output buffer.
    y = scan_segments(delta, At, B, C, delta * u, state=state)
    if D is not None:
        y.addcmul_(u, D.to(dtype))
    if z is not None:
        y.mul_(F.silu(z.to(dtype)))
    return y


@fill_doc
def scan_loop(delta, At, B, C, du, states=None, h=None):  # noqa: D417 (docdict)
    """Sequential scan, in place on one cached state.

    Parameters
    ----------
    %(scan_input)s
    states : torch.Tensor, shape (length, batch, d_state, d_inner) | None
        If given, filled with the state after every step (for the backward).
    h : torch.Tensor, shape (batch, d_state, d_inner) | None
        Initial state, updated in place (without ``states``); None is zero.

    Returns
    -------
    y : torch.Tensor, shape (length, batch, d_inner)
        ``C . h`` at every step, time-major.
    h : torch.Tensor, shape (batch, d_state, d_inner)
        Final state.
    """
    batch, length, d_inner = delta.shape
    if h is None:
        h = delta.new_zeros(batch, At.shape[0], d_inner)
    decay = torch.empty_like(h)
    y = delta.new_empty(length, batch, 1, d_inner)
    for t in range(length):
        torch.mul(delta[:, t, None], At, out=decay)
        decay.exp_()
        if states is None:
            h.mul_(decay)
        else:
            h = torch.mul(h, decay, out=states[t])
        h.addcmul_(B[:, t, :, None], du[:, t, None])
        torch.bmm(C[:, t, None], h, out=y[t])
    return y.squeeze(2), h


def _add_initial_state(y, delta, At, C, h0):
    """Add to ``y`` (time-major) the contribution of the initial states ``h0``."""
    decay = torch.empty_like(h0)
    y = y.unsqueeze(2)
    for t in range(y.shape[0]):
        torch.mul(delta[:, t, None], At, out=decay)
        decay.exp_()
        h0.mul_(decay)
        y[t].baddbmm_(C[:, t, None], h0)


def _n_segments(batch, length, state_size):
    """Segments per sequence: enough state values per step, divisors preferred."""
    wanted = TARGET_STATE_SIZE // (batch * state_size)
    wanted = max(1, min(wanted, length // MIN_SEGMENT_LENGTH))
    for n_segments in range(wanted, (wanted - 1) // 2, -1):
        if length % n_segments == 0:
            return n_segments
    return wanted


@fill_doc
def scan_segments(delta, At, B, C, du, n_segments=None, state=None):  # noqa: D417 (docdict)
    """Scan without autograd, in segments side by side when the batch is small.

    Parameters
    ----------
    %(scan_input)s
    n_segments : int | None
        Segments per sequence (None: chosen from the sizes).
    state : torch.Tensor | None
        The ``(batch, d_state, d_inner)`` initial state, overwritten with the
        final one; None is zero.

    Returns
    -------
    y : torch.Tensor, shape (batch, length, d_inner)
        ``C . h`` at every step.
    """
    batch, length, d_inner = delta.shape
    At = At.contiguous()
    if n_segments is None:
        n_segments = _n_segments(batch, length, At.numel())
    if n_segments == 1:
        return scan_loop(delta, At, B, C, du, h=state)[0].transpose(0, 1)
    seg_len = -(-length // n_segments)
    pad = n_segments * seg_len - length

    def split(x):
        # (batch, length, c) -> (batch * n_segments, seg_len, c), zero-padded.
        if pad:
            x = F.pad(x, (0, 0, 0, pad))
        return x.reshape(batch * n_segments, seg_len, -1)

    delta_s, B_s, C_s, du_s = (split(t) for t in (delta, B, C, du))
    y, h_end = scan_loop(delta_s, At, B_s, C_s, du_s)
    # Short recurrence over segments: state entering each segment.
    total = torch.exp(delta_s.sum(1)[:, None] * At)
    h_end = h_end.view(batch, n_segments, *h_end.shape[1:])
    total = total.view_as(h_end)
    h0 = torch.zeros_like(h_end)
    if state is not None:
        h0[:, 0] = state
    for k in range(1, n_segments):
        torch.addcmul(h_end[:, k - 1], total[:, k - 1], h0[:, k - 1], out=h0[:, k])
    # Decays each segment's initial state in place to its end.
    _add_initial_state(y, delta_s, At, C_s, h0.view(-1, *h0.shape[2:]))
    if state is not None:
        torch.add(h_end[:, -1], h0[:, -1], out=state)
    y = y.transpose(0, 1).reshape(batch, n_segments * seg_len, d_inner)
    return y[:, :length]


class _ScanFunction(torch.autograd.Function):
    """Differentiable scan: states saved in the forward, reverse sweep backward."""

    @staticmethod
    def forward(ctx, delta, At, B, C, du):
        with float32_region(delta):
            return _ScanFunction._forward(ctx, delta, At, B, C, du)

    @staticmethod
    def _forward(ctx, delta, At, B, C, du):
        At = At.contiguous()
        batch, length, d_inner = delta.shape
        states = delta.new_empty(length, batch, At.shape[0], d_inner)
        y, _ = scan_loop(delta, At, B, C, du, states=states)
        ctx.save_for_backward(delta, At, B, C, du, states)
        return y.transpose(0, 1)

    @staticmethod
    def backward(ctx, dy):
        with float32_region(dy):
            return _ScanFunction._backward(ctx, dy)

    @staticmethod
    def _backward(ctx, dy):
        delta, At, B, C, du, states = ctx.saved_tensors
        delta, B, C, du, dy = (t.transpose(0, 1) for t in (delta, B, C, du, dy))
        g = torch.zeros_like(states[0])  # gradient with respect to the state
        decay, q = torch.empty_like(g), torch.empty_like(g)
        # Time-major contiguous gradients, filled one step at a time.
        d_delta, d_du = delta.new_zeros(delta.shape), du.new_empty(du.shape)
        d_B, d_C = B.new_empty(B.shape), C.new_empty(C.shape)
        d_At = torch.zeros_like(g)
        for t in range(delta.shape[0] - 1, -1, -1):
            g.addcmul_(C[t, :, :, None], dy[t, :, None])
            torch.bmm(states[t], dy[t, :, :, None], out=d_C[t, :, :, None])
            torch.bmm(g, du[t, :, :, None], out=d_B[t, :, :, None])
            torch.bmm(B[t, :, None], g, out=d_du[t, :, None])
            torch.mul(delta[t, :, None], At, out=decay)
            decay.exp_()
            if t > 0:
                # q: gradient with respect to delta[t] * At (the exponent).
                torch.mul(g, states[t - 1], out=q)
                q.mul_(decay)
                d_At.addcmul_(q, delta[t, :, None])
                torch.sum(q.mul_(At), dim=1, out=d_delta[t])
            g.mul_(decay)
        d_delta, d_B, d_C, d_du = (t.transpose(0, 1) for t in (d_delta, d_B, d_C, d_du))
        return d_delta, d_At.sum(0), d_B, d_C, d_du


@cache
def _mamba_ssm_chunk_scan():
    """Return mamba-ssm's ``mamba_chunk_scan_combined`` or None."""
    try:
        from mamba_ssm.ops.triton.ssd_combined import mamba_chunk_scan_combined
    except ImportError:
        return None
    return mamba_chunk_scan_combined


def chunk_scan(x, dt, A, B, C, chunk_size=64, D=None, dt_bias=None, dt_softplus=False):
    """Run the Mamba-2 (SSD) scan in its chunked matmul form.

    Parameters
    ----------
    x : torch.Tensor, shape (batch, length, n_heads, head_dim)
        Input sequence.
    dt : torch.Tensor, shape (batch, length, n_heads)
        Step sizes (before ``dt_bias`` and softplus).
    A : torch.Tensor, shape (n_heads,)
        Negative decay rate of each head.
    B, C : torch.Tensor, shape (batch, length, n_groups, d_state)
        Input and output projections; head ``h`` uses group
        ``h // (n_heads // n_groups)``.
    chunk_size : int
        Chunk length of the intra-chunk matmuls.
    D : torch.Tensor, shape (n_heads,) | (n_heads, head_dim) | None
        Skip connection.
    dt_bias : torch.Tensor, shape (n_heads,) | None
        Added to ``dt`` before the softplus.
    dt_softplus : bool
        Apply softplus to ``dt``.

    Returns
    -------
    y : torch.Tensor, shape (batch, length, n_heads, head_dim)
        Output in float32 (float64 for float64 inputs), also under autocast.
    """
    with float32_region(x):
        return _chunk_scan(x, dt, A, B, C, chunk_size, D, dt_bias, dt_softplus)


def _chunk_scan(x, dt, A, B, C, chunk_size, D, dt_bias, dt_softplus):
    """:func:`chunk_scan` with autocast off."""
    fused = _mamba_ssm_chunk_scan() if x.is_cuda else None
    if fused is not None:
        y = fused(
            x,
            dt,
            A.float(),
            B,
            C,
            chunk_size,
            D=D,
            dt_bias=dt_bias,
            dt_softplus=dt_softplus,
        )
        return y.float()
    dtype = torch.promote_types(x.dtype, torch.float32)
    x, dt, A, B, C = (t.to(dtype) for t in (x, dt, A, B, C))
    if dt_bias is not None:
        dt = dt + dt_bias.to(dtype)
    if dt_softplus:
        dt = F.softplus(dt)
    y = _ssd(x, dt, A, B, C, chunk_size)
    if D is not None:
        D = D.to(dtype)
        y = y + x * (D[:, None] if D.dim() == 1 else D)
    return y


def _ssd(x, dt, A, B, C, chunk_size):
    batch, length, n_heads, head_dim = x.shape
    n_groups, d_state = B.shape[2:]
    per_group = n_heads // n_groups
    q = min(chunk_size, length)
    n_chunks = -(-length // q)
    pad = n_chunks * q - length
    # Zero padding at the end: dt = 0 leaves the state unchanged and adds nothing.
    x, dt, B, C = (
        F.pad(t, (0,) * (2 * t.dim() - 4) + (0, pad)).unflatten(1, (n_chunks, q))
        for t in (x, dt, B, C)
    )
    log_decay = torch.cumsum(dt * A, dim=2)  # (batch, chunk, q, head)
    # Intra-chunk: y[t] = sum_{s <= t} (C_t . B_s) exp(cum[t] - cum[s]) dt_s x_s.
    cum = log_decay.transpose(2, 3)  # (batch, chunk, head, q)
    diff = cum[..., :, None] - cum[..., None, :]
    causal = torch.ones(q, q, dtype=torch.bool, device=x.device).tril()
    weights = torch.exp(diff.masked_fill(~causal, -torch.inf))
    weights = weights * dt.transpose(2, 3)[..., None, :]
    cb = torch.einsum("bctgn,bcsgn->bcgts", C, B)
    weights = (weights.unflatten(2, (n_groups, per_group)) * cb[:, :, :, None]).flatten(
        2, 3
    )
    y = torch.einsum("bchts,bcshp->bcthp", weights, x)
    # State reached at the end of each chunk from a zero state.
    to_end = torch.exp(log_decay[:, :, -1:] - log_decay) * dt
    xg = (x * to_end[..., None]).unflatten(3, (n_groups, per_group))
    states = torch.einsum("bcsgjp,bcsgn->bcgjpn", xg, B)
    # Short recurrence across chunks for the state entering each chunk.
    chunk_decay = torch.exp(log_decay[:, :, -1])[..., None, None]
    chunk_decay = chunk_decay.unflatten(2, (n_groups, per_group))
    state = torch.zeros_like(states[:, 0])
    entering = []
    for c in range(n_chunks):
        entering.append(state)
        state = chunk_decay[:, c] * state + states[:, c]
    entering = torch.stack(entering, dim=1)
    y_prev = torch.einsum("bctgn,bcgjpn->bctgjp", C, entering).flatten(3, 4)
    y = y + y_prev * torch.exp(log_decay)[..., None]
    return y.flatten(1, 2)[:, :length]
