"""Fused CPU kernel of the Mamba (v1) selective scan, compiled by numba.

For each sample and each block of ``BLOCK`` inner channels, one task walks time
with the ``(d_state, BLOCK)`` state in the L1 cache: decay, state update, the
``C . h`` read-out, the ``D`` skip and the ``silu(z)`` gate happen in one pass,
so nothing of size ``(batch, length, d_inner, d_state)`` is ever written and
every input is read once. The exponential is evaluated in the loop with a
range reduction and a Taylor polynomial (relative error below 2e-7), which the
compiler vectorises; ``math.exp`` would be a scalar library call.

numba installs from PyPI with wheels (no compiler needed). This module needs
it; :mod:`.scan` imports it on the first scan and falls back to its
pure-PyTorch loop when numba is missing. The kernel is compiled on first use
(a few seconds, once: numba caches it on disk); loading numba and the cached
kernel then costs about half a second per process.
"""

import math
import os
import threading

import numba
import numpy as np
import torch

#: Inner channels per task: one task's state (16 x 64 floats) stays in L1.
BLOCK = 64
#: numba's "workqueue" threading layer must not be entered from two threads at
#: once; kernel launches are serialised.
_LAUNCH = threading.Lock()
#: The process whose parallel launches numba's thread pool serves.
_pool_pid = None

#: Floating-point licences of the kernel: fused multiply-adds, reassociation,
#: reciprocals. Not "nnan"/"ninf": a NaN in the input must stay a NaN.
_FASTMATH = {"contract", "reassoc", "nsz", "arcp", "afn"}
_LOG2E = 1.0 / math.log(2.0)
# ln 2 split so that k * _LN2_HI is exact in float32 for |k| < 2**15.
_LN2_HI = 355.0 / 512.0
_LN2_LO = math.log(2.0) - _LN2_HI
# Taylor coefficients 1/2!, ..., 1/7! (|r| <= ln(2)/2 after the range reduction).
_C2, _C3, _C4, _C5, _C6, _C7 = (1.0 / math.factorial(k) for k in range(2, 8))
# Arguments are clamped to this range so 2**k stays a normal float32.
_EXP_MIN, _EXP_MAX = -87.0, 88.0
# log(1 + w) = 2 atanh(s), s = w / (2 + w) <= 1/3: odd series 1/1, 1/3, ..., 1/13.
_ATANH = tuple(1.0 / k for k in range(13, 0, -2))


f32 = numba.float32


@numba.njit(inline="always", fastmath=_FASTMATH)
def _exp_parts(x):
    """exp(x) = poly * 2**k: return ``poly`` and the float32 bits of 2**k."""
    # Written so that NaN passes through (min/max would clamp it).
    x = f32(_EXP_MIN) if x < f32(_EXP_MIN) else x
    x = f32(_EXP_MAX) if x > f32(_EXP_MAX) else x
    k = np.floor(x * f32(_LOG2E) + f32(0.5))
    r = x - k * f32(_LN2_HI) - k * f32(_LN2_LO)
    p = f32(_C7)
    p = p * r + f32(_C6)
    p = p * r + f32(_C5)
    p = p * r + f32(_C4)
    p = p * r + f32(_C3)
    p = p * r + f32(_C2)
    p = (p * r) * r + r + f32(1.0)
    return p, (np.int32(k) + np.int32(127)) << np.int32(23)


@numba.njit(inline="always", fastmath=_FASTMATH)
def _log1p_unit(w):
    """log(1 + w) for 0 <= w <= 1."""
    s = w / (f32(2.0) + w)
    s2 = s * s
    p = f32(_ATANH[0])
    for c in _ATANH[1:]:
        p = p * s2 + f32(c)
    return f32(2.0) * s * p


