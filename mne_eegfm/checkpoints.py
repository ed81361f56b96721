"""Checkpoint registry, safe model files and loading of published weights.

Model files written by mne-eegfm are a ``.safetensors`` file (tensors only) and a
JSON sidecar of the same stem (architecture config, input contract, model card and
the SHA-256 of the tensor file). Published checkpoints (LuMamba, LUNA, FEMBA; CC
BY-ND 4.0) are read unmodified from a file the user downloaded, or from the
Hugging Face cache, and remapped in memory only: no converted copy is ever written.
"""

import hashlib
import json
import pickle
from dataclasses import dataclass, field
from math import prod
from pathlib import Path

import torch
from mne.utils import logger, verbose, warn
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from .utils import atomic_path, resolve_device

DEFAULT_MODEL = "lumamba-tiny-gb"
DEFAULT_CLASSIFIER = "lumamba-tiny-gb-epilepsy"
DATA_DIR = Path(__file__).resolve().parent / "data"
FORMAT_VERSION = 1

_TORCH_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin")
_PREFIXES = ("model.", "module.")
_DECODER_PREFIXES = ("decoder_head.", "channel_emb.")
_HEAD_PREFIX = "classifier."
# Last layer of each head type: its first dimension is the number of outputs.
_HEAD_LAST_WEIGHT = {
    "query": "classifier.decoder_ffn.fc2.weight",
    "mamba": "classifier.fc3.weight",
    "linear": "classifier.fc1.weight",
}

_CC_BY_ND = "CC BY-ND 4.0"
_ND_NOTE = (
    "Weights licensed CC BY-ND 4.0: the unmodified file may be used and shared "
    "with attribution; fine-tuned, quantised or converted weights may be used "
    "internally but must not be redistributed."
)
_LUMAMBA_CITATION = (
    "Broustail D et al. LuMamba: Latent Unified Mamba for Electrode "
    "Topology-Invariant and Efficient EEG Modeling. arXiv:2603.19100"
)
_LUNA_CITATION = (
    "Doner B et al. LUNA: Efficient and Topology-Agnostic Foundation Model for "
    "EEG Signal Analysis. arXiv:2510.22257"
)
_FEMBA_CITATION = (
    "Tegon A, Ingolfsson TM, Wang X, Benini L, Li Y. FEMBA: Efficient and "
    "Scalable EEG Analysis with a Bidirectional Mamba Foundation Model. "
    "arXiv:2502.06438"
)
_GB_ATTRIBUTION = (
    "Pretrained by mne-eegfm on 'EEG data of people with epilepsy and controls "
    "in Guinea-Bissau' (van Hees VT et al., Zenodo 10.5281/zenodo.1252141, CC BY "
    "4.0) and small public recordings shipped with MNE/EEGLAB test data."
)

# Preprocessing of the published TUH-trained checkpoints (model spec section 1).
_TUH_CONTRACT = {
    "sfreq": 256.0,
    "l_freq": 0.1,
    "h_freq": 75.0,
    "notch": None,
    "units": "uV",
    "window_s": 5.0,
    "normalization": "zscore",
    "montage": "unipolar",
}
_TCP_CONTRACT = {**_TUH_CONTRACT, "montage": "bipolar"}
# Our shipped models follow the Guinea-Bissau recordings (128 Hz Emotiv).
_GB_CONTRACT = {
    **_TUH_CONTRACT,
    "sfreq": 128.0,
    "l_freq": 0.5,
    "h_freq": 45.0,
    "window_s": 10.0,
}


