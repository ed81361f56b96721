"""Speed and memory of the preprocessing against MNE's default pipeline.

Each case runs in a fresh subprocess so that its peak RSS is its own.

- 1 hour, 22 channels, 500 Hz, preloaded (time and peak RSS):
  MNE's default pipeline (``raw.filter(0.1, 75)`` then ``raw.resample(256)``,
  then 5-s windows z-scored), MNE resampling first (polyphase) then filtering,
  and ``mne_eegfm.preprocessing.prepare``.
- 24 hours, 22 channels, 500 Hz, not preloaded (a lazy synthetic Raw that
  generates its samples when read, like a file): ``iter_windows`` streamed
  through (peak RSS). MNE's pipeline would first load the recording in float64
  (7.6 GB), so it is not run.

Usage: ``python benchmarks/preprocessing.py`` (about a minute on 2 cores).
"""

import json
import resource
import subprocess
import sys
import time

import numpy as np

N_CH, SFREQ = 22, 500.0
NAMES = "Fp1 Fp2 F7 F3 Fz F4 F8 T7 C3 Cz C4 T8 P7 P3 Pz P4 P8 O1 O2 FC1 FC2 Oz".split()


def _signal(start, stop, n_ch):
    """Deterministic EEG-like volts: 10-Hz alpha, 50-Hz line, noise, 4 mV offset."""
    t = np.arange(start, stop) / SFREQ
    rng = np.random.default_rng(start)
    x = rng.standard_normal((n_ch, stop - start)) * 10e-6
    x += 20e-6 * np.sin(2 * np.pi * 10.0 * t) + 5e-6 * np.sin(2 * np.pi * 50.0 * t)
    return x + 4e-3


def _lazy_raw(hours):
    import mne

    class SyntheticRaw(mne.io.BaseRaw):
        def _read_segment_file(self, data, idx, fi, start, stop, cals, mult):
            data[:] = _signal(start, stop, N_CH)[idx]

    info = mne.create_info(NAMES, SFREQ, "eeg")
    n = int(hours * 3600 * SFREQ)
    return SyntheticRaw(info, preload=False, last_samps=[n - 1], verbose="error")


def _preloaded_raw(hours):
    import mne

    n = int(hours * 3600 * SFREQ)
    info = mne.create_info(NAMES, SFREQ, "eeg")
    return mne.io.RawArray(_signal(0, n, N_CH), info, verbose="error")


def _windows(raw):
    import mne

    epochs = mne.make_fixed_length_epochs(raw, 5.0, preload=True, verbose="error")
    x = epochs.get_data() * 1e6
    x -= x.mean(-1, keepdims=True)
    x /= x.std(-1, keepdims=True) + 1e-8
    return x.astype(np.float32)


def _mne_default(raw):
    out = raw.copy().filter(0.1, 75.0, verbose="error")
    return _windows(out.resample(256.0, verbose="error"))


def _mne_resample_first(raw):
    out = raw.copy().resample(256.0, method="polyphase", verbose="error")
    return _windows(out.filter(0.1, 75.0, verbose="error"))


def _ours(raw):
    from mne_eegfm.preprocessing import InputContract, prepare

    return prepare(raw, InputContract(), verbose="error").data


def _ours_streamed(raw):
    from mne_eegfm.preprocessing import InputContract, iter_windows

    n = 0
    for w in iter_windows(raw, InputContract(), verbose="error"):
        n += len(w.data)  # a consumer would embed them here and drop them
    return np.zeros((n, 0, 0))


CASES = {
    "mne-default": (_mne_default, _preloaded_raw),
    "mne-resample-first": (_mne_resample_first, _preloaded_raw),
    "mne-eegfm prepare": (_ours, _preloaded_raw),
    "mne-eegfm iter_windows": (_ours_streamed, _lazy_raw),
}


def _worker(case, hours):
    import warnings

    import mne  # noqa: F401  (imported before timing, as in a real session)
    import scipy.signal  # noqa: F401

    from mne_eegfm import preprocessing  # noqa: F401

    warnings.simplefilter("ignore")
    func, make = CASES[case]
    raw = make(hours)
    rss_data = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    t0, c0 = time.perf_counter(), time.process_time()
    out = func(raw)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(
        json.dumps(
            dict(
                seconds=seconds, cpu=cpu, rss_gib=rss, rss_data_gib=rss_data, n=len(out)
            )
        )
    )


def _run(case, hours):
    cmd = [sys.executable, __file__, "--worker", case, str(hours)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    rows = [(case, 1.0, _run(case, 1.0)) for case in list(CASES)[:3]]
    rows.append(("mne-eegfm iter_windows", 1.0, _run("mne-eegfm iter_windows", 1.0)))
    rows.append(("mne-eegfm iter_windows", 24.0, _run("mne-eegfm iter_windows", 24)))
    base = rows[0][2]["seconds"]
    base_cpu = rows[0][2]["cpu"]
    print(f"{N_CH} channels at {SFREQ:g} Hz -> 256 Hz, 0.1-75 Hz, 5-s windows")
    print(
        f"{'pipeline':<24} {'hours':>5} {'windows':>8} {'wall s':>7} {'cpu s':>7} "
        f"{'speed-up':>9} {'peak RSS GiB':>13} {'(data alone)':>13}"
    )
    for case, hours, r in rows:
        ratio = f"{base / r['seconds']:.1f}x" if hours == 1.0 else "-"
        print(
            f"{case:<24} {hours:>5g} {r['n']:>8} {r['seconds']:>7.2f} "
            f"{r['cpu']:>7.2f} {ratio:>9} {r['rss_gib']:>13.2f} "
            f"{r['rss_data_gib']:>13.2f}"
        )
    print(f"speed-up in cpu time: {base_cpu / rows[2][2]['cpu']:.1f}x (prepare)")
    print(
        "time: preprocessing only (data already in memory or generated lazily); "
        "speed-up vs mne-default measured in this run. Peak RSS includes the "
        "Python/MNE process and, for preloaded cases, the recording itself. "
        "iter_windows times include generating the synthetic samples (standing "
        "in for reading a file). cpu s is robust to other load on the machine."
    )


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        _worker(sys.argv[2], float(sys.argv[3]))
    else:
        main()
