"""Building the model an estimator starts from, and freezing it."""

import torch
from mne.utils import warn

# Seed of the weights drawn for an architecture name without a checkpoint, so
# that two embedders built from the same name give the same embeddings.
RANDOM_INIT_SEED = 0


def _is_architecture(name):
    from ..checkpoints import REGISTRY
    from ..models import list_configs

    return isinstance(name, str) and name not in REGISTRY and name in list_configs()


def build_model(model, weights, *, n_outputs, head, model_kwargs, seed):
    """Return ``(module, contract)`` on the CPU, in eval mode.

    Random draws (a new head, or all weights for an architecture name) come
    from ``seed``; the global torch random state is left untouched.
    """
    from ..checkpoints import (
        DEFAULT_MODEL,
        load_model,
        load_state_dict_file,
        remap_state_dict,
    )
    from ..models import create_model
    from ..preprocessing import InputContract

    name = DEFAULT_MODEL if model is None else model
    head = head if n_outputs is not None else None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if _is_architecture(name):
            net = create_model(
                name, n_outputs=n_outputs, head=head, **(model_kwargs or {})
            )
            if weights is None:
                warn(
                    f"{name!r} is an architecture name, not a checkpoint: using "
                    "randomly initialised weights. Embeddings and predictions are "
                    "not meaningful; pass a checkpoint name (see "
                    "mne_eegfm.list_models()) or weights=PATH."
                )
            else:
                state = load_state_dict_file(weights)
                net.load_state_dict(remap_state_dict(state, net), strict=True)
            return net.eval(), InputContract()
        if model_kwargs:
            raise ValueError(
                "model_kwargs only applies to architecture names (see "
                f"mne_eegfm.models.list_configs()), not to the checkpoint {name!r}."
            )
        net = load_model(name, weights=weights, n_outputs=n_outputs, head=head)
    return net.eval(), net.contract


def freeze(net):
    """Eval mode, no gradients: the same kernels run after fit, pickle or load.

    (PyTorch's attention fast path depends on ``requires_grad``, which changes
    results at float32 rounding level.)
    """
    net.requires_grad_(False)
    return net.eval()


def card_dict(net):
    """The model card of ``net`` as a plain dict (a copy; empty without card)."""
    card = getattr(net, "card", None) or {}
    return dict(card) if isinstance(card, dict) else card.to_dict()
