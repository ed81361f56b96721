"""Mamba-based EEG foundation models (LuMamba) for MNE-Python and scikit-learn."""

from ._lazy import lazy_attributes

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

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, extra=["__version__"])
__all__ = __dir__()
