"""The checkpoint registry and :func:`resolve`, which turns any model spec into files.

The registry is assembled from the declarations of the architecture modules
(``PUBLISHED`` in ``models/lumamba.py``, ``luna.py`` and ``femba.py``) and the two
models shipped in the package. Parameter counts are computed from the shapes
(:func:`mne_eegfm.models.factory.count_parameters`), never typed by hand.
"""

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from mne.utils import logger, warn

from . import modelfile
from .cards import ModelCard
from .models import factory

DEFAULT_MODEL = "lumamba-tiny-gb"
DEFAULT_CLASSIFIER = "lumamba-tiny-gb-epilepsy"
DATA_DIR = Path(__file__).resolve().parent / "data"

_CC_BY_ND = "CC BY-ND 4.0"
_ND_NOTE = (
    "Weights licensed CC BY-ND 4.0: the unmodified file may be used and shared "
    "with attribution; fine-tuned, quantised or converted weights may be used "
    "internally but must not be redistributed."
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
CONTRACTS = {
    "tuh": _TUH_CONTRACT,
    "tcp": {**_TUH_CONTRACT, "montage": "bipolar"},
    # Our shipped models follow the Guinea-Bissau recordings (128 Hz Emotiv).
    "gb": {
        **_TUH_CONTRACT,
        "sfreq": 128.0,
        "l_freq": 0.5,
        "h_freq": 45.0,
        "window_s": 10.0,
    },
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
    filename : str | None
        File name inside the package data folder, or inside ``hub_repo``;
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
        Expected SHA-256 of the weights file, ``None`` when unknown.
    sidecar_sha256 : str | None
        Expected SHA-256 of the JSON sidecar's content (shipped models).
    release_file : str | None
        Name of the file as published, used to recognise a downloaded file
        that has no sidecar.
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
    sidecar_sha256: str | None = None
    release_file: str | None = None
    description: str = ""

    @property
    def n_params(self):
        """Number of values of the architecture with this entry's head (computed)."""
        n_outputs = None if self.labels is None else len(self.labels)
        head = self.head if n_outputs else None
        overrides = tuple(sorted(self.overrides.items()))
        return _n_params(self.arch, n_outputs, head, overrides)

    def card(self):
        """Return the entry's model card.

        Returns
        -------
        card : ModelCard
            Name, architecture, licence, source, attribution, description and
            labels of the entry.
        """
        return ModelCard(
            name=self.name,
            arch=self.arch,
            licence=self.licence,
            source=self.source,
            attribution=self.attribution,
            description=self.description,
            labels=None if self.labels is None else list(self.labels),
        )


@cache
def _n_params(arch, n_outputs, head, overrides):
    return factory.count_parameters(arch, n_outputs, head, **dict(overrides))


def _published_entry(spec):
    team = spec["team"]
    labels = spec.get("labels")
    return ModelEntry(
        name=spec["name"],
        arch=spec["config"],
        contract=CONTRACTS[spec["contract"]],
        licence=_CC_BY_ND,
        source=spec.get(
            "source", f"{spec['hub_repo']} (Hugging Face), pulp-bio/BioFoundation"
        ),
        attribution=f"{team} weights by the PULP Platform team. {spec['citation']}. "
        f"{_ND_NOTE}",
        filename=spec["file"],
        hub_repo=spec["hub_repo"],
        labels=None if labels is None else tuple(labels),
        head=spec.get("head"),
        release_file=spec.get("release_file"),
        description=spec["description"],
    )


def _shipped_entries():
    common = {
        "arch": "lumamba-tiny",
        "contract": CONTRACTS["gb"],
        "licence": "CC BY 4.0",
        "source": "mne-eegfm (shipped in the package)",
        "attribution": _GB_ATTRIBUTION,
    }
    return [
        ModelEntry(
            name=DEFAULT_MODEL,
            filename=f"{DEFAULT_MODEL}.safetensors",
            sha256="ba309cbdbaeb33ba0c3e8788f6d34022fd430aa33e1b6c02b2fa4e7d53230c27",
            sidecar_sha256=(
                "900a4d77ec11f78a1344ab1191cb6ab62c71ae1f390655bf37fc066b66c26e5c"
            ),
            description="LuMamba-Tiny encoder pretrained by mne-eegfm on real "
            "public EEG (default embedding model).",
            **common,
        ),
        ModelEntry(
            name=DEFAULT_CLASSIFIER,
            filename=f"{DEFAULT_CLASSIFIER}.safetensors",
            sha256="db16dec82e1db2eab30de8a4170fcde0e67e504e41160b4dedd8700be3e18354",
            sidecar_sha256=(
                "4233e9dc1034a22ba8602d21caf1322db9429ad6394e36250ac42602f76cc8c5"
            ),
            labels=("Control", "Epilepsy"),
            head="linear",
            description="Epilepsy vs control classifier on the shipped encoder "
            "(research demonstration, not a diagnostic device).",
            **common,
        ),
    ]


def _build_registry():
    entries = _shipped_entries()
    for module in factory.ARCH_MODULES.values():
        entries += [_published_entry(spec) for spec in module.PUBLISHED]
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
# Where an entry's file is


def local_file(entry):
    """Path of the entry's weights if they are on this machine, else None."""
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


# ---------------------------------------------------------------------------
# resolve


@dataclass(frozen=True)
class Resolved:
    """What a model spec names, as returned by :func:`resolve`.

    Parameters
    ----------
    kind : str
        ``"registry"`` (a registry name), ``"file"`` (a model file with its JSON
        sidecar), ``"published-file"`` (a weights file without sidecar, e.g. a
        downloaded published checkpoint: architecture inferred from its keys) or
        ``"architecture"`` (a configuration name: no weights).
    name : str
        Registry name, file stem or configuration name.
    arch : str
        Architecture configuration name.
    config : dict
        Keyword arguments of :func:`mne_eegfm.models.create_model` (checked).
    contract : dict
        Fields of :class:`mne_eegfm.InputContract`.
    card : ModelCard
        The model card (without the load-time fields).
    weights : pathlib.Path | None
        The weights file (``None`` for an architecture).
    sidecar : pathlib.Path | None
        The JSON sidecar read, if any.
    sha256 : str | None
        Expected SHA-256 of the weights file, if known.
    sidecar_sha256 : str | None
        Expected SHA-256 of the sidecar's content, if known.
    """

    kind: str
    name: str
    arch: str
    config: dict
    contract: dict
    card: ModelCard
    weights: Path | None = None
    sidecar: Path | None = None
    sha256: str | None = None
    sidecar_sha256: str | None = None


def resolve(spec, *, weights=None, local_files_only=True):
    """Turn a model spec into its files, configuration, contract and card.

    Nothing is built and no weights are read (only safetensors headers, or the
    tensors of a PyTorch file without a sidecar, to infer its architecture).

    Parameters
    ----------
    spec : str | path-like
        A registry name (see :func:`list_models`), a model file written by
        :func:`~mne_eegfm.checkpoints.save_model` (``.safetensors`` or
        ``.json``, or their stem), a weights file without sidecar (e.g. a
        published checkpoint, ``.safetensors`` or a PyTorch file: the
        architecture is inferred from its keys) or an architecture name (see
        :func:`mne_eegfm.models.list_configs`).
    weights : path-like | None
        With a registry name: a local weights file to use instead of the
        packaged or cached one.
    local_files_only : bool
        If False, published weights missing from the Hugging Face cache are
        downloaded.

    Returns
    -------
    resolved : Resolved
        What ``spec`` names.
    """
    name = _spec_name(spec)
    if name in REGISTRY:
        return _resolve_entry(REGISTRY[name], weights, local_files_only)
    if weights is not None:
        raise ValueError(
            "weights= is only used with a registry name; got "
            f"{spec!r}. Registered models: {', '.join(REGISTRY)}"
        )
    if name in factory.list_configs() and not Path(name).exists():
        config = {"name": name}
        card = ModelCard(name=name, arch=name, description="Untrained architecture.")
        family = _family_contract(name)
        return Resolved("architecture", name, name, config, family, card)
    return _resolve_path(Path(name).expanduser())


def _spec_name(spec):
    if isinstance(spec, Path):
        spec = str(spec)
    if not isinstance(spec, str):
        raise ValueError(
            f"A model must be a registry name, an architecture name or a file "
            f"path, got {type(spec).__name__}."
        )
    if not spec.strip():
        raise ValueError(
            "The model name is empty; give a registry name "
            f"({', '.join(REGISTRY)}), an architecture or a model file."
        )
    return spec


def _resolve_entry(entry, weights, local_files_only):
    path = _registry_weights(entry, weights, local_files_only)
    own_file = weights is None or path.name == Path(entry.filename or "").name
    resolved = Resolved(
        "registry",
        entry.name,
        entry.arch,
        factory.check_config({"name": entry.arch, **entry.overrides}),
        dict(entry.contract),
        entry.card(),
        weights=path,
        sha256=entry.sha256 if own_file else None,
    )
    json_path = path.with_suffix(".json")
    if path.suffix != ".safetensors" or not json_path.is_file():
        return resolved
    meta = modelfile.read_sidecar(json_path)
    card = {**entry.card().to_dict(), **meta["card"].to_dict()}
    expected = entry.sidecar_sha256 if own_file else None
    return Resolved(
        "registry",
        entry.name,
        meta["config"]["name"],
        meta["config"],
        meta["contract"],
        ModelCard.from_dict(card, where=json_path.name),
        weights=path,
        sidecar=json_path,
        sha256=resolved.sha256 or meta.get("sha256"),
        sidecar_sha256=expected or meta.get("sidecar_sha256"),
    )


def _resolve_path(path):
    tensor_path, json_path = modelfile.sidecar_paths(path)
    if path.suffix.lower() in modelfile.TORCH_SUFFIXES and path.is_file():
        return _resolve_bare(path)
    if tensor_path.is_file() and json_path.is_file():
        meta = modelfile.read_sidecar(json_path)
        config = meta["config"]
        return Resolved(
            "file",
            tensor_path.stem,
            config["name"],
            config,
            meta["contract"],
            meta["card"],
            weights=tensor_path,
            sidecar=json_path,
            sha256=meta.get("sha256"),
            sidecar_sha256=meta.get("sidecar_sha256"),
        )
    if tensor_path.is_file():
        return _resolve_bare(tensor_path)
    if json_path.is_file():
        raise FileNotFoundError(
            f"{tensor_path} not found: the model file {json_path.name} has no "
            "weights beside it."
        )
    raise FileNotFoundError(
        f"{str(path)!r} is neither a registered model ({', '.join(REGISTRY)}), an "
        f"architecture ({', '.join(factory.list_configs())}) nor an existing model "
        f"file ({tensor_path} not found)."
    )


def _family_contract(arch):
    """Contract of the published checkpoints of an architecture's family."""
    cls = factory.config_class(arch)
    published = factory.ARCH_MODULES[cls].PUBLISHED
    return dict(CONTRACTS[published[0]["contract"]])


def _resolve_bare(path):
    """A weights file without sidecar: infer the architecture from its keys."""
    from .layouts import infer_config

    shapes = modelfile.tensor_shapes(path)
    config = infer_config(shapes, path.name)
    matches = [
        e
        for e in REGISTRY.values()
        if path.name in (e.release_file, Path(e.filename or "").name)
        and e.arch == config["name"]
    ]
    if len(matches) == 1:
        entry = matches[0]
        card, contract, name = entry.card(), dict(entry.contract), entry.name
        logger.info(f"{path.name} is the published {entry.name} checkpoint.")
    else:
        name = path.stem
        contract = _family_contract(config["name"])
        card = ModelCard(
            name=name,
            arch=config["name"],
            source=path.name,
            description=f"Weights file without sidecar, loaded as {config['name']} "
            "(architecture inferred from its keys).",
        )
        which = (
            f"it may be any of {', '.join(e.name for e in matches)}: pass "
            "load_model(NAME, weights=PATH) to say which"
            if matches
            else "it is not a registered file"
        )
        warn(
            f"{path.name} has no mne-eegfm sidecar and {which}; loaded as "
            f"{config['name']} with the input contract of the published "
            f"{config['name'].split('-')[0]} checkpoints (sfreq "
            f"{contract['sfreq']} Hz, {contract['window_s']} s windows). Check its "
            "licence and preprocessing at its source."
        )
    return Resolved(
        "published-file",
        name,
        config["name"],
        {"name": config["name"]},
        contract,
        card,
        weights=path,
    )


# ---------------------------------------------------------------------------
# Listing


def list_models():
    """List the registered checkpoints.

    Returns
    -------
    models : list of dict
        One dict per checkpoint with keys ``name``, ``arch``, ``params`` (number
        of values in the weights file when it is on this machine, else of the
        architecture with its head, computed from its shapes), ``contract``
        (dict of :class:`mne_eegfm.InputContract` fields) and ``labels`` (from
        the file's JSON sidecar when there is one, else from the registry),
        ``licence``, ``source``, ``file`` (package file or ``hub:REPO/FILE``)
        and ``available`` (whether the weights are on this machine).
    """
    out = []
    for entry in REGISTRY.values():
        local = local_file(entry)
        contract, labels = dict(entry.contract), entry.labels
        sidecar = None if local is None else local.with_suffix(".json")
        if sidecar is not None and sidecar.is_file():
            meta = modelfile.read_sidecar(sidecar)
            contract = meta["contract"]
            labels = meta["card"].labels or labels
        if entry.hub_repo is None:
            where = entry.filename
        else:
            where = f"hub:{entry.hub_repo}/{entry.filename or '<choose a file>'}"
        params = entry.n_params if local is None else modelfile.file_values(local)
        out.append(
            {
                "name": entry.name,
                "arch": entry.arch,
                "params": params,
                "contract": contract,
                "labels": None if labels is None else list(labels),
                "licence": entry.licence,
                "source": entry.source,
                "file": where,
                "available": local is not None,
            }
        )
    return out
