"""Build any model configuration by name; check a configuration before building it.

The configurations are declared by the architecture modules (``CONFIGS`` in
``lumamba.py``, ``luna.py`` and ``femba.py``).
"""

import copy
import inspect

import torch
from torch.overrides import TorchFunctionMode

from ..cards import json_object
from ..utils import parameter_defaults
from . import femba, lumamba, luna
from .femba import FEMBA
from .heads import HEADS
from .lumamba import LuMamba
from .luna import LUNA

ARCH_MODULES = {LuMamba: lumamba, LUNA: luna, FEMBA: femba}
_CONFIGS = {
    name: (cls, defaults)
    for cls, module in ARCH_MODULES.items()
    for name, defaults in module.CONFIGS.items()
}
# Largest accepted value of each integer option: configurations beyond these
# would allocate gigabytes (a crafted model file must not build them).
_MAX_INT = {
    "num_blocks": 64,
    "depth": 64,
    "num_queries": 64,
    "num_heads": 64,
    "embed_dim": 2048,
    "d_state": 256,
    "d_conv": 16,
    "expand": 16,
    "patch_size": 1024,
    "n_times": 1_000_000,
    "n_outputs": 100_000,
}
_MAX_VALUES = 2_000_000_000


def list_configs():
    """Names accepted by :func:`create_model`.

    Returns
    -------
    names : list of str
        The configuration names, e.g. ``"lumamba-tiny"`` or ``"luna-base"``.
    """
    return list(_CONFIGS)


def create_model(name, n_outputs=None, head=None, **overrides):
    """Build a model by configuration name.

    Parameters
    ----------
    name : str
        One of :func:`list_configs` (e.g. "lumamba-tiny", "luna-base").
    n_outputs : int | None
        Outputs of the classification head; None builds the encoder with its
        reconstruction decoder (pretraining layout) and no head.
    head : "query" | "mamba" | "linear" | None
        Head type; None means "query" ("mamba" for FEMBA) when ``n_outputs``
        is given.
    **overrides
        Architecture options, e.g. ``ssm="mamba2"``,
        ``embedding="multibranch"``, ``num_blocks=4``.

    Returns
    -------
    model : torch.nn.Module
        With a JSON-serialisable ``config`` such that
        ``create_model(**model.config)`` rebuilds the same architecture.
    """
    if name not in _CONFIGS:
        raise ValueError(f"unknown model {name!r}; choose one of {list_configs()}")
    cls, defaults = _CONFIGS[name]
    if n_outputs is None:
        head = None
    else:
        n_outputs = int(n_outputs)
        if n_outputs < 1:
            raise ValueError(f"n_outputs must be >= 1, got {n_outputs}")
        head = head or ("mamba" if cls is FEMBA else "query")
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
    arch = {**defaults, **overrides}
    try:
        model = cls(n_outputs=n_outputs, head=head, **arch)
    except TypeError as err:
        raise ValueError(
            f"invalid option for {name!r} ({cls.__name__}): {err}"
        ) from None
    full = {
        k: v
        for k, v in parameter_defaults(cls).items()
        if k not in ("n_outputs", "head")
    }
    full.update(arch)
    model.config = {
        "name": name,
        "n_outputs": n_outputs,
        "head": head,
        **copy.deepcopy(full),
    }
    return model


def config_class(name):
    """Model class of a configuration name (ValueError if unknown)."""
    if not isinstance(name, str) or name not in _CONFIGS:
        raise ValueError(f"unknown model {name!r}; choose one of {list_configs()}")
    return _CONFIGS[name][0]


def check_config(config, where="model config"):
    """Check a configuration dict before anything is built.

    Keys must be options of the architecture, values of the option's type and
    integers within sane bounds (no configuration that would allocate gigabytes).

    Parameters
    ----------
    config : dict
        Keyword arguments of :func:`create_model` (``name`` included).
    where : str
        What the configuration comes from (a file name), used in error messages.

    Returns
    -------
    config : dict
        The same configuration (a copy).
    """
    config = json_object(config, f"The model config in {where}")
    try:
        cls = config_class(config.get("name"))
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
    params = inspect.signature(cls).parameters
    for key, value in config.items():
        if key == "name":
            continue
        if not isinstance(key, str) or key not in params:
            options = ", ".join(p for p in params)
            raise ValueError(
                f"{where}: {key!r} is not an option of {cls.__name__} ({options})."
            )
        _check_value(key, value, params[key].default, where)
    return config


def _check_value(key, value, default, where):
    if value is None and key in ("n_outputs", "head"):
        return
    if key == "head":
        if value not in HEADS:
            raise ValueError(f"{where}: head must be one of {HEADS}, got {value!r}.")
        return
    expected = int if key == "n_outputs" else type(default)
    if expected is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    else:
        ok = isinstance(value, expected) and not (
            isinstance(value, bool) and expected is not bool
        )
    if not ok:
        raise ValueError(
            f"{where}: option {key!r} must be {expected.__name__}, got "
            f"{type(value).__name__} ({value!r:.40})."
        )
    if expected is int and not 1 <= value <= _MAX_INT.get(key, 4096):
        raise ValueError(
            f"{where}: option {key}={value} is out of bounds "
            f"[1, {_MAX_INT.get(key, 4096)}]; refusing to build the model."
        )


class _NoMetaInit(TorchFunctionMode):
    """Skip in-place random initialisations of meta tensors (they hold no values).

    On the meta device they would run PyTorch's Python reference
    implementations, whose first call imports its compiler (seconds per
    process).
    """

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        target = args[0] if args else kwargs.get("tensor")
        name = getattr(func, "__name__", "")
        if name in _INIT_NAMES and isinstance(target, torch.Tensor) and target.is_meta:
            return target
        return func(*args, **kwargs)


_INIT_NAMES = frozenset({"normal_", "uniform_", "trunc_normal_", "kaiming_uniform_"})


def meta_model(config, where="model config"):
    """Build a configuration on the meta device (shapes only, no memory).

    Parameters
    ----------
    config : dict
        Keyword arguments of :func:`create_model`, checked with
        :func:`check_config`.
    where : str
        What the configuration comes from, used in error messages.

    Returns
    -------
    model : torch.nn.Module
        The model, every tensor on the meta device.
    """
    config = check_config(config, where)
    try:
        with torch.device("meta"), _NoMetaInit():
            model = create_model(**config)
    except (ValueError, TypeError, AssertionError, RuntimeError) as err:
        raise ValueError(f"{where}: invalid model config: {err}") from None
    n_values = sum(p.numel() for p in model.parameters())
    if n_values > _MAX_VALUES:
        raise ValueError(
            f"{where}: the config describes {n_values:,} parameters (more than "
            f"{_MAX_VALUES:,}); refusing to build it."
        )
    return model


def count_parameters(name, n_outputs=None, head=None, **overrides):
    """Number of parameter values of a configuration, computed from its shapes.

    The model is built on the meta device: no memory is allocated.

    Parameters
    ----------
    name : str
        Configuration name (see :func:`list_configs`).
    n_outputs : int | None
        Outputs of the head (``None``: encoder with its reconstruction decoder).
    head : str | None
        Head type.
    **overrides
        Architecture options.

    Returns
    -------
    n_params : int
        The count ``create_model`` would give.
    """
    config = {"name": name, "n_outputs": n_outputs, "head": head, **overrides}
    model = meta_model(config, f"configuration {name!r}")
    return sum(p.numel() for p in model.parameters())
