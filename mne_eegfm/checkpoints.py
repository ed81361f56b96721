"""Saving and loading models: safetensors weights plus a checked JSON sidecar.

Model files written by mne-eegfm are a ``.safetensors`` file (tensors only) and a
JSON sidecar of the same stem (architecture config, input contract, model card, the
SHA-256 of the tensor file and ``sidecar_sha256``, the digest of the sidecar's own
content). Published checkpoints (LuMamba, LUNA, FEMBA; CC BY-ND 4.0) are read
unmodified from a file the user downloaded, or from the Hugging Face cache, and
remapped in memory only: no converted copy is ever written. Before a model is
built, its configuration is checked against sane bounds and against the tensor
shapes in the weights file (a safetensors header is read alone), so a crafted
file is refused without allocating it. The registry lives in
:mod:`mne_eegfm.registry`, file reading in :mod:`mne_eegfm.modelfile` and key
mapping in :mod:`mne_eegfm.layouts`; their public names are re-exported here.
"""

import json

from mne.utils import logger, verbose, warn
from safetensors.torch import save_file

from ._docs import fill_doc
from .cards import ModelCard
from .layouts import (
    infer_config,
    infer_head,
    meta_tensors,
    remap_state_dict,
    strip_prefixes,
)
from .modelfile import (
    FORMAT_VERSION,
    file_sha256,
    load_state_dict_file,
    sidecar_digest,
    sidecar_paths,
    tensor_shapes,
    verify_sha256,
)
from .registry import (
    DATA_DIR,
    DEFAULT_CLASSIFIER,
    DEFAULT_MODEL,
    REGISTRY,
    ModelEntry,
    Resolved,
    get_entry,
    list_models,
    resolve,
)
from .utils import atomic_path, resolve_device

__all__ = [
    "DATA_DIR",
    "DEFAULT_CLASSIFIER",
    "DEFAULT_MODEL",
    "FORMAT_VERSION",
    "REGISTRY",
    "ModelCard",
    "ModelEntry",
    "Resolved",
    "file_sha256",
    "get_entry",
    "infer_config",
    "infer_head",
    "list_models",
    "load_model",
    "load_state_dict_file",
    "remap_state_dict",
    "resolve",
    "save_model",
    "verify_sha256",
]

_HEAD_PREFIX = "classifier."
# Card fields set when a model is loaded: never saved.
_LOAD_TIME = ("weights_file", "weights_sha256", "sidecar_sha256", "contract")


def _without_load_time(card):
    return {k: v for k, v in card.items() if k not in _LOAD_TIME}


def _saved_card(card, model, name):
    """Card to save: a loaded model's card, renamed when the weights may differ.

    Saving the card of a loaded model (``card=None``), or any card naming a
    published checkpoint, records the original as ``derived_from``: modified
    weights must not pass for the published ones. Load-time fields (weights file
    name and digests, contract) are not saved.
    """
    given = card is not None
    source = card if given else getattr(model, "card", None)
    where = f"the card given for {name}"
    card = _without_load_time(
        ModelCard.from_dict(
            dict(source) if isinstance(source, dict) else source, where=where
        ).to_dict()
    )
    if isinstance(card.get("encoder_card"), dict):
        card["encoder_card"] = _without_load_time(card["encoder_card"])
    base = card.get("name")
    published = base in REGISTRY and REGISTRY[base].hub_repo is not None
    if base is not None and base != name and (published or not given):
        card["derived_from"] = base
        card["name"] = name
    return ModelCard.from_dict({**card, "name": card.get("name", name)}, where=where)


def _contract_dict(contract):
    from .preprocessing import InputContract

    if isinstance(contract, InputContract):
        return contract.to_dict()
    return InputContract.from_dict(dict(contract)).to_dict()