@dataclass(frozen=True)
class ModelEntry:
    """One registry entry: where a checkpoint lives and what it expects.

    Parameters
    ----------
    name : str
        Registry name, e.g. ``"luna-base"``.
    arch : str
        Architecture config name for :func:`mne_eegfm.models.create_model`.
    contract : dict
        Fields of :class:`mne_eegfm.InputContract`.
    licence : str
        Licence of the weights.
    source : str
        Where the weights come from (project, paper).
    attribution : str
        Attribution text shown in the model card.
    filename : str
        File name inside the package data folder, or inside ``hub_repo``.
        ``None`` when the published file name is not recorded here.
    hub_repo : str | None
        Hugging Face repository, or ``None`` for files shipped in the package.
    overrides : dict
        Keyword arguments passed to ``create_model`` with ``arch``.
    labels : tuple of str | None
        Class names of the task head, ``None`` for an encoder.
    head : str | None
        Head type of a task checkpoint (``"query"``, ``"mamba"``, ``"linear"``).
    sha256 : str | None
        Expected SHA-256 of the file, ``None`` when unknown.
    n_params : int | None
        Number of values of the architecture built with this entry's head
        (``create_model`` count), shown when the file is not on this machine.
    description : str
        One-line description.
    """

    name: str
    arch: str
    contract: dict
    licence: str
    source: str
    attribution: str
    filename: str | None
    hub_repo: str | None = None
    overrides: dict = field(default_factory=dict)
    labels: tuple | None = None
    head: str | None = None
    sha256: str | None = None
    n_params: int | None = None
    description: str = ""


# Values of each architecture as create_model builds it (checked by the tests).
_N_PARAMS = {
    ("lumamba-tiny", None): 4_194_337,
    ("lumamba-tiny", "query"): 5_280_955,
    ("lumamba-tiny", "linear"): 4_095_547,
    ("luna-base", None): 6_672_417,
    ("luna-large", None): 40_660_337,
    ("luna-huge", None): 303_769_569,
    ("femba-tiny", None): 7_930_967,
    ("femba-base", None): 46_746_667,
    ("femba-large", None): 77_469_095,
    ("femba-base", "mamba"): 47_147_885,
    ("femba-large", "mamba"): 77_823_849,
}


def _lumamba_entry(variant, objective):
    return ModelEntry(
        name=f"lumamba-{variant}-tuh",
        arch="lumamba-tiny",
        contract=_TUH_CONTRACT,
        licence=_CC_BY_ND,
        source="PulpBio/LuMamba (Hugging Face), pulp-bio/BioFoundation",
        attribution=f"LuMamba weights by the PULP Platform team. {_LUMAMBA_CITATION}. "
        f"{_ND_NOTE}",
        filename=None,
        hub_repo="PulpBio/LuMamba",
        n_params=_N_PARAMS["lumamba-tiny", None],
        description=f"Published LuMamba-Tiny encoder pretrained on TUEG ({objective}); "
        "topology-invariant, trained on TCP bipolar TUH data.",
    )


def _luna_entry(size):
    return ModelEntry(
        name=f"luna-{size}",
        arch=f"luna-{size}",
        contract=_TUH_CONTRACT,
        licence=_CC_BY_ND,
        source="PulpBio/LUNA (Hugging Face, formerly thorir/LUNA), "
        "pulp-bio/BioFoundation",
        attribution=f"LUNA weights by the PULP Platform team. {_LUNA_CITATION}. "
        f"{_ND_NOTE}",
        filename=f"LUNA_{size}.safetensors",
        hub_repo="PulpBio/LUNA",
        n_params=_N_PARAMS[f"luna-{size}", None],
        description=f"Published LUNA-{size.capitalize()} encoder pretrained on TUEG "
        "and Siena; topology-invariant.",
    )


_FEMBA_TASKS = {
    "tuab": (("normal", "abnormal"), "abnormal EEG detection (TUAB)"),
    "tuar": (None, "artifact detection (TUAR)"),
    "tusl": (None, "slowing and seizure detection (TUSL)"),
}


