"""Time the selective scans (Mamba v1 and Mamba-2) on CPU against a Python loop.

The rows: the textbook loop (baseline), the pure-PyTorch in-place loop
(segment-parallel for one long sequence; the fallback without numba), the
fused numba kernel (used at inference once loaded, see
``mne_eegfm.models.scan.load_kernel``) and the autograd pair.

Run: ``python benchmarks/scan.py`` (2 threads; repeats and keeps the minimum,
since other jobs may share the cores). Prints, per size, the time per call of
each formulation, its GFLOP/s, the fraction of this machine's float32 matmul
peak (a large ``torch.mm`` measured in the same run) and the speed-up over the
naive Python time loop. Finally the kernel-loading policy: the cost of
loading numba and the cached kernel in a fresh process against the time it
saves per state update at ``predict``'s shape (30 windows x 32 patches, one
thread), the break-even number of updates (compare with
``mne_eegfm.models.scan.KERNEL_AFTER_UPDATES``) and the net gain on one hour.

FLOP convention for the v1 scan: 7 per (batch, step, channel, state) element
(``delta * A``, ``exp``, ``h * decay``, ``+ delta u B`` (2), ``C . h`` (2)).
For Mamba-2 the same recurrence per (batch, step, head, head_dim, state)
element (with the decay per head) counts 5.
"""

import argparse
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

from mne_eegfm.models.scan import (
    KERNEL_AFTER_UPDATES,
    _ScanFunction,
    chunk_scan,
    load_kernel,
    scan_segments,
)

#: State updates of one hour at 128 Hz through LuMamba-Tiny (10-s windows of
#: 32 patches, d_inner 768, d_state 16, 2 blocks x 2 directions).
UPDATES_PER_HOUR = 360 * 32 * 768 * 16 * 4


