"""Small utilities: the compute device, parameter defaults, the system information.

``atomic_path`` lives in :mod:`mne_eegfm.io`; it stays importable from here.
"""

import importlib
import importlib.util
import inspect
import os
import platform
import sys
from importlib.metadata import PackageNotFoundError, version

from .io import atomic_path

__all__ = ["atomic_path", "resolve_device", "sys_info"]


def resolve_device(device):
    """Return the torch device for ``device``; "auto" or None picks CUDA if present.

    Parameters
    ----------
    device : str | torch.device | None
        ``"auto"``, None, or anything :class:`torch.device` accepts.

    Returns
    -------
    device : torch.device
    """
    import torch

    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


_PACKAGES = (
    ("numpy", "numpy"),
    ("scipy", "scipy"),
    ("mne", "mne"),
    ("mne-bids", "mne-bids"),
    ("sklearn", "scikit-learn"),
    ("safetensors", "safetensors"),
    ("numba", "numba"),
    ("huggingface_hub", "huggingface_hub"),
)


def parameter_defaults(obj):
    """Default value of each parameter of a function or class, by name.

    Parameters
    ----------
    obj : callable | type
        The function or class (its ``__init__`` signature).

    Returns
    -------
    defaults : dict
        Parameter name -> default (``inspect.Parameter.empty`` where none).
    """
    return {name: p.default for name, p in inspect.signature(obj).parameters.items()}


def _version(dist):
    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def _mamba_ssm_status():
    """(status text, importable) of the optional mamba-ssm CUDA kernels."""
    if importlib.util.find_spec("mamba_ssm") is None:
        return "not installed", False
    try:
        importlib.import_module("mamba_ssm")
    except Exception as err:  # a broken CUDA build raises more than ImportError
        return f"installed but not importable: {type(err).__name__}: {err}", False
    return f"{_version('mamba-ssm')} (importable)", True


def _device_lines(torch):
    if not torch.cuda.is_available():
        return [("CUDA", "not available (CPU only)")]
    names = [
        torch.cuda.get_device_name(index) for index in range(torch.cuda.device_count())
    ]
    return [("CUDA", f"{torch.version.cuda} available"), ("GPU", ", ".join(names))]


def _bf16_line():
    """Whether precision="bfloat16" runs here (and why not)."""
    from .models.precision import resolve_precision

    try:
        resolve_precision("bfloat16", resolve_device("auto"))
    except ValueError as err:
        return f"no: {err}"
    return "yes (precision='bfloat16' and 'auto' use it)"


def _rows():
    import torch

    from . import __version__

    mamba_status, importable = _mamba_ssm_status()
    if importlib.util.find_spec("numba") is None:
        kernels = "pure PyTorch on CPU"
    else:
        kernels = "numba kernel on CPU (once loaded), else pure PyTorch"
    if importable and torch.cuda.is_available():
        kernels = f"mamba-ssm CUDA kernels on GPU, {kernels}"
    rows = [
        ("Platform", platform.platform()),
        ("Python", sys.version.split()[0]),
        ("Executable", sys.executable),
        ("CPU", f"{platform.machine()} ({os.cpu_count()} logical cores)"),
        ("Threads", f"torch {torch.get_num_threads()} intra-op"),
        ("mne-eegfm", __version__),
        ("torch", torch.__version__),
        *_device_lines(torch),
        ("mamba-ssm", mamba_status),
        ("SSM kernels", kernels),
        ("bfloat16", _bf16_line()),
    ]
    rows += [(label, _version(dist)) for label, dist in _PACKAGES]
    return rows


def sys_info(fid=None):
    """Print versions, device and threads, like :func:`mne.sys_info`.

    Parameters
    ----------
    fid : file-like | None
        Where to write; ``None`` writes to standard output.
    """
    fid = sys.stdout if fid is None else fid
    rows = _rows()
    width = max(len(label) for label, _ in rows) + 2
    for label, value in rows:
        fid.write(f"{label + ':':<{width}}{value}\n")