def _femba_entry(size, task):
    labels, what = _FEMBA_TASKS[task]
    return ModelEntry(
        name=f"femba-{size}-{task}",
        arch=f"femba-{size}",
        contract=_TCP_CONTRACT,
        licence=_CC_BY_ND,
        source="PulpBio/FEMBA (Hugging Face), pulp-bio/BioFoundation",
        attribution=f"FEMBA weights by the PULP Platform team. {_FEMBA_CITATION}. "
        f"{_ND_NOTE}",
        filename=f"{task.upper()}/FEMBA_{size}.safetensors",
        hub_repo="PulpBio/FEMBA",
        labels=labels,
        head="mamba",
        n_params=_N_PARAMS[f"femba-{size}", None if labels is None else "mamba"],
        description=f"Published FEMBA-{size.capitalize()} fine-tuned for {what}; "
        "fixed 22-channel TCP bipolar montage.",
    )


def _build_registry():
    entries = [
        ModelEntry(
            name="lumamba-tiny-gb",
            arch="lumamba-tiny",
            contract={**_GB_CONTRACT},
            licence="CC BY 4.0",
            source="mne-eegfm (shipped in the package)",
            attribution=_GB_ATTRIBUTION,
            filename="lumamba-tiny-gb.safetensors",
            sha256="d18f64cc64999c1a929f26d083d0b73099d4a79ae1f462400313da1163ab4dc8",
            n_params=_N_PARAMS["lumamba-tiny", None],
            description="LuMamba-Tiny encoder pretrained by mne-eegfm on real "
            "public EEG (default embedding model).",
        ),
        ModelEntry(
            name="lumamba-tiny-gb-epilepsy",
            arch="lumamba-tiny",
            contract={**_GB_CONTRACT},
            licence="CC BY 4.0",
            source="mne-eegfm (shipped in the package)",
            attribution=_GB_ATTRIBUTION,
            filename="lumamba-tiny-gb-epilepsy.safetensors",
            sha256="716540fbae24eea40a320a7c6fad969e33709d5f4d6a869af2881eae290ffe94",
            labels=("Control", "Epilepsy"),
            head="linear",
            n_params=_N_PARAMS["lumamba-tiny", "linear"],
            description="Epilepsy vs control classifier on the shipped encoder "
            "(research demonstration, not a diagnostic device).",
        ),
        _lumamba_entry("recon", "masked reconstruction only"),
        _lumamba_entry("lejepa", "LeJEPA only"),
        _lumamba_entry("mixed", "reconstruction + LeJEPA, the paper's best"),
        *(_luna_entry(size) for size in ("base", "large", "huge")),
        *(_femba_entry(size, "tuab") for size in ("base", "large")),
        *(
            _femba_entry(size, task)
            for task in ("tuar", "tusl")
            for size in ("tiny", "base", "large")
        ),
    ]
    return {entry.name: entry for entry in entries}


REGISTRY = _build_registry()


def get_entry(name):
    """Return the registry entry called ``name``.

    Parameters
    ----------
    name : str
        Registry name (see :func:`list_models`).

    Returns
    -------
    entry : ModelEntry
        The entry.
    """
    if name not in REGISTRY:
        raise ValueError(
            f"Unknown model {name!r}. Registered models: {', '.join(REGISTRY)}."
        )
    return REGISTRY[name]


# ---------------------------------------------------------------------------
# Listing


def _file_values(path):
    """Number of tensor values in a safetensors file, read from its header."""
    with safe_open(path, framework="pt") as fid:
        return sum(prod(fid.get_slice(key).get_shape()) for key in fid.keys())


def _local_file(entry):
    """Path of the entry's file if it is on this machine, else None."""
    if entry.hub_repo is None:
        path = DATA_DIR / entry.filename
        return path if path.is_file() else None
    if entry.filename is None:
        return None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    cached = try_to_load_from_cache(entry.hub_repo, entry.filename)
    return Path(cached) if isinstance(cached, str) else None


