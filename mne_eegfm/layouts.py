"""State-dict layouts: key mapping, head inference and architecture inference.

The key mapping of each architecture (prefixes of published files, parts only the
pretraining layout has) is declared by its module; the head fingerprints by the
heads (:mod:`mne_eegfm.models.heads`). Layouts are computed on the meta device.
"""

from functools import lru_cache

import torch
from mne.utils import logger, verbose

from ._docs import fill_doc
from .models import factory
from .models.heads import head_fingerprint

_HEAD_PREFIX = "classifier."


def _declared(name):
    return tuple(
        dict.fromkeys(
            prefix
            for module in factory.ARCH_MODULES.values()
            for prefix in getattr(module, name)
        )
    )


_PREFIXES = _declared("CHECKPOINT_PREFIXES")


def strip_prefixes(state_dict):
    """Drop the ``model.``/``module.`` prefixes of published checkpoint keys."""
    out = {}
    for key, value in state_dict.items():
        while key.startswith(_PREFIXES):
            key = key.split(".", 1)[1]
        out[key] = value
    return out


def infer_head(state_dict):
    """Head type and number of outputs of a (prefix-stripped) state dict.

    Parameters
    ----------
    state_dict : dict
        Checkpoint tensors (or shapes).

    Returns
    -------
    head : str | None
        ``"query"`` (has ``classifier.learned_agg``), ``"mamba"`` (has
        ``classifier.mamba_1``), ``"linear"`` (``classifier.fc1`` only) or
        ``None`` when there is no classifier.
    n_outputs : int | None
        First dimension of the classifier's last weight.
    """
    head, last = head_fingerprint(state_dict, _HEAD_PREFIX)
    if head is None:
        return None, None
    if last not in state_dict:
        raise ValueError(f"Checkpoint has a {head} head but no {last}.")
    return head, int(_shape(state_dict[last])[0])


def _shape(value):
    return tuple(value.shape) if hasattr(value, "shape") else tuple(value)


@lru_cache(maxsize=64)
def _layout(name, n_outputs, head):
    """Key -> shape of a configuration, from a model built on the meta device."""
    model = factory.meta_model({"name": name, "n_outputs": n_outputs, "head": head})
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


def _decoder_prefixes(name):
    return factory.ARCH_MODULES[factory.config_class(name)].DECODER_PREFIXES


def _comparable(shapes, name):
    """Keys and shapes that identify an architecture (no decoder, no head)."""
    skip = (*_decoder_prefixes(name), _HEAD_PREFIX)
    return {k: tuple(v) for k, v in shapes.items() if not k.startswith(skip)}


def infer_config(shapes, where="checkpoint"):
    """Infer the registered configuration a state-dict layout belongs to.

    Parameters
    ----------
    shapes : dict of str to tuple of int
        Key -> shape of the checkpoint (prefixes allowed).
    where : str
        The file, for error messages.

    Returns
    -------
    config : dict
        ``{"name": ..., "n_outputs": ..., "head": ...}`` for
        :func:`mne_eegfm.models.create_model`.
    """
    shapes = {k: _shape(v) for k, v in strip_prefixes(shapes).items()}
    head, n_outputs = infer_head(shapes)
    scores = []
    for name in factory.list_configs():
        target = _comparable(_layout(name, n_outputs, head), name)
        source = _comparable(shapes, name)
        same = sum(target.get(key) == shape for key, shape in source.items())
        if same == len(source) == len(target):
            return {"name": name, "n_outputs": n_outputs, "head": head}
        scores.append((same / max(len(source), len(target), 1), name))
    nearest = ", ".join(
        f"{name} ({score:.0%} of keys and shapes match)"
        for score, name in sorted(scores, reverse=True)[:3]
    )
    raise ValueError(
        f"{where} has no JSON sidecar and its {len(shapes)} tensors match no "
        f"registered architecture layout. Nearest: {nearest}. If it is a "
        "published checkpoint, load it with load_model(REGISTRY_NAME, weights=PATH)."
    )


def _names(items, limit=40):
    shown = ", ".join(items[:limit])
    return shown if len(items) <= limit else f"{shown} and {len(items) - limit} more"


@verbose
@fill_doc
def remap_state_dict(state_dict, model, verbose=None):  # noqa: D417 (docdict)
    """Map checkpoint keys onto ``model`` and check that they match exactly.

    ``model.``/``module.`` prefixes are stripped. The pretraining-only parts
    declared by the architecture (LuMamba/LUNA: ``decoder_head.*``,
    ``channel_emb.*``) are dropped when ``model`` has none (a classification
    model). A head absent from the checkpoint (a new task head) and a decoder
    entirely absent from it (an encoder-only checkpoint) keep their initial
    values. Each of these is logged. Any other missing or unexpected key, and any
    shape mismatch, is a ValueError that names the keys.

    Parameters
    ----------
    state_dict : dict of str to torch.Tensor
        Checkpoint tensors (meta tensors to check shapes only).
    model : torch.nn.Module
        The model to load into.
    %(verbose)s

    Returns
    -------
    state_dict : dict of str to torch.Tensor
        A complete state dict for ``model`` (``model.load_state_dict(...,
        strict=True)`` accepts it).
    """
    source = strip_prefixes(state_dict)
    target = model.state_dict()
    unexpected = sorted(set(source) - set(target))
    missing = sorted(set(target) - set(source))
    decoder = factory.ARCH_MODULES.get(type(model))
    decoder = decoder.DECODER_PREFIXES if decoder else _declared("DECODER_PREFIXES")

    dropped = [k for k in unexpected if k.startswith(decoder)]
    if dropped and not any(k.startswith(decoder) for k in target):
        logger.info(
            f"Dropped {len(dropped)} reconstruction-decoder tensors "
            f"({', '.join(p + '*' for p in decoder)}): not used by a "
            "classification model."
        )
        unexpected = [k for k in unexpected if k not in dropped]

    for prefixes, what in (
        ((_HEAD_PREFIX,), "task head (classifier.*): new, randomly initialised"),
        (
            decoder,
            "reconstruction decoder: absent from the checkpoint, "
            "left untrained (embeddings are unaffected)",
        ),
    ):
        group = [k for k in target if k.startswith(prefixes)]
        if group and not any(k.startswith(prefixes) for k in source):
            log = logger.info if prefixes == (_HEAD_PREFIX,) else logger.warning
            log(f"Kept the initial values of the {what} ({len(group)} tensors).")
            missing = [k for k in missing if k not in group]

    mismatched = [
        f"{key} {tuple(source[key].shape)} vs {tuple(target[key].shape)}"
        for key in sorted(set(source) & set(target))
        if source[key].shape != target[key].shape
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing keys: {_names(missing)}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected keys: {_names(unexpected)}")
    if mismatched:
        problems.append(
            f"{len(mismatched)} shape mismatches (checkpoint vs model): "
            f"{_names(mismatched)}"
        )
    if problems:
        name = getattr(model, "config", {}).get("name", type(model).__name__)
        raise ValueError(
            f"Checkpoint does not match the {name} architecture; " + "; ".join(problems)
        )
    return {key: source.get(key, value) for key, value in target.items()}


def meta_tensors(shapes):
    """Shape-only stand-ins (meta tensors) for checking a layout before loading."""
    return {key: torch.empty(shape, device="meta") for key, shape in shapes.items()}
