"""ONNX export of the models and an onnxruntime backend with the models' calls.

:func:`export_onnx` writes a model as an ONNX graph with the inputs ``x``
``(batch, channels, n_times)`` and ``positions`` ``(batch, channels, 3)``
(channels dynamic, ``n_times`` fixed: the window length the model was
exported for; batch dynamic, except for Mamba-2 models whose chunked scan
fixes it to 1 in the trace: :class:`OnnxModel` then runs one window at a
time) and the outputs ``latent`` ``(batch, patches, D)`` and,
for a model with a classification head, ``logits``. :class:`OnnxModel` runs
such a file with onnxruntime and answers ``encode``, ``embed`` and
``forward`` (or a call) on NumPy arrays, as the torch models do on tensors,
so inference needs neither torch nor the model's Python code.

The Mamba scan of the torch models runs in place, with a fused kernel and a
state carried across pieces of long sequences; none of that can be traced.
During the export the scan is replaced by :func:`_traceable_scan`, the same
recurrence written with out-of-place operations, unrolled over the (fixed)
number of patches.
"""

from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ._docs import fill_doc

#: Names of the graph's inputs and outputs.
INPUTS = ("x", "positions")
OUTPUTS = ("latent", "logits")

#: ONNX operator set the export targets (onnxruntime >= 1.16 runs it).
OPSET = 17


def _traceable_scan(
    u,
    delta,
    A,
    B,
    C,
    D=None,
    z=None,
    delta_bias=None,
    delta_softplus=False,
    state=None,
):
    """The Mamba (v1) selective scan without in-place operations.

    Same arguments and result as :func:`mne_eegfm.models.scan.selective_scan`
    (``state`` must be None); the loop over time is unrolled when traced.
    """
    import torch
    import torch.nn.functional as F

    if state is not None:
        raise ValueError("the traceable scan does not carry a state")
    u, delta, A, B, C = (t.float() for t in (u, delta, A, B, C))
    if delta_bias is not None:
        delta = delta + delta_bias.float()
    if delta_softplus:
        delta = F.softplus(delta)
    du = delta * u
    h = u.new_zeros(u.shape[0], A.shape[0], A.shape[1])  # (batch, d_inner, d_state)
    ys = []
    for t in range(u.shape[1]):
        h = torch.exp(delta[:, t, :, None] * A) * h
        h = h + du[:, t, :, None] * B[:, t, None, :]
        ys.append((h * C[:, t, None, :]).sum(-1))
    y = torch.stack(ys, dim=1)
    if D is not None:
        y = y + u * D.float()
    if z is not None:
        y = y * F.silu(z.float())
    return y


@contextmanager
def traceable_models():
    """Within this context, the Mamba layers run the traceable scan.

    The stateful, piece-by-piece inference path and the fused kernel are
    switched off, so a trace (``torch.onnx.export``) records plain tensor
    operations; ``layer_norm`` gets its normalised shape as constants (the
    models read it from a tensor's shape, which the tracer would record as
    a dynamic value the exporter refuses); PyTorch's fused transformer
    fast path, which has no ONNX form, is off. Restored on exit.
    """
    import torch
    import torch.nn.functional as F

    from .models import mamba

    saved = mamba.selective_scan, mamba._carries_state, F.layer_norm
    layer_norm = F.layer_norm

    def constant_layer_norm(input, normalized_shape, *args, **kwargs):
        shape = tuple(int(n) for n in normalized_shape)
        return layer_norm(input, shape, *args, **kwargs)

    mamba.selective_scan = _traceable_scan
    mamba._carries_state = lambda x: False
    F.layer_norm = constant_layer_norm
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        mamba.selective_scan, mamba._carries_state, F.layer_norm = saved
        torch.backends.mha.set_fastpath_enabled(fastpath)