def list_models():
    """List the registered checkpoints.

    Returns
    -------
    models : list of dict
        One dict per checkpoint with keys ``name``, ``arch``, ``params`` (number
        of values in the weights file when it is on this machine, else of the
        architecture with its head; ``None`` when unknown), ``contract`` (dict of
        :class:`mne_eegfm.InputContract` fields) and ``labels`` (from the file's
        JSON sidecar when there is one, else from the registry), ``licence``,
        ``source``, ``file`` (package file or ``hub:REPO/FILE``) and
        ``available`` (whether the weights are on this machine).
    """
    out = []
    for entry in REGISTRY.values():
        local = _local_file(entry)
        contract, labels = dict(entry.contract), entry.labels
        sidecar = None if local is None else local.with_suffix(".json")
        if sidecar is not None and sidecar.is_file():
            meta = _read_sidecar(sidecar)
            contract = meta["contract"]
            labels = (meta.get("card") or {}).get("labels", labels)
        if entry.hub_repo is None:
            where = entry.filename
        else:
            where = f"hub:{entry.hub_repo}/{entry.filename or '<choose a file>'}"
        out.append(
            {
                "name": entry.name,
                "arch": entry.arch,
                "params": entry.n_params if local is None else _file_values(local),
                "contract": contract,
                "labels": None if labels is None else list(labels),
                "licence": entry.licence,
                "source": entry.source,
                "file": where,
                "available": local is not None,
            }
        )
    return out


# ---------------------------------------------------------------------------
# Safe file I/O


def file_sha256(path):
    """Return the SHA-256 hex digest of a file.

    Parameters
    ----------
    path : path-like
        The file.

    Returns
    -------
    digest : str
        Lower-case hexadecimal SHA-256.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fid:
        for block in iter(lambda: fid.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path, expected):
    """Raise a ValueError if the SHA-256 of ``path`` is not ``expected``.

    Parameters
    ----------
    path : path-like
        The file.
    expected : str
        Expected hexadecimal SHA-256.
    """
    actual = file_sha256(path)
    if actual != expected.lower():
        raise ValueError(
            f"SHA-256 mismatch for {path}: expected {expected.lower()}, got "
            f"{actual}. The file is corrupted, truncated or not the expected "
            "checkpoint; download it again."
        )


def _unwrap(obj, path):
    while isinstance(obj, dict):
        inner = [k for k in ("state_dict", "model") if isinstance(obj.get(k), dict)]
        if not inner:
            break
        obj = obj[inner[0]]
    if not isinstance(obj, dict):
        raise ValueError(f"{path} does not hold a state dict (got {type(obj)}).")
    bad = [key for key, value in obj.items() if not isinstance(value, torch.Tensor)]
    if bad:
        raise ValueError(
            f"{path} holds entries that are not tensors: {', '.join(map(str, bad))}."
        )
    return dict(obj)


def load_state_dict_file(path):
    """Read a state dict from a file without executing code.

    Parameters
    ----------
    path : path-like
        A ``.safetensors`` file, or a PyTorch file (``.pt``, ``.pth``, ``.ckpt``,
        ``.bin``) read with ``torch.load(weights_only=True)``; ``"state_dict"`` and
        ``"model"`` containers are unwrapped. Pickles that would build arbitrary
        Python objects are refused.

    Returns
    -------
    state_dict : dict of str to torch.Tensor
        The tensors, on the CPU.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"Checkpoint file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        try:
            return load_file(path, device="cpu")
        except (SafetensorError, OSError, ValueError) as err:
            raise ValueError(
                f"Could not read {path}: not a valid safetensors file "
                f"(truncated or corrupted?): {err}"
            ) from err
    if suffix not in _TORCH_SUFFIXES:
        raise ValueError(
            f"Unsupported checkpoint file {path}: expected .safetensors or one of "
            f"{', '.join(_TORCH_SUFFIXES)}."
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"Refused to load {path}: it contains Python objects other than "
            "tensors, which could execute code when unpickled (only "
            f"weights_only loading is allowed). Details: {err}"
        ) from err
    except (RuntimeError, EOFError, OSError) as err:
        raise ValueError(
            f"Could not read {path}: truncated or corrupted PyTorch file: {err}"
        ) from err
    return _unwrap(obj, path)


def _sidecar_paths(path):
    """Return (tensor file, JSON sidecar) for a model file path or stem."""
    path = Path(path).expanduser()
    if path.suffix.lower() in (".safetensors", ".json"):
        path = path.with_suffix("")
    return (
        path.with_name(path.name + ".safetensors"),
        path.with_name(path.name + ".json"),
    )