@verbose
@fill_doc
def save_model(model, path, *, contract, card=None, verbose=None):  # noqa: D417 (docdict)
    """Save a model as safetensors plus a JSON sidecar, atomically.

    Parameters
    ----------
    model : torch.nn.Module
        A model from :func:`mne_eegfm.models.create_model` (it needs ``.config``).
    path : path-like
        Destination; ``.safetensors`` and ``.json`` files with this stem are
        written (an existing pair is replaced).
    contract : InputContract | dict
        The input contract the model expects.
    card : ModelCard | dict | None
        Model card (name, licence, source, attribution, labels, description, ...;
        see :class:`~mne_eegfm.cards.ModelCard`). Defaults to ``model.card``
        when the model has one.
    %(verbose)s

    Returns
    -------
    tensor_path : pathlib.Path
        The ``.safetensors`` file written (the sidecar has the same stem).
    """
    tensor_path, json_path = sidecar_paths(path)
    tensor_path.parent.mkdir(parents=True, exist_ok=True)
    card = _saved_card(card, model, tensor_path.stem)
    if "-ND" in str(card.licence or "").upper():
        warn(
            f"{tensor_path.name} is derived from {card.licence} weights: keep it "
            "for internal use, do not redistribute it."
        )
    tensors = {
        key: value.detach().to("cpu").contiguous()
        for key, value in model.state_dict().items()
    }
    with atomic_path(tensor_path) as tmp:
        save_file(tensors, tmp)
        tmp.chmod(0o644)  # safetensors creates owner-only files; share like any file
    meta = {
        "format": "mne-eegfm-model",
        "format_version": FORMAT_VERSION,
        "weights": tensor_path.name,
        "sha256": file_sha256(tensor_path),
        "config": model.config,
        "contract": _contract_dict(contract),
        "card": card.to_dict(),
    }
    meta = json.loads(json.dumps(meta))  # the digest is of the JSON as read back
    meta["sidecar_sha256"] = sidecar_digest(meta)
    text = json.dumps(meta, indent=2, sort_keys=True)
    with atomic_path(json_path) as tmp:
        tmp.write_text(text + "\n")
    logger.info(f"Saved model to {tensor_path} and {json_path.name}")
    return tensor_path


def _choose_head(state_dict, config, n_outputs, head):
    """Head type and size of the model to build, and whether to drop the saved head."""
    saved_head, saved_n = infer_head(state_dict)
    if n_outputs is None:
        if head not in (None, saved_head):
            raise ValueError(
                f"The checkpoint has no {head} head; pass n_outputs to create one."
            )
        return saved_head, saved_n, False
    head = head or saved_head or config.get("head") or "query"
    replace = saved_head is not None and (head, n_outputs) != (saved_head, saved_n)
    if replace:
        warn(
            f"The checkpoint's {saved_head} head ({saved_n} outputs) is replaced by "
            f"a new, randomly initialised {head} head with {n_outputs} outputs."
        )
    return head, n_outputs, replace


