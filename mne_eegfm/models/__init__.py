"""Models: state-space layers, channel unification, LuMamba, LUNA, FEMBA and heads."""

from importlib import import_module

_LAZY = {
    "Mamba": "mamba",
    "Mamba2": "mamba2",
    "create_model": "factory",
    "list_configs": "factory",
    "LuMamba": "lumamba",
    "LUNA": "luna",
    "FEMBA": "femba",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return __all__
