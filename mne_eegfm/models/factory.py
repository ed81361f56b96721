"""Build any model configuration by name."""

import copy
import inspect

from .femba import FEMBA
from .heads import HEADS
from .lumamba import LuMamba
from .luna import LUNA

_CONFIGS = {
    "lumamba-tiny": (LuMamba, {"num_queries": 6, "embed_dim": 64, "num_blocks": 2}),
    "lumamba-base": (LuMamba, {"num_queries": 8, "embed_dim": 64, "num_blocks": 6}),
    "luna-base": (LUNA, {"num_queries": 4, "embed_dim": 64, "depth": 8}),
    "luna-large": (LUNA, {"num_queries": 6, "embed_dim": 96, "depth": 10}),
    "luna-huge": (LUNA, {"num_queries": 8, "embed_dim": 128, "depth": 24}),
    "femba-tiny": (FEMBA, {"embed_dim": 35, "num_blocks": 2}),
    "femba-base": (FEMBA, {"embed_dim": 35, "num_blocks": 12}),
    "femba-large": (FEMBA, {"embed_dim": 79, "num_blocks": 4}),
}


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
    params = inspect.signature(cls).parameters
    full = {k: p.default for k, p in params.items() if k not in ("n_outputs", "head")}
    full.update(arch)
    model.config = {
        "name": name,
        "n_outputs": n_outputs,
        "head": head,
        **copy.deepcopy(full),
    }
    return model
