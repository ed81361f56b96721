"""Makers of small synthetic recordings, shared by the test modules.

``conftest.py`` offers ``make_raw`` and ``make_epochs`` as fixtures; modules that
call them outside a test (or need white noise) import them from here.
"""

import mne
import numpy as np

#: Parameters of an estimator on a tiny random LuMamba (fast on a CPU).
TINY_ESTIMATOR = dict(
    model="lumamba-tiny",
    model_kwargs={"num_queries": 2, "embed_dim": 16, "num_blocks": 1},
    device="cpu",
)


def signal(n_channels, n_times, sfreq, seed=0, scale=20e-6):
    """Brown-ish noise plus a 10-Hz rhythm, about ``scale`` volts."""
    gen = np.random.default_rng(seed)
    x = np.cumsum(gen.standard_normal((n_channels, n_times)), axis=1)
    x -= x.mean(axis=1, keepdims=True)
    x /= x.std(axis=1, keepdims=True) + 1e-12
    t = np.arange(n_times) / sfreq
    x += np.sin(2 * np.pi * 10 * t + gen.uniform(0, 6, (n_channels, 1)))
    return x * scale


def make_raw(ch_names=("Fz", "Cz", "Pz", "O1"), sfreq=256.0, duration=11.0, **kw):
    """A Raw of :func:`signal` (``ch_types`` and :func:`signal`'s options in kw)."""
    ch_types = kw.pop("ch_types", "eeg")
    info = mne.create_info(list(ch_names), sfreq, ch_types)
    data = signal(len(ch_names), int(round(duration * sfreq)), sfreq, **kw)
    return mne.io.RawArray(data, info, verbose=False)


def make_epochs(n_epochs=6, ch_names=("Fz", "Cz", "Pz", "O1"), sfreq=256.0, tlen=5.0):
    """Epochs of :func:`signal`, epoch ``i`` drawn with seed ``i``."""
    info = mne.create_info(list(ch_names), sfreq, "eeg")
    n_times = int(round(tlen * sfreq))
    data = np.stack(
        [signal(len(ch_names), n_times, sfreq, seed=i) for i in range(n_epochs)]
    )
    return mne.EpochsArray(data, info, verbose=False)


def noise_raw(ch_names, sfreq, seconds, seed=0, scale=2e-5, offset=0.0):
    """A Raw of white noise (``scale`` volts, plus ``offset``) on EEG channels.

    ``seed`` is an int or a :class:`numpy.random.Generator` (drawn from).
    """
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((len(ch_names), int(seconds * sfreq))) * scale + offset
    info = mne.create_info(list(ch_names), sfreq, "eeg")
    return mne.io.RawArray(data, info, verbose=False)


def refuse_writes(monkeypatch, folder):
    """Make ``tempfile.mkstemp`` in ``folder`` fail as a read-only folder does.

    Needed where the tests run as root, which ignores permission bits.
    """
    import tempfile
    from pathlib import Path

    real = tempfile.mkstemp

    def refuse(*args, dir=None, **kwargs):
        if dir is not None and Path(dir).resolve() == Path(folder).resolve():
            raise PermissionError(13, "Permission denied", str(dir))
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", refuse)


def load_benchmark(name):
    """Import ``benchmarks/NAME.py`` (not a package) as a module."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