def _vecdot_symbolic(g, x, y, dim):
    """ONNX for ``torch.linalg.vecdot`` of real tensors: sum of products."""
    import torch
    from torch.onnx import symbolic_helper

    axis = symbolic_helper._get_const(dim, "i", "dim")
    axes = g.op("Constant", value_t=torch.tensor([axis], dtype=torch.int64))
    return g.op("ReduceSum", g.op("Mul", x, y), axes, keepdims_i=0)


def _hypot_symbolic(g, x, y):
    """ONNX for ``torch.hypot``: ``sqrt(x**2 + y**2)``."""
    squares = g.op("Add", g.op("Mul", x, x), g.op("Mul", y, y))
    return g.op("Sqrt", squares)


def _atan2_symbolic(g, y, x):
    """ONNX for ``torch.atan2`` with its values on the axes.

    The exporter's own form gives -pi instead of pi for ``y = 0, x < 0`` and
    NaN for ``x = 0``; the frequency embedding hits both (the DC column).
    """
    import math

    import torch

    def const(value):
        return g.op("Constant", value_t=torch.tensor(value, dtype=torch.float32))

    zero = const(0.0)
    base = g.op("Atan", g.op("Div", y, x))
    y_neg = g.op("Less", y, zero)
    shift = g.op("Where", y_neg, const(-math.pi), const(math.pi))
    left = g.op("Add", base, shift)  # x < 0
    axis = g.op(
        "Where",
        y_neg,
        const(-math.pi / 2),
        g.op("Where", g.op("Greater", y, zero), const(math.pi / 2), zero),
    )  # x == 0
    out = g.op("Where", g.op("Less", x, zero), left, base)
    return g.op("Where", g.op("Equal", x, zero), axis, out)


def _register_symbolics(opset):
    """Teach the exporter the operators the models use that it lacks."""
    import torch

    for name, symbolic in (
        ("aten::linalg_vecdot", _vecdot_symbolic),
        ("aten::hypot", _hypot_symbolic),
        ("aten::atan2", _atan2_symbolic),
    ):
        torch.onnx.register_custom_op_symbolic(name, symbolic, opset)


def _exportable(model):
    import torch

    class Exported(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x, positions):
            latent = self.net.encode(x, positions)
            if getattr(self.net, "classifier", None) is None:
                return latent
            return latent, self.net.classifier(latent)

    return Exported(model).eval()


def _window_samples(model, n_times):
    if n_times is not None:
        return int(n_times)
    contract = getattr(model, "contract", None)
    if contract is None:
        raise ValueError(
            "Give n_times: the model has no input contract to take its window "
            "length from."
        )
    get = contract.get if isinstance(contract, dict) else contract.__getattribute__
    return int(round(float(get("window_s")) * float(get("sfreq"))))


def export_onnx(model, fname, *, n_channels=19, n_times=None, opset=OPSET):
    """Export a model to an ONNX file.

    Parameters
    ----------
    model : torch.nn.Module
        A model of :mod:`mne_eegfm.models` (e.g. from
        :func:`mne_eegfm.load_model`); not modified.
    fname : path-like
        The ``.onnx`` file to write (atomically).
    n_channels : int
        Channels of the example input used for tracing; the exported graph
        accepts any number (except FEMBA, which has fixed channels).
    n_times : int | None
        Samples per window, fixed in the graph. None takes the model's
        contract (``window_s * sfreq``).
    opset : int
        ONNX operator set version.

    Returns
    -------
    fname : pathlib.Path
        The file written.
    """
    import torch

    from .models.mamba2 import Mamba2
    from .utils import atomic_path

    fname = Path(fname)
    n_times = _window_samples(model, n_times)
    if getattr(model, "n_channels", None):  # FEMBA's fixed montage
        n_channels = model.n_channels
    fixed_batch = any(isinstance(m, Mamba2) for m in model.modules())
    n_batch = 1 if fixed_batch else 2
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n_batch, n_channels, n_times, generator=generator)
    positions = torch.randn(n_batch, n_channels, 3, generator=generator) * 0.05
    outputs = list(OUTPUTS[: 1 + (getattr(model, "classifier", None) is not None)])
    axes = {1: "channels"} if fixed_batch else {0: "batch", 1: "channels"}
    dynamic = {name: axes for name in INPUTS}
    if not fixed_batch:
        dynamic.update({name: {0: "batch"} for name in outputs})
    _register_symbolics(opset)
    was_training = model.training
    model.eval()
    try:
        with traceable_models(), torch.no_grad(), atomic_path(fname) as tmp:
            torch.onnx.export(
                _exportable(model),
                (x, positions),
                str(tmp),
                input_names=list(INPUTS),
                output_names=outputs,
                dynamic_axes=dynamic,
                opset_version=opset,
                dynamo=False,
            )
    finally:
        model.train(was_training)
    return fname


