"""Time and peak memory of one 22-channel recording encoded in a single pass.

LuMamba-tiny vs LUNA-base on 5 s ... 60 min at 256 Hz, float32, 2 threads. Each
(model, length) runs in a fresh subprocess so that its peak RSS (``ru_maxrss``)
is its own; LUNA stops once it would pass ``--max-gib`` (16 GiB) or
``--max-seconds``. Prints a table and saves ``benchmarks/scaling.png``.

With ``--predict-hours H`` it measures instead ``mne-eegfm predict`` (default
model) on a synthetic H-hour, 22-channel, 500-Hz EDF: wall time and the peak
RSS of the predicting process, which must stay bounded (goal: under 3 GiB for
24 h) because recordings are read and preprocessed in chunks.

With ``--overlap-minutes M`` it measures the peak RSS of ``mne-eegfm predict``
on a synthetic M-minute, 22-channel EDF with ``--overlap 0`` (the baseline) and
``--overlap 0.99``: memory is bounded by the batch, not the overlap (goal: the
0.99 run within 1.5x of the baseline).

Run: ``python benchmarks/scaling.py [--repeats 2] [--threads 2]``,
``python benchmarks/scaling.py --predict-hours 1 24`` or
``python benchmarks/scaling.py --overlap-minutes 10``
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SFREQ = 256
N_CHANNELS = 22
LENGTHS_S = [5, 30, 60, 300, 600, 1200, 1800, 3600]
HERE = Path(__file__).resolve().parent


def worker(name, seconds, repeats, threads):
    """Encode one recording; print time, peak RSS and baseline RSS as JSON."""
    import torch

    from mne_eegfm.models import create_model, scan

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = create_model(name).eval()
    positions = torch.randn(N_CHANNELS, 3) * 0.05
    if "mamba" in name:  # warm-up: the first long scan would load it (~0.6 s)
        scan.load_kernel()
    with torch.inference_mode():
        model.encode(torch.randn(1, N_CHANNELS, 5 * SFREQ), positions)  # warm-up
        x = torch.randn(1, N_CHANNELS, int(seconds * SFREQ))
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            model.encode(x, positions)
            times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(json.dumps({"time_s": min(times), "peak_gib": peak, "base_gib": base}))


def _rss_gib(pid):
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return 0.0


def run_one(name, seconds, args):
    """Run the worker in a fresh interpreter, killing it past ``max_gib``."""
    cmd = [sys.executable, __file__, "--worker", name, str(seconds)]
    cmd += ["--repeats", str(args.repeats), "--threads", str(args.threads)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    killed = []

    def watch():
        while proc.poll() is None:
            if _rss_gib(proc.pid) > args.max_gib:
                killed.append(True)
                proc.kill()
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        out, _ = proc.communicate(timeout=args.max_seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return {"stopped": f"over {args.max_seconds:g} s"}
    if killed:
        return {"stopped": f"over {args.max_gib:g} GiB"}
    if proc.returncode:
        return {"stopped": f"exit code {proc.returncode}"}
    return json.loads(out.strip().splitlines()[-1])


def _predicted_stop(name, previous, seconds, args):
    """Why the next run would pass the limits, or None.

    Extrapolates quadratically for LUNA (attention) and linearly otherwise.
    """
    if previous is None:
        return None
    prev_seconds, prev = previous
    growth = (seconds / prev_seconds) ** (2 if name.startswith("luna") else 1)
    if prev["time_s"] * args.repeats * growth > args.max_seconds:
        return f"predicted over {args.max_seconds:g} s"
    if prev["base_gib"] + (prev["peak_gib"] - prev["base_gib"]) * growth > args.max_gib:
        return f"predicted over {args.max_gib:g} GiB"
    return None


def tile_edf(src, dst, times):
    """Write ``dst``: the header of ``src`` and ``times`` copies of its records."""
    with open(src, "rb") as fid:
        header = bytearray(fid.read(256))
        fid.seek(0)
        header = bytearray(fid.read(int(header[184:192])))
        data = fid.read()
    n_records = int(header[236:244])
    header[236:244] = f"{n_records * times:<8d}".encode()
    with open(dst, "wb") as fid:
        fid.write(header)
        for _ in range(times):
            fid.write(data)


def predict_memory(hours_list, threads):
    """Time and peak RSS of ``mne-eegfm predict`` on synthetic H-hour EDFs."""
    sys.path.insert(0, str(HERE))
    from end_to_end import synth_edf

    script = shutil.which("mne-eegfm")
    cli = [script] if script else [sys.executable, "-m", "mne_eegfm.cli"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    print(f"{'recording':>10}{'file GiB':>10}{'wall s':>9}{'peak RSS GiB':>14}")
    with tempfile.TemporaryDirectory() as tmp:
        hour = synth_edf(Path(tmp) / "hour.edf", 1.0)
        for hours in hours_list:
            fname = Path(tmp) / f"{hours}h.edf"
            tile_edf(hour, fname, hours)
            cmd = [*cli, "predict", str(fname), "--out", str(Path(tmp) / "out")]
            _, wall, peak = measured_run(cmd, env)
            size = fname.stat().st_size / 2**30
            print(f"{hours:>8g} h{size:>10.2f}{wall:>9.1f}{peak:>14.2f}", flush=True)
            fname.unlink()


def measured_run(cmd, env):
    """Run ``cmd`` in a child process; return it, its wall time and peak RSS (GiB)."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--child-rss", *cmd],
        capture_output=True,
        text=True,
        env=env,
    )
    wall = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(proc.stdout + proc.stderr)
    return proc, wall, float(proc.stdout.strip().splitlines()[-1])