def _saved_card(card, model, name):
    """Card to save: a loaded model's card, renamed when the weights may differ.

    Saving the card of a loaded model (``card=None``), or any card naming a
    published checkpoint, records the original as ``derived_from``: modified
    weights must not pass for the published ones.
    """
    given = card is not None
    card = dict(card if given else getattr(model, "card", None) or {})
    card.pop("weights_file", None)
    base = card.get("name")
    published = base in REGISTRY and REGISTRY[base].hub_repo is not None
    if base is not None and base != name and (published or not given):
        card["derived_from"] = base
        card["name"] = name
    return {"name": name, **card}


def _contract_dict(contract):
    from .preprocessing import InputContract

    if isinstance(contract, InputContract):
        return contract.to_dict()
    return InputContract.from_dict(dict(contract)).to_dict()


@verbose
def save_model(model, path, *, contract, card=None, verbose=None):
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
    card : dict | None
        Model card (name, licence, source, attribution, labels, description, ...).
        Defaults to ``model.card`` when the model has one.
    verbose : bool | str | int | None
        Control the logging output (see :func:`mne.verbose`).

    Returns
    -------
    tensor_path : pathlib.Path
        The ``.safetensors`` file written (the sidecar has the same stem).
    """
    tensor_path, json_path = _sidecar_paths(path)
    tensor_path.parent.mkdir(parents=True, exist_ok=True)
    card = _saved_card(card, model, tensor_path.stem)
    if "-ND" in str(card.get("licence", "")).upper():
        warn(
            f"{tensor_path.name} is derived from {card['licence']} weights: keep it "
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
        "card": card,
    }
    text = json.dumps(meta, indent=2, sort_keys=True)
    with atomic_path(json_path) as tmp:
        tmp.write_text(text + "\n")
    logger.info(f"Saved model to {tensor_path} and {json_path.name}")
    return tensor_path


def _read_sidecar(json_path):
    try:
        meta = json.loads(Path(json_path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"Could not read model sidecar {json_path}: {err}") from err
    missing = [key for key in ("config", "contract") if key not in meta]
    if missing:
        raise ValueError(
            f"Model sidecar {json_path} lacks {', '.join(missing)}; it was not "
            "written by mne_eegfm.checkpoints.save_model."
        )
    return meta


# ---------------------------------------------------------------------------
# Key mapping


def _strip_prefixes(state_dict):
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
        Checkpoint tensors.

    Returns
    -------
    head : str | None
        ``"query"`` (has ``classifier.learned_agg``), ``"mamba"`` (has
        ``classifier.mamba_1``), ``"linear"`` (``classifier.fc1`` only) or
        ``None`` when there is no classifier.
    n_outputs : int | None
        First dimension of the classifier's last weight.
    """
    keys = [key for key in state_dict if key.startswith(_HEAD_PREFIX)]
    if not keys:
        return None, None
    if "classifier.learned_agg" in state_dict:
        head = "query"
    elif any(key.startswith("classifier.mamba_1.") for key in keys):
        head = "mamba"
    elif {key.rsplit(".", 1)[0] for key in keys} == {"classifier.fc1"}:
        head = "linear"
    else:
        raise ValueError(
            f"Unrecognised classifier layout in checkpoint: {', '.join(sorted(keys))}"
        )
    last = _HEAD_LAST_WEIGHT[head]
    if last not in state_dict:
        raise ValueError(f"Checkpoint has a {head} head but no {last}.")
    return head, int(state_dict[last].shape[0])


def _names(items, limit=40):
    shown = ", ".join(items[:limit])
    return shown if len(items) <= limit else f"{shown} and {len(items) - limit} more"


