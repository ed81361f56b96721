"""End-to-end speed of ``mne-eegfm predict`` on a 1-hour, 22-channel, 500-Hz EDF.

Goal (issue 5): at most 8 s wall time on 2 cores, reading and preprocessing
included. The script

1. writes a synthetic 1-hour 22-channel 500-Hz EDF (pink-ish noise + alpha, in
   microvolts) to a temporary folder;
2. times ``mne-eegfm predict FILE`` as a real subprocess (wall time, Python
   start-up and imports included);
3. runs the same prediction in-process under cProfile and prints where the time
   goes (read, filter + resample, normalise, model, write);
4. times MNE's default pipeline on the same hour as the baseline: read with
   preload, ``raw.filter(0.1, 75)``, ``raw.notch_filter(50)``,
   ``raw.resample(256)``.

Run: ``python benchmarks/end_to_end.py [--hours 1] [--threads 2] [--model NAME]``.
Without the shipped classifier, a random-weight LuMamba-Tiny with the same
architecture (same cost) is used.

Whole datasets (issue 13, goal 4): ``--bids DIR [--limit N]`` times
``mne-eegfm predict DIR --n-jobs -1`` over every recording (or the first N
subjects; ``--n-jobs`` sets predict's) as a real subprocess and prints wall
time and hours of EEG per minute; then, in the same run, the same work done
by hand the way a user would without this package: read each file with MNE
(preload), MNE's default FIR ``raw.filter(0.1, 75)`` (no low-pass where 75 Hz
is above Nyquist) and ``raw.resample`` to the model's rate (128 Hz for the
shipped classifier: the Guinea-Bissau files need none), 10-s windows z-scored
per channel, the same model called window by window from Python. Finally
the same ``predict`` again over the finished outputs (the re-run time; goal
<= 2 s for the whole dataset).
Goals for the 97 Guinea-Bissau recordings (8.4 h): <= 60 s wall and >= 3x
the hand-made pipeline.
"""

import argparse
import cProfile
import os
import pstats
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CH_NAMES = (
    "Fp1 Fp2 F7 F3 Fz F4 F8 T7 C3 Cz C4 T8 P7 P3 Pz P4 P8 O1 Oz O2 FC1 FC2".split()
)
SFREQ = 500.0


def synth_edf(fname, hours, seed=0):
    """Write a synthetic recording as EDF (float data in volts, stored in uV)."""
    import mne
    from scipy.signal import lfilter

    rng = np.random.default_rng(seed)
    n_times = int(hours * 3600 * SFREQ)
    data = np.empty((len(CH_NAMES), n_times))
    t = np.arange(n_times) / SFREQ
    alpha = np.sin(2 * np.pi * 10.0 * t)
    for k in range(len(CH_NAMES)):
        white = rng.standard_normal(n_times)
        brown = lfilter([0.03], [1, -0.97], white)  # 1/f-like background
        data[k] = (15 * brown / brown.std() + 5 * white + 8 * alpha) * 1e-6
    info = mne.create_info(CH_NAMES, SFREQ, "eeg")
    raw = mne.io.RawArray(data, info, verbose=False)
    mne.export.export_raw(fname, raw, fmt="edf", verbose=False)
    return fname


def random_classifier(folder):
    """A random-weight LuMamba-Tiny classifier file (same cost as the shipped one)."""
    import torch

    from mne_eegfm.checkpoints import save_model
    from mne_eegfm.models import create_model
    from mne_eegfm.preprocessing import InputContract

    torch.manual_seed(0)
    net = create_model("lumamba-tiny", n_outputs=2, head="query")
    card = {"name": "lumamba-tiny-random", "labels": ["Control", "Epilepsy"]}
    return save_model(
        net, Path(folder) / "random-clf", contract=InputContract(), card=card
    )


def pick_model(requested, folder):
    from mne_eegfm.checkpoints import DATA_DIR, DEFAULT_CLASSIFIER, REGISTRY

    if requested:
        return requested
    if (DATA_DIR / REGISTRY[DEFAULT_CLASSIFIER].filename).is_file():
        return DEFAULT_CLASSIFIER
    return str(random_classifier(folder))


def time_subprocess(fname, model, out, threads):
    script = shutil.which("mne-eegfm")
    cmd = [script] if script else [sys.executable, "-m", "mne_eegfm.cli"]
    cmd += ["predict", str(fname), "--model", model, "--out", str(out), "--overwrite"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(proc.stdout + proc.stderr)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "import torch, mne, mne_eegfm.cli, scipy.signal"],
        check=True,
        env=env,
    )
    imports = time.perf_counter() - start
    return wall, imports