STREAM_CODE = """
import sys, torch
from mne_eegfm.inference import run_model
from mne_eegfm.io import read_recording
from mne_eegfm.preprocessing import InputContract
raw = read_recording(sys.argv[1])
out = run_model(lambda x, p: x.mean(dim=(1, 2))[:, None], [raw],
                InputContract(window_s=10.0), overlap=float(sys.argv[2]))
print(len(out.values), file=sys.stderr)
"""


def overlap_memory(minutes, threads, overlaps=(0.0, 0.99), stand_in=False):
    """Peak RSS of ``mne-eegfm predict`` with and without a large overlap.

    With ``stand_in``, the streaming path (:func:`mne_eegfm.inference.run_model`:
    read, preprocess, window, batch) runs with a stand-in model (the mean of
    each window) instead of the encoder: the memory of the windows is measured
    without waiting for thousands of forward passes on a busy CPU.
    """
    sys.path.insert(0, str(HERE))
    from end_to_end import synth_edf

    script = shutil.which("mne-eegfm")
    cli = [script] if script else [sys.executable, "-m", "mne_eegfm.cli"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    print(f"{'overlap':>8}{'windows':>9}{'wall s':>9}{'peak RSS GiB':>14}")
    peaks = []
    with tempfile.TemporaryDirectory() as tmp:
        fname = synth_edf(Path(tmp) / "rec.edf", minutes / 60)
        for overlap in overlaps:
            out = Path(tmp) / f"out-{overlap}"
            cmd = [*cli, "predict", str(fname), "--out", str(out)]
            cmd += ["--overlap", str(overlap)]
            if stand_in:
                cmd = [sys.executable, "-c", STREAM_CODE, str(fname), str(overlap)]
            proc, wall, peak = measured_run(cmd, env)
            peaks.append(peak)
            if stand_in:
                n_windows = int(proc.stderr.strip().splitlines()[-1])
            else:
                table = out / "rec_desc-eegfm_predictions.tsv"
                n_windows = sum(1 for _ in open(table)) - 1
            print(f"{overlap:>8g}{n_windows:>9}{wall:>9.1f}{peaks[-1]:>14.2f}")
    print(
        f"{'stand-in model; ' if stand_in else ''}"
        f"peak RSS, overlap {overlaps[-1]:g} / overlap {overlaps[0]:g}: "
        f"{peaks[-1] / peaks[0]:.2f} (goal <= 1.5; {minutes:g} min of "
        "22-channel EEG, both runs measured now)"
    )


def child_rss(cmd):
    """Run ``cmd`` and print the peak RSS (GiB) of that child process alone."""
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)  # stderr passed on
    print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20)


def plot(results, path, threads=2):
    """Save time and peak-RSS curves of both models."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for name, rows in results.items():
        done = [(s / 60, r) for s, r in rows if "time_s" in r]
        minutes = [m for m, _ in done]
        axes[0].plot(minutes, [r["time_s"] for _, r in done], "o-", label=name)
        axes[1].plot(minutes, [r["peak_gib"] for _, r in done], "o-", label=name)
    axes[0].set(
        xscale="log",
        yscale="log",
        xlabel="recording length (min)",
        ylabel="forward time (s)",
        title=f"time, 22 ch, {threads} thread(s)",
    )
    axes[1].set(
        xscale="log",
        yscale="log",
        xlabel="recording length (min)",
        ylabel="peak RSS (GiB)",
        title="peak memory (process)",
    )
    for ax in axes:
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=2, metavar=("MODEL", "SECONDS"))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-gib", type=float, default=16.0)
    parser.add_argument("--max-seconds", type=float, default=600.0)
    parser.add_argument("--models", nargs="+", default=["lumamba-tiny", "luna-base"])
    parser.add_argument("--lengths", nargs="+", type=float, default=LENGTHS_S)
    parser.add_argument("--plot", default=str(HERE / "scaling.png"))
    parser.add_argument("--predict-hours", nargs="+", type=int)
    parser.add_argument("--overlap-minutes", type=float)
    parser.add_argument("--stand-in-model", action="store_true")
    parser.add_argument("--child-rss", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    if args.overlap_minutes:
        overlap_memory(args.overlap_minutes, args.threads, stand_in=args.stand_in_model)
        return
    if args.child_rss:
        child_rss(args.child_rss)
        return
    if args.predict_hours:
        predict_memory(args.predict_hours, args.threads)
        return
    if args.worker:
        worker(args.worker[0], float(args.worker[1]), args.repeats, args.threads)
        return
    results = {}
    print(f"{'model':<14}{'length':>9}{'time s':>9}{'peak GiB':>10}{'base GiB':>10}")
    print("(peak GiB: process peak RSS; base GiB: RSS before the forward pass)")
    for name in args.models:
        results[name] = []
        previous = None
        for seconds in args.lengths:
            reason = _predicted_stop(name, previous, seconds, args)
            res = {"stopped": reason} if reason else run_one(name, seconds, args)
            previous = (seconds, res)
            results[name].append((seconds, res))
            length = f"{seconds:g} s"
            if "stopped" in res:
                print(f"{name:<14}{length:>9}  stopped: {res['stopped']}", flush=True)
                break
            print(
                f"{name:<14}{length:>9}{res['time_s']:>9.2f}{res['peak_gib']:>10.2f}"
                f"{res['base_gib']:>10.2f}",
                flush=True,
            )
    plot(results, args.plot, args.threads)
    print(f"plot saved to {args.plot}")


if __name__ == "__main__":
    main()
