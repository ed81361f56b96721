"""Throughput of LuMamba-tiny vs LUNA-base (same front end) on CPU.

22 channels, 256 Hz, 10-s windows, batch 32, float32, 2 threads. Prints seconds
of EEG processed per second of compute for each model (best of ``--repeats``
runs: the CPU may be shared, so the minimum time is the least disturbed one),
the split between the front end (patch embedding + channel unification) and
the temporal encoder, achieved GFLOP/s and the measured float32 matmul peak.

Run: ``python benchmarks/throughput.py [--repeats 5] [--threads 2]``
"""

import argparse
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from mne_eegfm.models import create_model

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
    n_tokens = x.shape[0] * x.shape[2] // model.patch_size
    flops = counter.get_total_flops() + scan_flops(model, n_tokens)
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    n_times = int(args.seconds * SFREQ)
    x = torch.randn(args.batch, N_CHANNELS, n_times)
    positions = torch.randn(N_CHANNELS, 3) * 0.05
    peak = matmul_peak(args.repeats)
    rows = [
        measure(name, x, positions, args.repeats)
        for name in ("lumamba-tiny", "luna-base")
    ]
    print(
        f"batch {args.batch} x {N_CHANNELS} ch x {args.seconds:g} s @ {SFREQ} Hz, "
        f"float32, {args.threads} threads, best of {args.repeats}"
    )
    print(f"float32 matmul peak: {peak:.1f} GFLOP/s")
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
    ratio = rows[0]["eeg_s_per_s"] / rows[1]["eeg_s_per_s"]
    print(f"throughput ratio lumamba-tiny / luna-base: {ratio:.2f}x (goal >= 2x)")
    cpu_ratio = rows[1]["cpu_s"] / rows[0]["cpu_s"]
    print(f"CPU-time ratio luna-base / lumamba-tiny: {cpu_ratio:.2f}x")


if __name__ == "__main__":
    main()
