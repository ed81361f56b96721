"""onnxruntime vs PyTorch on CPU: the shipped classifier, same windows, same threads.

Exports ``lumamba-tiny-gb-epilepsy`` (14 channels, 128 Hz, 10-s windows) with
:func:`mne_eegfm.onnx_backend.export_onnx`, then times the logits of one batch
of windows with the torch model (baseline, under ``torch.no_grad()``, fused scan
kernel loaded) and with :class:`mne_eegfm.onnx_backend.OnnxModel`, both on the
same number of threads. Prints windows per second (best of ``--repeats``: the
CPU may be shared), the ratio onnxruntime / torch and the largest difference
between their logits.

Run: ``python benchmarks/onnx_speed.py [--batch 32] [--threads 2] [--repeats 5]``
(not ``onnx.py``: run as a script, that name would shadow the onnx package).
"""

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from mne_eegfm import load_model
from mne_eegfm.models import scan
from mne_eegfm.onnx_backend import OnnxModel, export_onnx

MODEL = "lumamba-tiny-gb-epilepsy"


def best_time(func, repeats):
    """Minimum wall time of ``func()`` over ``repeats`` runs, after a warm-up."""
    func()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    scan.load_kernel()
    model = load_model(MODEL).eval()
    contract = model.contract
    n_times = int(round(contract.window_s * contract.sfreq))
    n_channels = 14
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.batch, n_channels, n_times)).astype(np.float32)
    pos = (rng.standard_normal((n_channels, 3)) * 0.05).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        fname = Path(tmp) / "model.onnx"
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            export_onnx(model, fname, n_channels=n_channels)
        export_s = time.perf_counter() - start
        runner = OnnxModel(fname, n_threads=args.threads)
        x_t, pos_t = torch.from_numpy(x), torch.from_numpy(pos)

        def run_torch():
            with torch.no_grad():
                return model(x_t, pos_t).numpy()

        def run_onnx():
            return runner(x, pos)

        diff = float(np.abs(run_torch() - run_onnx()).max())
        t_torch = best_time(run_torch, args.repeats)
        t_onnx = best_time(run_onnx, args.repeats)
    print(
        f"{MODEL}: batch {args.batch} x {n_channels} ch x {n_times} samples, "
        f"{args.threads} thread(s), best of {args.repeats}; export {export_s:.1f} s"
    )
    print(f"{'backend':<12} {'windows/s':>10} {'ratio':>7}")
    print(f"{'torch':<12} {args.batch / t_torch:>10.1f} {1.0:>7.2f}")
    print(f"{'onnxruntime':<12} {args.batch / t_onnx:>10.1f} {t_torch / t_onnx:>7.2f}")
    print(f"max |logits difference| = {diff:.2e}")


if __name__ == "__main__":
    main()
