"""Where an estimator's model runs: PyTorch, or onnxruntime (inference only).

With ``backend="onnx"`` the torch model (loaded, or trained by ``fit`` in
torch) is exported once per window length with
:func:`mne_eegfm.onnx_backend.export_onnx` and its windows run in
onnxruntime; the graph is kept in memory (no file is left behind) and rebuilt
after a new ``fit`` or when unpickled.
"""

import tempfile
import warnings
from pathlib import Path

import numpy as np

BACKENDS = ("torch", "onnx")


def check_backend(backend):
    """Raise a ValueError unless ``backend`` is ``"torch"`` or ``"onnx"``."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be 'torch' or 'onnx', got {backend!r}.")
    if backend == "onnx":
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            raise ValueError(
                "backend='onnx' needs onnx and onnxruntime: pip install "
                "'mne-eegfm[onnx]'."
            ) from None


def _export(net, n_channels, n_times):
    from ..onnx_backend import OnnxModel, export_onnx

    with tempfile.TemporaryDirectory(prefix="mne-eegfm-onnx-") as folder:
        fname = Path(folder) / "model.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on constants
            export_onnx(net, fname, n_channels=n_channels, n_times=n_times)
        return OnnxModel(fname)


def onnx_runner(est, net, output):
    """``fn(x, positions)`` running ``net``'s ``output`` in onnxruntime.

    ``output`` is ``"embed"``, ``"encode"`` or ``"forward"``. The graph is
    exported at the first batch (its window length fixes the graph's) and
    cached on ``est`` for this model and window length.
    """
    import torch

    def fn(x, positions):
        cached = getattr(est, "_onnx", None)
        if cached is None or cached[0] is not net or cached[1] != x.shape[-1]:
            cached = (net, x.shape[-1], _export(net, x.shape[1], x.shape[-1]))
            est._onnx = cached
        run = getattr(cached[2], output)
        values = run(x.cpu().numpy(), positions.cpu().numpy())
        return torch.from_numpy(np.ascontiguousarray(values))

    return fn