@verbose
def remap_state_dict(state_dict, model, verbose=None):
    """Map checkpoint keys onto ``model`` and check that they match exactly.

    ``model.``/``module.`` prefixes are stripped. The reconstruction decoder and
    channel-name embedding (``decoder_head.*``, ``channel_emb.*``) are dropped
    when ``model`` has none (a classification model). A head absent from the
    checkpoint (a new task head) and a decoder entirely absent from it (an
    encoder-only checkpoint) keep their initial values. Each of these is logged.
    Any other missing or unexpected key, and any shape mismatch, is a ValueError
    that names the keys.

    Parameters
    ----------
    state_dict : dict of str to torch.Tensor
        Checkpoint tensors.
    model : torch.nn.Module
        The model to load into.
    verbose : bool | str | int | None
        Control the logging output (see :func:`mne.verbose`).

    Returns
    -------
    state_dict : dict of str to torch.Tensor
        A complete state dict for ``model`` (``model.load_state_dict(...,
        strict=True)`` accepts it).
    """
    source = _strip_prefixes(state_dict)
    target = model.state_dict()
    unexpected = sorted(set(source) - set(target))
    missing = sorted(set(target) - set(source))

    dropped = [k for k in unexpected if k.startswith(_DECODER_PREFIXES)]
    if dropped and not any(k.startswith(_DECODER_PREFIXES) for k in target):
        logger.info(
            f"Dropped {len(dropped)} reconstruction-decoder tensors "
            "(decoder_head.*, channel_emb.*): not used by a classification model."
        )
        unexpected = [k for k in unexpected if k not in dropped]

    for prefixes, what in (
        ((_HEAD_PREFIX,), "task head (classifier.*): new, randomly initialised"),
        (
            _DECODER_PREFIXES,
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
        name = model.config.get("name", type(model).__name__)
        raise ValueError(
            f"Checkpoint does not match the {name} architecture; " + "; ".join(problems)
        )
    return {key: source.get(key, value) for key, value in target.items()}


# ---------------------------------------------------------------------------
# Loading


def _how_to_get(entry):
    if entry.filename is None:
        what = (
            f"download the checkpoint you want from "
            f"https://huggingface.co/{entry.hub_repo}"
        )
    else:
        what = f"download {entry.filename} from https://huggingface.co/{entry.hub_repo}"
    return (
        f"{what} and pass weights=PATH to load_model({entry.name!r}, weights=PATH)"
        + (
            ""
            if entry.filename is None
            else ", or install huggingface_hub (pip install 'mne-eegfm[hub]') and "
            "call it with local_files_only=False to download it"
        )
        + f". Licence: {entry.licence}."
    )


def _hub_file(entry, local_files_only):
    if entry.filename is None:
        raise FileNotFoundError(
            f"No file name is recorded for {entry.name!r}; {_how_to_get(entry)}"
        )
    try:
        import huggingface_hub
    except ImportError:
        raise FileNotFoundError(
            f"Weights of {entry.name!r} are not on this machine and huggingface_hub "
            f"is not installed; {_how_to_get(entry)}"
        ) from None
    if local_files_only:
        cached = huggingface_hub.try_to_load_from_cache(entry.hub_repo, entry.filename)
        if not isinstance(cached, str):
            raise FileNotFoundError(
                f"Weights of {entry.name!r} are not in the local Hugging Face cache "
                f"and local_files_only=True (no network access); "
                f"{_how_to_get(entry)}"
            )
        return Path(cached)
    logger.info(
        f"Downloading {entry.hub_repo}/{entry.filename} (licence {entry.licence})"
    )
    return Path(huggingface_hub.hf_hub_download(entry.hub_repo, entry.filename))


def _registry_weights(entry, weights, local_files_only):
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"Weights file not found: {path}")
        return path
    if entry.hub_repo is not None:
        return _hub_file(entry, local_files_only)
    path = DATA_DIR / entry.filename
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: the weights of {entry.name!r} are not in this "
            "installation of mne-eegfm; reinstall the package or pass weights=PATH."
        )
    return path


