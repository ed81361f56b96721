"""Throughput of LuMamba-tiny vs LUNA-base (same front end), float32 and bfloat16.

22 channels, 256 Hz, 10-s windows, batch 32, float32, 2 threads. Prints seconds
of EEG processed per second of compute for each model (best of ``--repeats``
runs: the CPU may be shared, so the minimum time is the least disturbed one),
the split between the front end (patch embedding + channel unification) and
the temporal encoder, achieved GFLOP/s and the measured float32 matmul peak.
LuMamba is measured twice: with the pure-PyTorch in-place scan loop (what a
fresh process runs on short windows) and with the fused numba kernel (what it
runs once the kernel is loaded; see ``mne_eegfm.models.scan.load_kernel``).

Both models are then measured in bfloat16 (``mne_eegfm.models.precision``),
against the float32 rows and the bfloat16 matmul peak of the same run, where
the device supports bfloat16 (otherwise the script says why it skips them).

``--sweep 10 40 160 640`` adds the ratio against window length, with the same
seconds of EEG per batch (LUNA's attention is quadratic in the window).
``--device cuda`` runs everything on the GPU (no scan-loop row there).

Run: ``python benchmarks/throughput.py [--repeats 5] [--threads 2] [--device cuda]``
"""

import argparse
import math
import os
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from mne_eegfm.models import create_model, scan
from mne_eegfm.models.precision import (
    precision_context,
    prepare_model,
    resolve_precision,
)

SFREQ = 256
N_CHANNELS = 22


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def best_time(func, repeats, clock=time.perf_counter, device="cpu"):
    """Minimum time of ``func()`` over ``repeats`` runs (after a warm-up).

    ``clock`` is wall time by default; ``time.process_time`` gives CPU time,
    which is less disturbed by other jobs on a shared machine (with 1 thread).
    On a GPU, each run waits for the device to finish.
    """
    func()
    _sync(device)
    times = []
    for _ in range(repeats):
        start = clock()
        func()
        _sync(device)
        times.append(clock() - start)
    return min(times)


def matmul_peak(repeats, dtype=torch.float32, device="cpu"):
    """Matmul GFLOP/s on (2048 x 1024) @ (1024 x 1024) in ``dtype``."""
    a = torch.randn(2048, 1024, device=device, dtype=dtype)
    b = torch.randn(1024, 1024, device=device, dtype=dtype)
    seconds = best_time(lambda: a @ b, repeats * 4, device=device)
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