def best_time(fn, repeats):
    """Minimum wall time of ``repeats`` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def matmul_peak(repeats):
    """Float32 GFLOP/s of a large square matmul."""
    n = 4096
    a, b = torch.randn(n, n), torch.randn(n, n)
    out = torch.empty(n, n)
    return 2 * n**3 / best_time(lambda: torch.mm(a, b, out=out), repeats) / 1e9


def naive_loop(delta, A, B, C, du):
    """Baseline: one out-of-place update per time step, as a textbook would."""
    h = delta.new_zeros(delta.shape[0], delta.shape[2], A.shape[1])
    ys = []
    for t in range(delta.shape[1]):
        h = torch.exp(delta[:, t, :, None] * A) * h + du[:, t, :, None] * B[:, t, None]
        ys.append(torch.einsum("bdn,bn->bd", h, C[:, t]))
    return torch.stack(ys, dim=1)


def v1_inputs(batch, length, d_inner, d_state):
    delta = F.softplus(torch.randn(batch, length, d_inner) - 3)
    A = -torch.arange(1.0, d_state + 1).repeat(d_inner, 1)
    B, C = torch.randn(batch, length, d_state), torch.randn(batch, length, d_state)
    du = delta * torch.randn(batch, length, d_inner)
    return delta, A, B, C, du


def print_row(size, name, seconds, gflops, fraction, ratio=""):
    print(
        f"{size:<18} {name:<27} {seconds * 1e3:10.2f} {gflops:8.2f} "
        f"{fraction:8.1%} {ratio:>9}",
        flush=True,
    )


def run_v1(batch, length, repeats, with_baseline, peak):
    d_inner, d_state = 768, 16
    delta, A, B, C, du = v1_inputs(batch, length, d_inner, d_state)
    At = A.t()
    flop = 7 * batch * length * d_inner * d_state
    size = f"v1 B={batch} L={length}"
    timings = {}
    with torch.no_grad():
        if with_baseline:
            timings["python loop (baseline)"] = best_time(
                lambda: naive_loop(delta, A, B, C, du), max(1, repeats // 2)
            )
        timings["in-place loop, segments"] = best_time(
            lambda: scan_segments(delta, At, B, C, du), repeats
        )
        u, At_c = du / delta, At.contiguous()
        state = delta.new_zeros(batch, d_state, d_inner)
        fused_scan = load_kernel()
        if fused_scan is not None:
            timings["fused numba kernel"] = best_time(
                lambda: fused_scan(u, delta, At_c, B, C, None, None, state), repeats
            )
    if length <= 1024:
        leaf = delta.clone().requires_grad_()

        def forward_backward():
            _ScanFunction.apply(leaf, At, B, C, du).sum().backward()

        timings["autograd forward+backward"] = best_time(forward_backward, repeats)
    base = timings.get("python loop (baseline)")
    for name, seconds in timings.items():
        gflops = flop / seconds / 1e9
        if name.startswith("autograd"):
            gflops *= 3  # backward is about twice the forward
        ratio = f"{base / seconds:8.1f}x" if base else "       -"
        print_row(size, name, seconds, gflops, gflops / peak, ratio)


def run_v2(batch, length, repeats, peak):
    heads, head_dim, d_state = 12, 64, 128
    x = torch.randn(batch, length, heads, head_dim)
    dt = F.softplus(torch.randn(batch, length, heads) - 3)
    A = -torch.rand(heads) * 15 - 1
    B, C = (
        torch.randn(batch, length, 1, d_state),
        torch.randn(batch, length, 1, d_state),
    )
    flop = 5 * batch * length * heads * head_dim * d_state
    with torch.no_grad():
        seconds = best_time(lambda: chunk_scan(x, dt, A, B, C), repeats)
    gflops = flop / seconds / 1e9
    print_row(f"v2 B={batch} L={length}", "chunked SSD", seconds, gflops, gflops / peak)


def kernel_load_seconds():
    """Seconds a fresh process takes to import numba and load the cached kernel."""
    code = (
        "import time, torch; from mne_eegfm.models.scan import load_kernel; "
        "t = time.perf_counter(); load_kernel(); print(time.perf_counter() - t)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return float(out.stdout.split()[-1])


def kernel_policy(repeats, batch=30, length=32):
    """Load cost vs saving per state update at ``predict``'s shape (one thread)."""
    d_inner, d_state = 768, 16
    delta, A, B, C, du = v1_inputs(batch, length, d_inner, d_state)
    At = A.t().contiguous()
    u, state = du / delta, delta.new_zeros(batch, d_state, d_inner)
    fused_scan = load_kernel()
    if fused_scan is None:
        print("kernel policy: numba is not installed")
        return
    load = min(kernel_load_seconds() for _ in range(3))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with torch.no_grad():
        loop = best_time(lambda: scan_segments(delta, At, B, C, du), repeats)
        kernel = best_time(
            lambda: fused_scan(u, delta, At, B, C, None, None, state), repeats
        )
    torch.set_num_threads(threads)
    saving = (loop - kernel) / (batch * length * d_inner * d_state)
    even = load / saving if saving > 0 else float("inf")
    print(
        f"\nkernel policy (B={batch} L={length}, 1 thread): loop {1e3 * loop:.1f} ms, "
        f"kernel {1e3 * kernel:.1f} ms per call, {1e9 * saving:.2f} ns saved per "
        f"state update; loading numba + the cached kernel in a fresh process "
        f"{load:.2f} s; break-even after {even:.2g} updates (policy: "
        f"{KERNEL_AFTER_UPDATES:.2g}); one hour at 128 Hz through LuMamba-Tiny "
        f"({UPDATES_PER_HOUR:.2g} updates) would gain "
        f"{UPDATES_PER_HOUR * saving - load:+.2f} s by loading it at once"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--long", type=int, default=23040, help="long length")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    peak = matmul_peak(args.repeats)
    print(
        f"threads={args.threads}  float32 matmul peak (4096^2 mm): {peak:.1f} GFLOP/s"
    )
    header = ("size", "formulation", "ms/call", "GFLOP/s", "of peak", "vs loop")
    print(
        f"{header[0]:<18} {header[1]:<27} {header[2]:>10} {header[3]:>8} "
        f"{header[4]:>8} {header[5]:>9}"
    )
    for length in (32, 64, 80):
        run_v1(32, length, args.repeats, True, peak)
    run_v1(1, 2880, args.repeats, True, peak)
    run_v1(1, args.long, max(1, args.repeats // 2), True, peak)
    run_v2(32, 64, args.repeats, peak)
    run_v2(1, args.long, max(1, args.repeats // 2), peak)
    kernel_policy(args.repeats)


if __name__ == "__main__":
    main()