@verbose
@fill_doc
def load_model(  # noqa: D417 (docdict)
    name_or_path=DEFAULT_MODEL,
    *,
    weights=None,
    n_outputs=None,
    head=None,
    device="cpu",
    precision="float32",
    local_files_only=True,
    verbose=None,
):
    """Load a registered or saved model, with its input contract and card.

    Parameters
    ----------
    name_or_path : str | path-like
        A registry name (see :func:`list_models`), the path of a model file
        written by :func:`save_model` (``.safetensors`` or ``.json``, or the
        stem), or a weights file without sidecar (e.g. a downloaded published
        checkpoint: its architecture is inferred from its keys). See
        :func:`~mne_eegfm.registry.resolve`.
    weights : path-like | None
        For a registry name: a local weights file to use instead of the packaged
        or cached one, e.g. the published checkpoint you downloaded
        (``.safetensors`` or a weights-only PyTorch file). Read unmodified.
    n_outputs : int | None
        Number of outputs of the task head. ``None`` uses the checkpoint's head
        (or no head for an encoder checkpoint). A value different from the
        checkpoint's head creates a new, randomly initialised head.
    head : str | None
        Head type, ``"query"``, ``"mamba"`` or ``"linear"``; ``None`` infers it
        from the checkpoint keys (default ``"query"`` for a new head).
    device : str | torch.device
        Device of the returned model (``"auto"`` picks CUDA when available).
    precision : "float32" | "bfloat16" | "auto"
        Precision to run the model in, checked against ``device`` before
        anything is loaded (``ValueError`` where bfloat16 is not fast, naming
        the CPU or GPU) and kept as ``model.precision`` (resolved: "float32"
        or "bfloat16"). Weights stay float32: run the model inside
        ``precision_context(model.precision)`` (see
        :mod:`mne_eegfm.models.precision`), as :func:`mne_eegfm.embed` does.
    local_files_only : bool
        If True (default) never touch the network: weights come from the
        package, ``weights=`` or the local Hugging Face cache. If False,
        published weights are downloaded with ``huggingface_hub``.
    %(verbose)s

    Returns
    -------
    model : torch.nn.Module
        The model in eval mode, with ``model.contract`` (an
        :class:`mne_eegfm.InputContract`) and ``model.card`` (a
        :class:`~mne_eegfm.cards.ModelCard`; ``weights_file`` is the file name,
        ``weights_sha256`` and ``sidecar_sha256`` identify the weights and the
        sidecar's content).
    """
    from .models.precision import prepare_model, resolve_precision
    from .preprocessing import InputContract

    device = resolve_device(device)
    precision = resolve_precision(precision, device)
    resolved = resolve(name_or_path, weights=weights, local_files_only=local_files_only)
    if resolved.weights is None:
        raise ValueError(
            f"{resolved.name!r} is an architecture, not a trained model: build it "
            "with mne_eegfm.models.create_model, or give a registry name or a file."
        )
    path = resolved.weights
    digest, sidecar_sha = _verified_digests(resolved)
    model, state_dict = _checked_build(resolved, n_outputs, head)
    model.load_state_dict(remap_state_dict(state_dict, model), strict=True)
    model.contract = InputContract.from_dict(resolved.contract)
    model.card = _loaded_card(resolved, model, digest, sidecar_sha)
    logger.info(f"Loaded {model.card.name or path.stem} from {path.name}")
    model.precision = precision
    return prepare_model(model.to(device), precision, device)


def _verified_digests(resolved):
    """SHA-256 of the weights and of the sidecar's content, checked when known."""
    path = resolved.weights
    if resolved.sha256:
        digest = verify_sha256(path, resolved.sha256)
    else:
        logger.info(f"No SHA-256 recorded for {path.name}; integrity not verified.")
        digest = file_sha256(path)
    if resolved.sidecar is None:
        return digest, None
    meta = json.loads(resolved.sidecar.read_text())
    sidecar_sha = sidecar_digest(meta)
    if resolved.sidecar_sha256 and sidecar_sha != resolved.sidecar_sha256:
        raise ValueError(
            f"SHA-256 mismatch for the content of {resolved.sidecar.name}: the "
            "model's configuration, contract or card was changed; reinstall the "
            "package or restore the file."
        )
    return digest, sidecar_sha


def _checked_build(resolved, n_outputs, head):
    """Check the layout on the meta device, then build the model and read tensors."""
    from .models import create_model
    from .models.factory import meta_model

    where = resolved.weights.name
    tensors = None  # a safetensors file is read after the check, from its header
    if resolved.weights.suffix.lower() == ".safetensors":
        shapes = strip_prefixes(tensor_shapes(resolved.weights))
    else:
        tensors = strip_prefixes(load_state_dict_file(resolved.weights))
        shapes = {key: tuple(value.shape) for key, value in tensors.items()}
    head, n_outputs, replace = _choose_head(shapes, resolved.config, n_outputs, head)
    if replace:
        shapes = {k: v for k, v in shapes.items() if not k.startswith(_HEAD_PREFIX)}
    config = {**resolved.config, "n_outputs": n_outputs, "head": head}
    remap_state_dict(meta_tensors(shapes), meta_model(config, where), verbose=False)
    if tensors is None:
        tensors = strip_prefixes(load_state_dict_file(resolved.weights))
    state_dict = {k: v for k, v in tensors.items() if k in shapes}
    return create_model(**config), state_dict


def _loaded_card(resolved, model, digest, sidecar_sha):
    card = ModelCard.from_dict(resolved.card)
    n_outputs = model.config.get("n_outputs")
    if card.labels is not None and (n_outputs is None or len(card.labels) != n_outputs):
        card.labels = None
    card.arch = model.config["name"]
    card.contract = dict(resolved.contract)
    card.weights_file = resolved.weights.name
    card.weights_sha256 = digest
    card.sidecar_sha256 = sidecar_sha
    return card