def measure(name, x, positions, repeats, precision="float32"):
    """Time the front end, the temporal encoder and the whole encode call."""
    device = x.device
    model = prepare_model(create_model(name).to(device), precision, device)

    def timed(func, clock=time.perf_counter):
        return best_time(func, repeats, clock, device)

    with torch.inference_mode(), precision_context(precision, device):
        unified = model.unify(x, positions)[0]
        t_front = timed(lambda: model.unify(x, positions))
        t_temporal = timed(lambda: model.temporal_encode(unified))
        t_total = timed(lambda: model.encode(x, positions))
        t_cpu = timed(lambda: model.encode(x, positions), time.process_time)
    counter = FlopCounterMode(display=False)
    with counter, precision_context(precision, device):
        model.encode(x, positions)
    n_patches = x.shape[2] // model.patch_size
    flops = (
        counter.get_total_flops()
        + scan_flops(model, x.shape[0] * n_patches)
        + attention_flops(model, x.shape[0], n_patches)
    )
    n_params = sum(p.numel() for p in model.parameters())
    return {
        "model": name if precision == "float32" else f"{name} bf16",
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
    """One row per measurement; "% peak" against ``peak`` (GFLOP/s)."""
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


def sweep(window_lengths, eeg_per_batch, repeats, device="cpu"):
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
        x = torch.randn(batch, N_CHANNELS, int(seconds * SFREQ), device=device)
        positions = torch.randn(N_CHANNELS, 3, device=device) * 0.05
        mamba, luna = (
            measure(name, x, positions, repeats)["eeg_s_per_s"]
            for name in ("lumamba-tiny", "luna-base")
        )
        print(
            f"{seconds:>9g}{batch:>7}{mamba:>17.0f}{luna:>14.0f}{mamba / luna:>7.2f}x"
        )


def ratios(rows, baseline, goal):
    """Print the throughput ratio of each row against ``baseline``."""
    for row in rows:
        ratio = row["eeg_s_per_s"] / baseline["eeg_s_per_s"]
        cpu_ratio = baseline["cpu_s"] / row["cpu_s"]
        print(
            f"throughput ratio {row['model']} / {baseline['model']}: {ratio:.2f}x "
            f"(goal >= {goal}); CPU-time ratio {cpu_ratio:.2f}x"
        )


def float32_rows(x, positions, repeats, device):
    """LuMamba (scan loop, then kernel, on CPU) and LUNA-base in float32."""
    rows = []
    kernel = load_s = None
    if device.type == "cpu":
        # First the pure-PyTorch in-place loop (the kernel is not loaded yet,
        # and short scans must not load it), then the fused numba kernel.
        scan.KERNEL_AFTER_UPDATES = math.inf
        rows.append(measure("lumamba-tiny", x, positions, repeats))
        rows[0]["model"] = "lumamba (loop)"
        start = time.perf_counter()
        kernel = scan.load_kernel() is not None
        load_s = time.perf_counter() - start
    if kernel or device.type != "cpu":
        rows.append(measure("lumamba-tiny", x, positions, repeats))
    rows.append(measure("luna-base", x, positions, repeats))
    return rows, load_s


def bfloat16_section(x, positions, repeats, device, fp32_rows, fp32_peak):
    """bfloat16 rows against the float32 rows of the same run, or why not."""
    try:
        resolve_precision("bfloat16", device)
    except ValueError as err:
        print(f"\nbfloat16: not measured: {err}")
        return
    peak = matmul_peak(repeats, torch.bfloat16, device)
    rows = [
        measure(name, x, positions, repeats, "bfloat16")
        for name in ("lumamba-tiny", "luna-base")
    ]
    print(
        f"\nbfloat16 matmul peak: {peak:.1f} GFLOP/s ({peak / fp32_peak:.1f}x float32)"
    )
    print_table(rows, peak)
    for row in rows:
        name = row["model"].replace(" bf16", "")
        base = next(r for r in fp32_rows if r["model"] == name)
        speedup = row["eeg_s_per_s"] / base["eeg_s_per_s"]
        print(
            f"bfloat16 / float32 {name}: {speedup:.2f}x"
            f" (goal >= 3x); {100 * row['gflops'] / peak:.0f}% of the bfloat16 peak"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument(
        "--no-bf16", action="store_true", help="skip the bfloat16 measurements"
    )
    parser.add_argument(
        "--sweep",
        type=float,
        nargs="*",
        metavar="SECONDS",
        help="also print the ratio for these window lengths (same EEG per batch)",
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    n_times = int(args.seconds * SFREQ)
    x = torch.randn(args.batch, N_CHANNELS, n_times, device=device)
    positions = torch.randn(N_CHANNELS, 3, device=device) * 0.05
    peak = matmul_peak(args.repeats, device=device)
    rows, load_s = float32_rows(x, positions, args.repeats, device)
    load = " ".join(f"{v:.1f}" for v in os.getloadavg())
    print(
        f"batch {args.batch} x {N_CHANNELS} ch x {args.seconds:g} s @ {SFREQ} Hz, "
        f"float32, {args.threads} threads, {device}, best of {args.repeats}, "
        f"load average {load}"
    )
    print(f"float32 matmul peak: {peak:.1f} GFLOP/s")
    print_table(rows, peak)
    if load_s is not None:
        print(f"loading numba and the fused scan kernel: {load_s:.2f} s (per process)")
    ratios(rows[:-1], rows[-1], "1.4x")
    if not args.no_bf16:
        bfloat16_section(x, positions, args.repeats, device, rows, peak)
    if args.sweep:
        sweep(args.sweep, args.batch * args.seconds, args.repeats, device)


if __name__ == "__main__":
    main()
