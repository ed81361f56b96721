"""Numerical precision of the models: float32, or bfloat16 where the hardware is fast.

bfloat16 runs the matrix products (linear layers, convolutions, attention) in
bfloat16 through :func:`torch.autocast`, while the parts that bfloat16 would
break stay in float32: the selective-scan state, its softplus and exponentials
(:mod:`.scan`), the GroupNorm statistics and the Fourier features of the
front end (:mod:`.frontend`), and the losses. The weights stay float32 (they
are the "master" weights in training); autocast converts each weight once per
:func:`precision_context` and caches it.

bfloat16 pays off only on processors with bfloat16 matrix instructions (Intel
AMX, AVX512-BF16) or on GPUs that support it; elsewhere PyTorch emulates it,
much slower than float32, so :func:`resolve_precision` refuses it there.
"""

import contextlib
import platform
from functools import cache

import torch

PRECISIONS = ("float32", "bfloat16", "auto")
#: CPU flags (``/proc/cpuinfo``) of fast bfloat16 matrix instructions.
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


@cache
def _cpuinfo():
    """``(model name, set of flags)`` from ``/proc/cpuinfo`` (empty elsewhere)."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as fid:
            for line in fid:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and value.strip():
                    name = value.strip()
                elif key == "flags":
                    flags = set(value.split())
                if flags and key == "":  # end of the first processor
                    break
    except OSError:
        pass
    return name, frozenset(flags)


def cpu_bf16_feature():
    """The CPU's fast bfloat16 instruction set, or None.

    Returns
    -------
    feature : str | None
        ``"amx_bf16"`` or ``"avx512_bf16"`` when ``/proc/cpuinfo`` lists it;
        where there is no ``/proc/cpuinfo`` (macOS, Windows), ``"onednn"``
        when oneDNN reports native bfloat16 support; None otherwise.
    """
    flags = _cpuinfo()[1]
    for flag in BF16_CPU_FLAGS:
        if flag in flags:
            return flag
    if not flags and torch.backends.mkldnn.is_available():
        if torch.ops.mkldnn._is_mkldnn_bf16_supported():
            return "onednn"
    return None


def _device_type(device):
    """``"cpu"``, ``"cuda"``, ... of a device spec (None is the CPU)."""
    return torch.device("cpu" if device is None else device).type


def _bf16_support(device):
    """``(supported, description of the device)`` for bfloat16 on ``device``."""
    kind = _device_type(device)
    if kind == "cpu":
        name = _cpuinfo()[0]
        feature = cpu_bf16_feature()
        if feature is None:
            return False, (
                f"this CPU ({name}) has neither AMX-BF16 nor AVX512-BF16 "
                "(bfloat16 would be emulated, slower than float32)"
            )
        return True, f"CPU {name} ({feature})"
    if kind == "cuda":
        if not torch.cuda.is_available():
            return False, f"device {str(device)!r}: CUDA is not available"
        name = torch.cuda.get_device_name(torch.device(device))
        if not torch.cuda.is_bf16_supported():
            return False, f"GPU {name} does not support bfloat16"
        return True, f"GPU {name}"
    return False, f"device type {kind!r} is not supported for bfloat16 here"


def resolve_precision(precision, device=None):
    """The precision that ``precision`` means on ``device``.

    Parameters
    ----------
    precision : "float32" | "bfloat16" | "auto"
        "auto" is "bfloat16" where the device runs it fast (CPUs with AMX or
        AVX512-BF16, GPUs with bfloat16 support) and "float32" elsewhere.
    device : str | torch.device | None
        Where the model runs (None: the CPU).

    Returns
    -------
    precision : "float32" | "bfloat16"
        The precision to run in.

    Raises
    ------
    ValueError
        If ``precision`` is not one of the above, or is "bfloat16" on a device
        without fast bfloat16 support.
    """
    if not isinstance(precision, str) or precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "float32":
        return precision
    supported, description = _bf16_support(device)
    if supported:
        return "bfloat16"
    if precision == "auto":
        return "float32"
    raise ValueError(
        f"precision='bfloat16' is not supported here: {description}; "
        "use precision='float32' (or 'auto', which picks bfloat16 only where "
        "it is fast)"
    )


@contextlib.contextmanager
def precision_context(precision, device=None):
    """Run the models in ``precision`` within this block (forward and backward).

    Parameters
    ----------
    precision : "float32" | "bfloat16" | "auto"
        See :func:`resolve_precision`.
    device : str | torch.device | None
        Where the model runs (None: the CPU).

    Yields
    ------
    precision : "float32" | "bfloat16"
        The resolved precision.

    Notes
    -----
    Under "bfloat16", tensors the models return (latents, embeddings,
    logits, reconstructions) may be bfloat16: call ``.float()`` on them.
    Parameters and their gradients stay float32; the scan state, softplus
    and exponentials, normalisation statistics and losses are computed in
    float32. "float32" changes nothing (results are bit-identical to running
    without the context).
    """
    resolved = resolve_precision(precision, device)
    if resolved == "float32":
        yield resolved
        return
    with torch.autocast(_device_type(device), dtype=torch.bfloat16):
        yield resolved


def prepare_model(model, precision, device=None):
    """Make a model ready for inference in ``precision``.

    Parameters
    ----------
    model : torch.nn.Module
        The model.
    precision : "float32" | "bfloat16" | "auto"
        See :func:`resolve_precision`.
    device : str | torch.device | None
        Where the model runs (None: the CPU).

    Returns
    -------
    model : torch.nn.Module
        The same model, in eval mode. Its weights stay float32:
        :func:`precision_context` converts each one to bfloat16 once per
        ``with`` block, so run a whole prediction loop inside one block.
    """
    resolve_precision(precision, device)
    return model.eval()


def float32_region(tensor):
    """Context in which autocast is off, for the float32 islands of the models.

    Parameters
    ----------
    tensor : torch.Tensor
        A tensor on the device the region computes on.
    """
    return torch.autocast(tensor.device.type, enabled=False)