def _entry_card(entry):
    return {
        "name": entry.name,
        "arch": entry.arch,
        "licence": entry.licence,
        "source": entry.source,
        "attribution": entry.attribution,
        "description": entry.description,
        "labels": None if entry.labels is None else list(entry.labels),
    }


def _resolve(name_or_path, weights, local_files_only):
    """Return (tensor path, config, contract dict, card, expected sha256)."""
    name = str(name_or_path)
    if name in REGISTRY:
        entry = REGISTRY[name]
        path = _registry_weights(entry, weights, local_files_only)
        json_path = path.with_suffix(".json")
        card = _entry_card(entry)
        config = {"name": entry.arch, **entry.overrides}
        contract = dict(entry.contract)
        own_file = weights is None or path.name == Path(entry.filename or "").name
        expected = entry.sha256 if own_file else None
        if path.suffix == ".safetensors" and json_path.is_file():
            meta = _read_sidecar(json_path)
            config, contract = meta["config"], meta["contract"]
            card.update(meta.get("card") or {})
            expected = expected or meta.get("sha256")
        return path, config, contract, card, expected
    if weights is not None:
        raise ValueError(
            "weights= is only used with a registry name; got the path "
            f"{name_or_path!r}. Registered models: {', '.join(REGISTRY)}"
        )
    tensor_path, json_path = _sidecar_paths(name_or_path)
    if not tensor_path.is_file():
        raise FileNotFoundError(
            f"{name_or_path!r} is neither a registered model ({', '.join(REGISTRY)}) "
            f"nor an existing model file ({tensor_path} not found)."
        )
    if not json_path.is_file():
        raise ValueError(
            f"{json_path} not found: {tensor_path} has no mne-eegfm sidecar. For a "
            "published checkpoint use load_model(REGISTRY_NAME, weights=PATH)."
        )
    meta = _read_sidecar(json_path)
    card = dict(meta.get("card") or {})
    return tensor_path, meta["config"], meta["contract"], card, meta.get("sha256")


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
def load_model(
    name_or_path=DEFAULT_MODEL,
    *,
    weights=None,
    n_outputs=None,
    head=None,
    device="cpu",
    local_files_only=True,
    verbose=None,
):
    """Load a registered or saved model, with its input contract and card.

    Parameters
    ----------
    name_or_path : str | path-like
        A registry name (see :func:`list_models`) or the path of a model file
        written by :func:`save_model` (``.safetensors`` or ``.json``, or the stem).
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
    local_files_only : bool
        If True (default) never touch the network: weights come from the
        package, ``weights=`` or the local Hugging Face cache. If False,
        published weights are downloaded with ``huggingface_hub``.
    verbose : bool | str | int | None
        Control the logging output (see :func:`mne.verbose`).

    Returns
    -------
    model : torch.nn.Module
        The model in eval mode, with ``model.contract`` (an
        :class:`mne_eegfm.InputContract`) and ``model.card`` (dict with name,
        licence, source, attribution, labels, ...).
    """
    path, config, contract, card, expected = _resolve(
        name_or_path, weights, local_files_only
    )
    from .models import create_model
    from .preprocessing import InputContract

    if expected:
        verify_sha256(path, expected)
    else:
        logger.info(f"No SHA-256 recorded for {path.name}; integrity not verified.")
    state_dict = _strip_prefixes(load_state_dict_file(path))
    head, n_outputs, replace = _choose_head(state_dict, config, n_outputs, head)
    if replace:
        state_dict = {
            k: v for k, v in state_dict.items() if not k.startswith(_HEAD_PREFIX)
        }
    config = {**config, "n_outputs": n_outputs, "head": head}
    model = create_model(**config)
    model.load_state_dict(remap_state_dict(state_dict, model), strict=True)
    labels = card.get("labels")
    if labels is not None and (n_outputs is None or len(labels) != n_outputs):
        card["labels"] = None
    card["weights_file"] = str(path)
    model.contract = InputContract.from_dict(contract)
    model.card = card
    logger.info(f"Loaded {card.get('name', path.stem)} from {path}")
    return model.to(resolve_device(device)).eval()