class OnnxModel:
    """An exported model run by onnxruntime, with the torch models' calls.

    Parameters
    ----------
    fname : path-like
        An ``.onnx`` file written by :func:`export_onnx`.
    n_threads : int | None
        Threads onnxruntime uses within an operator (None: its default).

    Attributes
    ----------
    n_times : int
        Samples per window the graph takes.
    batch_size : int | None
        Windows per run when the graph fixes it (Mamba-2), else None.
    has_head : bool
        Whether the graph outputs ``logits``.
    """

    def __init__(self, fname, *, n_threads=None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if n_threads is not None:
            options.intra_op_num_threads = int(n_threads)
        self.session = ort.InferenceSession(
            str(fname), options, providers=["CPUExecutionProvider"]
        )
        shape = self.session.get_inputs()[0].shape
        self.n_times = shape[2]
        self.batch_size = shape[0] if isinstance(shape[0], int) else None
        self.has_head = "logits" in [o.name for o in self.session.get_outputs()]

    def _run(self, output, x, positions):
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 3 or x.shape[2] != self.n_times or not len(x):
            raise ValueError(
                f"x must have shape (batch, channels, {self.n_times}) for this "
                f"ONNX model, got {x.shape}."
            )
        positions = np.asarray(positions, dtype=np.float32)
        if positions.ndim == 2:
            positions = np.broadcast_to(positions, (x.shape[0], *positions.shape))
        positions = np.ascontiguousarray(positions)
        step = self.batch_size or max(len(x), 1)
        parts = [
            self.session.run([output], {"x": x[i : i + step], "positions": p})[0]
            for i in range(0, len(x), step)
            for p in [positions[i : i + step]]
        ]
        return np.concatenate(parts) if len(parts) != 1 else parts[0]

    def encode(self, x, positions):
        """Encoder output.

        Parameters
        ----------
        x : array, shape (batch, channels, n_times)
            Normalised windows (float32).
        positions : array, shape (batch, channels, 3) | (channels, 3)
            Electrode positions in metres.

        Returns
        -------
        latent : ndarray, shape (batch, patches, D)
            As ``model.encode(x, positions)``.
        """
        return self._run("latent", x, positions)

    @fill_doc
    def embed(self, x, positions):  # noqa: D417 (docdict)
        """Pooled embedding (batch, D): :meth:`encode` averaged over patches.

        Parameters
        ----------
        %(onnx_input)s

        Returns
        -------
        embedding : ndarray, shape (batch, D)
            As ``model.embed(x, positions)``.
        """
        return self.encode(x, positions).mean(axis=1)

    @fill_doc
    def forward(self, x, positions):  # noqa: D417 (docdict)
        """Logits of the classification head.

        Parameters
        ----------
        %(onnx_input)s

        Returns
        -------
        logits : ndarray, shape (batch, n_outputs)
            As ``model(x, positions)``.
        """
        if not self.has_head:
            raise ValueError(
                "this ONNX model has no classification head; use encode/embed"
            )
        return self._run("logits", x, positions)

    __call__ = forward