# cProfile entries (file name end, function) -> stage; chosen not to nest.
STAGES = {
    "read (decode EDF)": [("mne/io/base.py", "_read_segment")],
    "filter + resample (one FFT)": [
        ("mne_eegfm/preprocessing/filtering.py", "_filter_resample")
    ],
    "normalise windows": [("mne_eegfm/preprocessing/windows.py", "normalize_windows")],
    "model": [("torch/nn/modules/module.py", "_wrapped_call_impl")],
    "write TSV + JSON": [("mne_eegfm/bids.py", "write_text")],
}


def profile_stages(fname, model, out):
    """Run predict in-process under cProfile; seconds per stage."""
    from click.testing import CliRunner

    from mne_eegfm.cli import main
    from mne_eegfm.cli.predict import _load

    _load(model)  # model loading is timed separately (cached by file digest)
    args = ["predict", str(fname), "--model", model, "--out", str(out), "--overwrite"]
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    profiler.disable()
    total = time.perf_counter() - start
    assert result.exit_code == 0, result.output
    stats = pstats.Stats(profiler).stats
    seconds = {}
    for stage, entries in STAGES.items():
        seconds[stage] = 0.0
        for (path, _, func), (_, _, _, cumulative, callers) in stats.items():
            for end, name in entries:
                top_level = stage != "model" or not any(
                    c[0].endswith("torch/nn/modules/module.py") for c in callers
                )
                if path.endswith(end) and func == name and top_level:
                    seconds[stage] += cumulative
    seconds["other (CLI, checks, pandas)"] = total - sum(seconds.values())
    return seconds, total


def mne_baseline(fname):
    import mne

    steps = {}
    start = time.perf_counter()
    raw = mne.io.read_raw_edf(fname, preload=True, verbose=False)
    steps["read (preload)"] = time.perf_counter() - start
    for name, call in (
        ("filter 0.1-75 Hz", lambda: raw.filter(0.1, 75.0, verbose=False)),
        ("notch 50 Hz", lambda: raw.notch_filter(50.0, verbose=False)),
        ("resample 256 Hz", lambda: raw.resample(256.0, verbose=False)),
    ):
        start = time.perf_counter()
        call()
        steps[name] = time.perf_counter() - start
    return steps


def _predict_command(root, model, out, subjects, n_jobs):
    script = shutil.which("mne-eegfm")
    cmd = [script] if script else [sys.executable, "-m", "mne_eegfm.cli"]
    cmd += ["predict", str(root), "--model", model, "--out", str(out)]
    cmd += ["--n-jobs", str(n_jobs)]
    for subject in subjects:
        cmd += ["--subject", subject]
    return cmd