@numba.njit(inline="always", fastmath=_FASTMATH, error_model="numpy")
def _scan_task(task, u, delta, bias, softplus, At, B, C, D, z, h, y):
    """One sample x one block of channels, in place on ``h`` and ``y``."""
    length, d_inner = u.shape[1:]
    d_state = At.shape[0]
    n_blocks = -(-d_inner // BLOCK)
    b = task // n_blocks
    d0 = (task % n_blocks) * BLOCK
    width = min(BLOCK, d_inner - d0)
    # Local buffers padded to BLOCK with zeros, so the hot loop has a
    # fixed trip count; padded lanes keep a zero state.
    state = np.zeros((d_state, BLOCK), np.float32)
    state[:, :width] = h[b, :, d0 : d0 + width]
    a = np.zeros((d_state, BLOCK), np.float32)
    a[:, :width] = At[:, d0 : d0 + width]
    dt = np.zeros(BLOCK, np.float32)
    du = np.zeros(BLOCK, np.float32)
    acc = np.zeros(BLOCK, np.float32)
    bits = np.empty(BLOCK, np.int32)
    scale = bits.view(np.float32)
    for t in range(length):
        for j in range(width):
            v = delta[b, t, d0 + j] + bias[d0 + j]
            if softplus:  # max(v, 0) + log(1 + exp(-|v|))
                p, bits[j] = _exp_parts(-abs(v))
                v = max(v, f32(0.0)) + _log1p_unit(p * scale[j])
            dt[j] = v
            du[j] = v * u[b, t, d0 + j]
            acc[j] = D[d0 + j] * u[b, t, d0 + j]
        for n in range(d_state):
            bn, cn = B[b, t, n], C[b, t, n]
            an, hn = a[n], state[n]
            for j in range(BLOCK):
                p, bits[j] = _exp_parts(dt[j] * an[j])
                hv = p * scale[j] * hn[j] + bn * du[j]
                hn[j] = hv
                acc[j] += cn * hv
        if z.shape[0] > 0:  # gate
            for j in range(width):
                p, bits[j] = _exp_parts(-z[b, t, d0 + j])
                acc[j] *= z[b, t, d0 + j] / (f32(1.0) + p * scale[j])
        y[b, t, d0 : d0 + width] = acc[:width]
    h[b, :, d0 : d0 + width] = state[:, :width]


@numba.njit(parallel=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
def _scan_parallel(u, delta, bias, softplus, At, B, C, D, z, h, y):
    """All tasks over numba's thread pool."""
    n_tasks = u.shape[0] * -(-u.shape[2] // BLOCK)
    for task in numba.prange(n_tasks):
        _scan_task(task, u, delta, bias, softplus, At, B, C, D, z, h, y)


@numba.njit(fastmath=_FASTMATH, error_model="numpy", cache=True)
def _scan_serial(u, delta, bias, softplus, At, B, C, D, z, h, y):
    """All tasks in the calling thread (one thread, or a forked child)."""
    n_tasks = u.shape[0] * -(-u.shape[2] // BLOCK)
    for task in range(n_tasks):
        _scan_task(task, u, delta, bias, softplus, At, B, C, D, z, h, y)


def _pick(threads):
    """The parallel kernel, or the serial one with 1 thread or after a fork.

    numba's OpenMP thread pool does not survive ``fork()``: a child that
    launched the parallel kernel after its parent had would be terminated.
    """
    global _pool_pid
    pid = os.getpid()
    if threads == 1 or _pool_pid not in (None, pid):
        return _scan_serial
    _pool_pid = pid
    return _scan_parallel


def fused_scan(u, delta, At, B, C, D, z, state, delta_bias=None, delta_softplus=False):
    """Run the fused scan kernel.

    Inference only (no autograd), float32 CPU tensors.

    Parameters
    ----------
    u, delta : torch.Tensor, shape (batch, length, d_inner)
        Input and step sizes.
    At : torch.Tensor, shape (d_state, d_inner)
        Transposed state matrix diagonal.
    B, C : torch.Tensor, shape (batch, length, d_state)
        Input and output projections.
    D : torch.Tensor, shape (d_inner,) | None
        Skip connection.
    z : torch.Tensor, shape (batch, length, d_inner) | None
        Gate; the output is multiplied by ``silu(z)``.
    state : torch.Tensor, shape (batch, d_state, d_inner)
        Initial state (float32, contiguous), overwritten with the final state.
    delta_bias : torch.Tensor, shape (d_inner,) | None
        Added to ``delta``.
    delta_softplus : bool
        Apply softplus to ``delta`` (after the bias).

    Returns
    -------
    y : torch.Tensor, shape (batch, length, d_inner)
        Output.
    """
    y = torch.empty(u.shape, dtype=torch.float32)
    if D is None:
        D = u.new_zeros(u.shape[-1])
    if delta_bias is None:
        delta_bias = u.new_zeros(u.shape[-1])
    if z is None:
        z = u.new_empty(0, 0, 0)
    u, delta, bias, At, B, C, D, z = (
        t.detach().float().contiguous().numpy()
        for t in (u, delta, delta_bias, At, B, C, D, z)
    )
    threads = min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)
    with _LAUNCH:
        numba.set_num_threads(threads)
        _pick(threads)(
            u,
            delta,
            bias,
            bool(delta_softplus),
            At,
            B,
            C,
            D,
            z,
            state.numpy(),
            y.numpy(),
        )
    return y
