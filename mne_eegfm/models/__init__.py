"""Models: state-space layers, channel unification, LuMamba, LUNA, FEMBA and heads."""

from .._lazy import lazy_attributes

_LAZY = {
    "Mamba": "mamba",
    "Mamba2": "mamba2",
    "create_model": "factory",
    "list_configs": "factory",
    "LuMamba": "lumamba",
    "LUNA": "luna",
    "FEMBA": "femba",
}

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY)
__all__ = __dir__()