def _children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(cmd, threads):
    """Wall and CPU seconds (the command and its worker processes) of ``cmd``."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    cpu, start = _children_cpu(), time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if proc.returncode:
        raise RuntimeError(proc.stdout + proc.stderr)
    return wall, _children_cpu() - cpu


def bids_recordings(root, limit):
    """``(subjects, files)`` of the dataset, the first ``limit`` subjects only."""
    from mne_eegfm.bids import find_recordings

    found = find_recordings(root, verbose=False)
    subjects = sorted({path.subject for path in found})
    if limit:
        subjects = subjects[:limit]
    files = [Path(p.fpath) for p in found if p.subject in subjects]
    return subjects, files


def hours_of_eeg(files):
    import mne

    seconds = 0.0
    for fname in files:
        raw = mne.io.read_raw(fname, preload=False, verbose=False)
        seconds += raw.n_times / raw.info["sfreq"]
    return seconds / 3600


def by_hand(fname, net, window_s=10.0, sfreq=256.0):
    """One recording the way a user would without mne-eegfm (see the docstring)."""
    import mne
    import torch

    from mne_eegfm.montage import get_positions

    raw = mne.io.read_raw(fname, preload=True, verbose=False)
    raw.filter(0.1, 75.0 if 75.0 < raw.info["sfreq"] / 2 else None, verbose=False)
    raw.resample(sfreq, verbose=False)
    picks, _, positions = get_positions(raw.info, on_missing="warn")
    data = raw.get_data(picks=picks) * 1e6
    pos = torch.as_tensor(positions, dtype=torch.float32)
    n = int(round(window_s * sfreq))
    outputs = []
    with torch.no_grad():
        for start in range(0, data.shape[1] - n + 1, n):
            x = data[:, start : start + n]
            x = (x - x.mean(1, keepdims=True)) / (x.std(1, keepdims=True) + 1e-8)
            x = torch.as_tensor(x[None], dtype=torch.float32)
            outputs.append(net(x, pos).softmax(-1)[0].numpy())
    return np.array(outputs)


def run_bids(args):
    import torch

    from mne_eegfm.checkpoints import load_model

    torch.set_num_threads(args.threads)
    load = os.getloadavg()
    subjects, files = bids_recordings(args.bids, args.limit)
    hours = hours_of_eeg(files)
    with tempfile.TemporaryDirectory() as tmp:
        model = pick_model(args.model, tmp)
        print(
            f"Dataset: {Path(args.bids).name}, {len(files)} recording(s) of "
            f"{len(subjects)} subject(s), {hours:.2f} h of EEG; "
            f"model {Path(model).name}"
        )
        print(
            f"torch threads: {args.threads}; cores: {os.cpu_count()}; load average "
            f"(1/5/15 min) at start: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}"
        )
        chosen = subjects if args.limit else []  # whole dataset: no filter
        cmd = _predict_command(args.bids, model, Path(tmp) / "out", chosen, args.n_jobs)
        print(f"predict --n-jobs {args.n_jobs} (worker processes of 1 thread each)")
        wall, cpu = _timed(cmd, args.threads)
        rerun, rerun_cpu = _timed(cmd, args.threads)
        print(f"predict: {wall:.1f} s; re-run: {rerun:.2f} s", flush=True)
        net = load_model(model)
        cpu_start, start = time.process_time(), time.perf_counter()
        for fname in files:
            by_hand(fname, net, net.contract.window_s, net.contract.sfreq)
        hand = time.perf_counter() - start
        hand_cpu = time.process_time() - cpu_start
    rate, hand_rate = 60 * hours / wall, 60 * hours / hand
    print(f"\n{'':<40}{'wall (s)':>10}{'CPU (s)':>10}{'h EEG/min':>11}")
    rows = (
        ("mne-eegfm predict (subprocess)", wall, cpu, f"{rate:.1f}"),
        ("by hand: MNE filter+resample, loop", hand, hand_cpu, f"{hand_rate:.1f}"),
        ("re-run over finished outputs", rerun, rerun_cpu, ""),
    )
    for name, seconds, cpu_s, per_min in rows:
        print(f"{name:<40}{seconds:>10.2f}{cpu_s:>10.2f}{per_min:>11}")
    print(
        "(CPU: user + system seconds of the process and its workers; on a "
        "shared machine the least disturbed figure)"
    )
    print(f"\nSpeed-up over the hand-made pipeline: {hand / wall:.2f}x (goal >= 3x)")
    scaled = wall * 8.4 / hours if hours else float("nan")
    print(f"Wall time scaled to 8.4 h at this rate: {scaled:.0f} s (goal <= 60 s)")
    print(f"Re-run: {rerun:.2f} s for {len(files)} recording(s) (goal <= 2 s for 97)")
    print(f"Load average at the end: {os.getloadavg()[0]:.1f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", default=None)
    parser.add_argument("--bids", help="BIDS root: time predict over the dataset")
    parser.add_argument(
        "--limit", type=int, default=None, help="with --bids: first N subjects only"
    )
    parser.add_argument(
        "--n-jobs",
        type=int,
        default=-1,
        help="with --bids: predict's --n-jobs (-1: one process per core)",
    )
    args = parser.parse_args()
    if args.bids:
        return run_bids(args)
    import torch

    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        fname = Path(tmp) / "synthetic_1h_22ch_500Hz.edf"
        start = time.perf_counter()
        synth_edf(fname, args.hours)
        print(
            f"Synthetic EDF: {args.hours:g} h, {len(CH_NAMES)} ch, {SFREQ:g} Hz, "
            f"{fname.stat().st_size / 1e6:.0f} MB (written in "
            f"{time.perf_counter() - start:.1f} s)"
        )
        model = pick_model(args.model, tmp)
        print(f"Model: {model}; torch threads: {args.threads}; cores: {os.cpu_count()}")
        print(f"Load average when starting: {load:.1f} (CPU shared with other work)")
        wall, imports = time_subprocess(fname, model, Path(tmp) / "out", args.threads)
        stages, in_process = profile_stages(fname, model, Path(tmp) / "out2")
        baseline = mne_baseline(fname)
    print(f"\n`mne-eegfm predict` subprocess wall time: {wall:.2f} s (goal <= 8 s)")
    print(f"  of which Python start-up + imports: {imports:.2f} s")
    print(f"\nWhere the time goes (in-process, cProfile; total {in_process:.2f} s):")
    for stage, sec in stages.items():
        print(f"  {stage:<32}{sec:8.2f} s  {100 * sec / in_process:5.1f} %")
    base_total = sum(baseline.values())
    print("\nBaseline, MNE default pipeline on the same recording:")
    for step, sec in baseline.items():
        print(f"  {step:<32}{sec:8.2f} s")
    print(f"  {'total':<32}{base_total:8.2f} s")
    prep = sum(
        stages[k]
        for k in (
            "read (decode EDF)",
            "filter + resample (one FFT)",
            "normalise windows",
        )
    )
    print(
        f"\nRead + preprocessing: mne-eegfm {prep:.2f} s vs MNE default "
        f"{base_total:.2f} s (ratio {prep / base_total:.2f}); end to end "
        f"{wall:.2f} s = {wall / 8.0:.2f} x the 8-s goal."
    )
    print(f"Load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
