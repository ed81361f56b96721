"""Throughput of LuMamba-tiny vs LUNA-base (same front end) on CPU.

22 channels, 256 Hz, 10-s windows, batch 32, float32, 2 threads. Prints seconds
of EEG processed per second of compute for each model (best of ``--repeats``
runs: the CPU may be shared, so the minimum time is the least disturbed one),
the split between the front end (patch embedding + channel unification) and
the temporal encoder, achieved GFLOP/s and the measured float32 matmul peak.
LuMamba is measured twice: with the pure-PyTorch in-place scan loop (what a
fresh process runs on short windows) and with the fused numba kernel (what it
runs once the kernel is loaded; see ``mne_eegfm.models.scan.load_kernel``).

``--sweep 10 40 160 640`` adds the ratio against window length, with the same
seconds of EEG per batch (LUNA's attention is quadratic in the window).

Run: ``python benchmarks/throughput.py [--repeats 5] [--threads 2]``
"""

import argparse
import math
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from mne_eegfm.models import create_model, scan

SFREQ = 256
N_CHANNELS = 22


def best_time(func, repeats, clock=time.perf_counter):
    """Minimum time of ``func()`` over ``repeats`` runs (after a warm-up).

    ``clock`` is wall time by default; ``time.process_time`` gives CPU time,
    which is less disturbed by other jobs on a shared machine (with 1 thread).
    """
    func()
    times = []
    for _ in range(repeats):
        start = clock()
        func()
        times.append(clock() - start)
    return min(times)


def matmul_peak(repeats):
    """Float32 matmul GFLOP/s on (2048 x 1024) @ (1024 x 1024)."""
    a, b = torch.randn(2048, 1024), torch.randn(1024, 1024)
    seconds = best_time(lambda: a @ b, repeats * 4)
    return 2 * 2048 * 1024 * 1024 / seconds / 1e9


def scan_flops(model, n_tokens):
    """Rough FLOPs of the selective scans (not seen by the FLOP counter)."""
    total = 0
    for module in model.modules():
        if hasattr(module, "d_inner") and hasattr(module, "d_state"):
            total += 8 * module.d_inner * module.d_state * n_tokens
    return total


def attention_flops(model, batch, n_patches):
    """FLOPs of the temporal self-attention (CPU SDPA is not counted).

    ``Q K^T`` and ``A V``: 2 x 2 x S^2 x D per sample and layer.
    """
    layers = [m for m in model.modules() if type(m).__name__ == "RotaryAttention"]
    return sum(4 * batch * n_patches**2 * m.qkv_proj.in_features for m in layers)


def measure(name, x, positions, repeats):
    """Time the front end, the temporal encoder and the whole encode call."""
    model = create_model(name).eval()
    with torch.inference_mode():
        unified = model.unify(x, positions)[0]
        t_front = best_time(lambda: model.unify(x, positions), repeats)
        t_temporal = best_time(lambda: model.temporal_encode(unified), repeats)
        t_total = best_time(lambda: model.encode(x, positions), repeats)
        t_cpu = best_time(
            lambda: model.encode(x, positions), repeats, time.process_time
        )
    counter = FlopCounterMode(display=False)
    with counter:
        model.encode(x, positions)
    n_patches = x.shape[2] // model.patch_size
    flops = (
        counter.get_total_flops()
        + scan_flops(model, x.shape[0] * n_patches)
        + attention_flops(model, x.shape[0], n_patches)
    )
    n_params = sum(p.numel() for p in model.parameters())
    return {
        "model": name,
        "params_M": n_params / 1e6,
        "front_s": t_front,
        "temporal_s": t_temporal,
        "total_s": t_total,
        "cpu_s": t_cpu,
        "eeg_s_per_s": x.shape[0] * x.shape[2] / SFREQ / t_total,
        "gflop": flops / 1e9,
        "gflops": flops / t_total / 1e9,
    }


def print_table(rows, peak):
    header = (
        f"{'model':<14}{'params':>8}{'front s':>9}{'temporal s':>11}{'total s':>9}"
        f"{'CPU s':>8}"
        f"{'EEG s/s':>10}{'GFLOP':>8}{'GFLOP/s':>9}{'% peak':>8}"
    )
    print(header)
    for r in rows:
        print(
            f"{r['model']:<14}{r['params_M']:>7.2f}M{r['front_s']:>9.3f}"
            f"{r['temporal_s']:>11.3f}{r['total_s']:>9.3f}{r['cpu_s']:>8.3f}"
            f"{r['eeg_s_per_s']:>10.0f}"
            f"{r['gflop']:>8.1f}{r['gflops']:>9.1f}{100 * r['gflops'] / peak:>7.0f}%"
        )


def sweep(window_lengths, eeg_per_batch, repeats):
    """Ratio against window length, at a constant amount of EEG per batch."""
    print(
        f"\nwindow length sweep ({eeg_per_batch:g} s of EEG per batch, "
        f"{N_CHANNELS} ch @ {SFREQ} Hz)"
    )
    print(
        f"{'window s':>9}{'batch':>7}{'lumamba EEG s/s':>17}{'luna EEG s/s':>14}"
        f"{'ratio':>8}"
    )
    for seconds in window_lengths:
        batch = max(1, round(eeg_per_batch / seconds))
        x = torch.randn(batch, N_CHANNELS, int(seconds * SFREQ))
        positions = torch.randn(N_CHANNELS, 3) * 0.05
        mamba, luna = (
            measure(name, x, positions, repeats)["eeg_s_per_s"]
            for name in ("lumamba-tiny", "luna-base")
        )
        print(
            f"{seconds:>9g}{batch:>7}{mamba:>17.0f}{luna:>14.0f}{mamba / luna:>7.2f}x"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--sweep",
        type=float,
        nargs="*",
        metavar="SECONDS",
        help="also print the ratio for these window lengths (same EEG per batch)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    n_times = int(args.seconds * SFREQ)
    x = torch.randn(args.batch, N_CHANNELS, n_times)
    positions = torch.randn(N_CHANNELS, 3) * 0.05
    peak = matmul_peak(args.repeats)
    # First the pure-PyTorch in-place loop (the kernel is not loaded yet, and
    # short scans must not load it), then the fused numba kernel.
    scan.KERNEL_AFTER_UPDATES = math.inf
    rows = [measure("lumamba-tiny", x, positions, args.repeats)]
    rows[0]["model"] = "lumamba (loop)"
    start = time.perf_counter()
    kernel = scan.load_kernel() is not None
    load_s = time.perf_counter() - start
    if kernel:
        rows.append(measure("lumamba-tiny", x, positions, args.repeats))
    rows.append(measure("luna-base", x, positions, args.repeats))
    print(
        f"batch {args.batch} x {N_CHANNELS} ch x {args.seconds:g} s @ {SFREQ} Hz, "
        f"float32, {args.threads} threads, best of {args.repeats}"
    )
    print(f"float32 matmul peak: {peak:.1f} GFLOP/s")
    print_table(rows, peak)
    if kernel:
        print(f"loading numba and the fused scan kernel: {load_s:.2f} s (per process)")
    for row in rows[:-1]:
        ratio = row["eeg_s_per_s"] / rows[-1]["eeg_s_per_s"]
        cpu_ratio = rows[-1]["cpu_s"] / row["cpu_s"]
        print(
            f"throughput ratio {row['model']} / luna-base: {ratio:.2f}x "
            f"(goal >= 2x); CPU-time ratio {cpu_ratio:.2f}x"
        )
    if args.sweep:
        sweep(args.sweep, args.batch * args.seconds, args.repeats)


if __name__ == "__main__":
    main()
