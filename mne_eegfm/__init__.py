"""Mamba-based EEG foundation models (LuMamba) for MNE-Python and scikit-learn."""

from importlib import import_module

__version__ = "0.1.0"

# Public names and the module that defines each. Imported lazily so that
# ``import mne_eegfm`` and the command line start fast.
_LAZY = {
    "EEGFMEmbedder": "estimators",
    "EEGFMClassifier": "estimators",
    "embed": "api",
    "predict": "api",
    "Embeddings": "results",
    "Predictions": "results",
    "create_model": "models",
    "list_models": "checkpoints",
    "load_model": "checkpoints",
    "get_positions": "montage",
    "InputContract": "preprocessing",
    "sys_info": "utils",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name):
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return __all__
