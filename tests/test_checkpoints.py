"""Checkpoint registry, published-weight conformance and safe model files."""

import json
import pickle
import re
import socket
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from mne_eegfm import checkpoints, registry
from mne_eegfm.cards import ModelCard
from mne_eegfm.checkpoints import (
    DATA_DIR,
    DEFAULT_CLASSIFIER,
    DEFAULT_MODEL,
    REGISTRY,
    file_sha256,
    get_entry,
    infer_head,
    list_models,
    load_model,
    load_state_dict_file,
    remap_state_dict,
    resolve,
    save_model,
)
from mne_eegfm.modelfile import sidecar_digest

# Layout in checkpoint-keys.json -> (registry name, head, n_outputs) it loads as.
LAYOUTS = {
    "lumamba-tiny-pretrain": ("lumamba-recon-tuh", None, None),
    "lumamba-tiny-queryhead-2cls": ("lumamba-mixed-tuh", "query", 2),
    "lumamba-tiny-mambahead-2cls": ("lumamba-lejepa-tuh", "mamba", 2),
    "lumamba-tiny-linearhead-2cls": ("lumamba-recon-tuh", "linear", 2),
    "luna-base-pretrain": ("luna-base", None, None),
    "luna-base-queryhead-2cls": ("luna-base", "query", 2),
}


@pytest.fixture(scope="module")
def layouts(reference_path):
    with open(reference_path / "checkpoint-keys.json") as fid:
        return json.load(fid)


def _random_state_dict(layout, prefix="", seed=0):
    gen = torch.Generator().manual_seed(seed)
    return {
        prefix + key: torch.randn(shape, generator=gen) for key, shape in layout.items()
    }


def _inputs(n_channels=4, n_times=160, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(2, n_channels, n_times, generator=gen)
    positions = 0.09 * torch.randn(n_channels, 3, generator=gen)
    return x, positions


@pytest.fixture
def no_network(monkeypatch):
    """Make any attempt to open a network connection fail loudly."""

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def empty_hub_cache(monkeypatch, tmp_path):
    constants = pytest.importorskip("huggingface_hub.constants")
    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


# ---------------------------------------------------------------------------
# Conformance with the published state_dict layouts


@pytest.mark.parametrize("prefix", ["", "model."])
@pytest.mark.parametrize("layout_name", sorted(LAYOUTS))
def test_published_layout_loads_exactly(layouts, layout_name, prefix, tmp_path):
    name, head, n_outputs = LAYOUTS[layout_name]
    state_dict = _random_state_dict(layouts[layout_name], prefix)
    path = tmp_path / "published.safetensors"
    save_file(state_dict, path)
    before = file_sha256(path)

    model = load_model(name, weights=path)

    assert model.config["head"] == head
    assert model.config["n_outputs"] == n_outputs
    loaded = model.state_dict()
    assert set(loaded) == set(layouts[layout_name])  # zero missing, zero unexpected
    for key, value in state_dict.items():
        assert torch.equal(loaded[key[len(prefix) :]], value), key
    assert not model.training
    assert model.contract.sfreq == 256.0
    assert model.card["licence"] == "CC BY-ND 4.0"
    assert "BY-ND" in model.card["attribution"]
    assert file_sha256(path) == before  # the published file is never modified
    assert sorted(p.name for p in tmp_path.iterdir()) == ["published.safetensors"]


def test_classifier_drops_decoder(layouts, tmp_path):
    """A pretraining checkpoint loads into a classifier: decoder dropped, new head."""
    path = tmp_path / "recon.safetensors"
    save_file(_random_state_dict(layouts["lumamba-tiny-pretrain"], "module."), path)
    model = load_model("lumamba-recon-tuh", weights=path, n_outputs=3, head="linear")
    keys = set(model.state_dict())
    assert not any(k.startswith(("decoder_head.", "channel_emb.")) for k in keys)
    assert model.config["head"] == "linear"
    x, positions = _inputs(n_times=80)
    with torch.no_grad():
        assert model(x, positions).shape == (2, 3)


def test_new_head_size_replaces_saved_head(layouts, tmp_path):
    path = tmp_path / "query.safetensors"
    save_file(_random_state_dict(layouts["lumamba-tiny-queryhead-2cls"]), path)
    with pytest.warns(RuntimeWarning, match="replaced by a new"):
        model = load_model("lumamba-mixed-tuh", weights=path, n_outputs=5)
    assert model.config["head"] == "query"
    assert model.config["n_outputs"] == 5
    with pytest.raises(ValueError, match="no mamba head"):
        load_model("lumamba-mixed-tuh", weights=path, head="mamba")


def test_infer_head(layouts):
    expected = {
        "lumamba-tiny-pretrain": (None, None),
        "luna-base-pretrain": (None, None),
        "lumamba-tiny-queryhead-2cls": ("query", 2),
        "luna-base-queryhead-2cls": ("query", 2),
        "lumamba-tiny-mambahead-2cls": ("mamba", 2),
        "lumamba-tiny-linearhead-2cls": ("linear", 2),
    }
    for layout_name, result in expected.items():
        layout = {k: torch.empty(s) for k, s in layouts[layout_name].items()}
        assert infer_head(layout) == result, layout_name
    linear = {"classifier.fc1.weight": torch.empty(7, 384)}
    assert infer_head(linear) == ("linear", 7)
    with pytest.raises(ValueError, match="classifier.other.weight"):
        infer_head({"classifier.other.weight": torch.empty(2, 2)})


def test_missing_unexpected_and_shape_errors_name_keys(layouts):
    from mne_eegfm.models import create_model

    model = create_model("lumamba-tiny", n_outputs=2, head="linear")
    layout = layouts["lumamba-tiny-linearhead-2cls"]
    good = _random_state_dict(layout, "model.")
    assert set(remap_state_dict(good, model)) == set(layout)

    missing = dict(good)
    del missing["model.cross_attn.ffn.fc1.weight"]
    with pytest.raises(
        ValueError, match=r"1 missing keys: cross_attn\.ffn\.fc1\.weight"
    ):
        remap_state_dict(missing, model)

    unexpected = {**good, "model.blocks.0.attn.proj.weight": torch.zeros(1)}
    with pytest.raises(ValueError, match=r"1 unexpected keys: blocks\.0\.attn"):
        remap_state_dict(unexpected, model)

    wrong = {**good, "model.classifier.fc1.weight": torch.zeros(2, 10)}
    with pytest.raises(ValueError, match=r"classifier\.fc1\.weight \(2, 10\)"):
        remap_state_dict(wrong, model)


def test_femba_round_trip_through_registry(tmp_path):
    from mne_eegfm.models import create_model

    model = create_model("femba-tiny", n_outputs=4, head="mamba")
    sd = {"model." + k: v for k, v in model.state_dict().items()}
    path = tmp_path / "FEMBA_tiny.safetensors"
    save_file(sd, path)
    loaded = load_model("femba-tiny-tuar", weights=path)
    assert loaded.config["n_outputs"] == 4
    assert loaded.contract.montage == "bipolar"
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


# ---------------------------------------------------------------------------
# Safe files


class _Exploit:
    """Pickles to a call that creates a marker file when unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _save_zip(obj, path):
    torch.save(obj, path)


def _save_legacy(obj, path):
    torch.save(obj, path, _use_new_zipfile_serialization=False)


def _save_pickle(obj, path):
    with open(path, "wb") as fid:
        pickle.dump(obj, fid, protocol=2)


@pytest.mark.parametrize(
    "suffix, save",
    [(".pt", _save_zip), (".ckpt", _save_legacy), (".bin", _save_pickle)],
)
def test_code_executing_pickle_is_refused(tmp_path, suffix, save):
    marker = tmp_path / "pwned"
    path = tmp_path / f"evil{suffix}"
    save({"state_dict": {"w": torch.zeros(2)}, "x": _Exploit(marker)}, path)
    with pytest.raises(ValueError, match="Refused to load .*evil"):
        load_state_dict_file(path)
    assert not marker.exists()


def test_torch_file_unwraps_containers(tmp_path):
    sd = {"model.a.weight": torch.ones(2, 3), "model.b": torch.zeros(1)}
    path = tmp_path / "ckpt.pth"
    torch.save({"state_dict": sd, "epoch": 3}, path)
    loaded = load_state_dict_file(path)
    assert set(loaded) == set(sd)
    assert torch.equal(loaded["model.a.weight"], sd["model.a.weight"])

    bad = tmp_path / "bad.pt"
    torch.save({"a": torch.ones(1), "epoch": 3}, bad)
    with pytest.raises(ValueError, match="not tensors: epoch"):
        load_state_dict_file(bad)


def test_unsupported_and_missing_files(tmp_path):
    other = tmp_path / "weights.npz"
    other.write_bytes(b"x")
    with pytest.raises(ValueError, match="Unsupported checkpoint file"):
        load_state_dict_file(other)
    with pytest.raises(FileNotFoundError, match="nothere"):
        load_state_dict_file(tmp_path / "nothere.safetensors")


def test_truncated_or_corrupted_safetensors(tmp_path):
    path = tmp_path / "w.safetensors"
    save_file({"a": torch.randn(64, 64), "b": torch.randn(10)}, path)
    data = path.read_bytes()
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated.safetensors"):
        load_state_dict_file(truncated)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00\x01not a safetensors file" * 10)
    with pytest.raises(ValueError, match="garbage.safetensors"):
        load_state_dict_file(garbage)
    truncated_pt = tmp_path / "truncated.pt"
    torch.save({"a": torch.randn(64, 64)}, truncated_pt)
    truncated_pt.write_bytes(truncated_pt.read_bytes()[:300])
    with pytest.raises(ValueError, match="truncated.pt"):
        load_state_dict_file(truncated_pt)


def _contract():
    from mne_eegfm.preprocessing import InputContract

    return InputContract(sfreq=256.0, window_s=5.0)


def test_save_load_round_trip(tmp_path):
    from mne_eegfm.models import create_model

    torch.manual_seed(0)
    model = create_model("lumamba-tiny", n_outputs=3, head="mamba").eval()
    card = {"licence": "CC BY 4.0", "labels": ["a", "b", "c"], "source": "test"}
    written = save_model(model, tmp_path / "mine", contract=_contract(), card=card)

    assert written == tmp_path / "mine.safetensors"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.json", written.name]
    meta = json.loads((tmp_path / "mine.json").read_text())
    assert meta["sha256"] == file_sha256(written)
    assert meta["config"] == model.config
    assert meta["card"]["name"] == "mine"

    for source in (tmp_path / "mine.json", tmp_path / "mine"):
        state = load_model(source).state_dict()
        assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    loaded = load_model(written)
    assert loaded.contract == _contract()
    assert loaded.card["labels"] == ["a", "b", "c"]
    x, positions = _inputs(n_times=80)
    with torch.no_grad():
        assert torch.equal(loaded(x, positions), model(x, positions))


def test_saved_file_sha_mismatch(tmp_path):
    from mne_eegfm.models import create_model

    model = create_model("lumamba-tiny")
    path = save_model(model, tmp_path / "enc.safetensors", contract=_contract())
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    expected = json.loads((tmp_path / "enc.json").read_text())["sha256"]
    with pytest.raises(ValueError, match=f"SHA-256 mismatch for .*enc.*{expected}"):
        load_model(path)


def test_registry_sha_verified(tmp_path, monkeypatch):
    from mne_eegfm.models import create_model
    from mne_eegfm.preprocessing import InputContract

    model = create_model("lumamba-tiny")
    contract = InputContract(sfreq=128.0, h_freq=45.0, notch=50.0)
    path = save_model(model, tmp_path / "lumamba-tiny-gb", contract=contract)
    monkeypatch.setattr(registry, "DATA_DIR", tmp_path)
    entry = REGISTRY[DEFAULT_MODEL]
    good = file_sha256(path)
    meta = json.loads(path.with_suffix(".json").read_text())
    entry = replace(entry, sidecar_sha256=meta["sidecar_sha256"])
    monkeypatch.setitem(REGISTRY, DEFAULT_MODEL, replace(entry, sha256=good))
    loaded = load_model()
    assert loaded.card["name"] == "lumamba-tiny-gb"
    assert loaded.contract == contract  # the shipped file's card is authoritative
    listed = {m["name"]: m for m in list_models()}[DEFAULT_MODEL]
    assert listed["available"]
    assert listed["contract"] == contract.to_dict()
    assert listed["params"] == entry.n_params
    monkeypatch.setitem(REGISTRY, DEFAULT_MODEL, replace(entry, sha256="0" * 64))
    with pytest.raises(ValueError, match=f"expected {'0' * 64}, got {good}"):
        load_model()


def test_derived_model_keeps_licence(layouts, tmp_path):
    path = tmp_path / "published.safetensors"
    save_file(_random_state_dict(layouts["lumamba-tiny-pretrain"]), path)
    model = load_model("lumamba-recon-tuh", weights=path)
    with pytest.warns(RuntimeWarning, match="do not redistribute"):
        out = save_model(model, tmp_path / "finetuned", contract=model.contract)
    card = json.loads(out.with_suffix(".json").read_text())["card"]
    assert card["licence"] == "CC BY-ND 4.0"
    assert card["derived_from"] == "lumamba-recon-tuh"
    assert card["name"] == "finetuned"
    assert "weights_file" not in card
    with pytest.warns(RuntimeWarning, match="do not redistribute"):
        out = save_model(
            model, tmp_path / "ft2", contract=model.contract, card=dict(model.card)
        )
    card = json.loads(out.with_suffix(".json").read_text())["card"]
    assert (card["name"], card["derived_from"]) == ("ft2", "lumamba-recon-tuh")


def test_unknown_names(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a registered model"):
        load_model("no-such-model")
    with pytest.raises(ValueError, match="Unknown model 'no-such-model'"):
        get_entry("no-such-model")
    assert get_entry(DEFAULT_MODEL).filename == "lumamba-tiny-gb.safetensors"


# ---------------------------------------------------------------------------
# Hub access


def test_offline_hub_error_never_touches_network(no_network, empty_hub_cache):
    with pytest.raises(FileNotFoundError, match="LUNA_base.safetensors") as info:
        load_model("luna-base")
    message = str(info.value)
    assert "local_files_only=True" in message
    assert "weights=PATH" in message
    assert "huggingface.co/PulpBio/LUNA" in message
    with pytest.raises(FileNotFoundError, match="huggingface.co/PulpBio/LuMamba"):
        load_model("lumamba-mixed-tuh")


def test_hub_missing_package(no_network, monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(FileNotFoundError, match="huggingface_hub is not installed"):
        load_model("femba-base-tuab")


def _fill_cache(cache, repo, filename, source):
    folder = cache / f"models--{repo.replace('/', '--')}"
    revision = "0" * 40
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(revision)
    target = folder / "snapshots" / revision / filename
    target.parent.mkdir(parents=True)
    target.write_bytes(Path(source).read_bytes())
    return target


def test_hub_cache_and_download(
    layouts, tmp_path, monkeypatch, no_network, empty_hub_cache
):
    import huggingface_hub

    source = tmp_path / "LUNA_base.safetensors"
    save_file(_random_state_dict(layouts["luna-base-pretrain"], "model."), source)

    def fake_download(repo_id, filename, **kwargs):
        assert (repo_id, filename) == ("PulpBio/LUNA", "LUNA_base.safetensors")
        return str(source)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    model = load_model("luna-base", local_files_only=False)
    assert model.card["weights_file"] == source.name

    assert not {m["name"]: m for m in list_models()}["luna-base"]["available"]
    cached = _fill_cache(empty_hub_cache, "PulpBio/LUNA", source.name, source)
    model = load_model("luna-base")  # offline, from the cache
    assert model.card["weights_file"] == cached.name
    assert {m["name"]: m for m in list_models()}["luna-base"]["available"]


# ---------------------------------------------------------------------------
# Listing


def test_list_models(empty_hub_cache):
    models = {m["name"]: m for m in list_models()}
    published = [
        "lumamba-recon-tuh",
        "lumamba-lejepa-tuh",
        "lumamba-mixed-tuh",
        "luna-base",
        "luna-large",
        "luna-huge",
        "femba-base-tuab",
        "femba-tiny-tuar",
        "femba-large-tusl",
    ]
    assert {DEFAULT_MODEL, DEFAULT_CLASSIFIER, *published} <= set(models)
    keys = {"name", "arch", "params", "contract", "labels", "licence", "source"}
    for info in models.values():
        assert keys | {"file", "available"} <= set(info)
        assert info["params"] > 0
    for name in published:
        assert models[name]["contract"]["sfreq"] == 256.0
        assert models[name]["licence"] == "CC BY-ND 4.0"
        assert models[name]["contract"]["notch"] is None
        assert not models[name]["available"]
    assert models["femba-base-tuab"]["contract"]["montage"] == "bipolar"
    assert models["femba-base-tuab"]["labels"] == ["normal", "abnormal"]
    assert models["femba-base-tuab"]["file"] == (
        "hub:PulpBio/FEMBA/TUAB/FEMBA_base.safetensors"
    )
    assert models["luna-base"]["file"] == "hub:PulpBio/LUNA/LUNA_base.safetensors"
    assert models[DEFAULT_MODEL]["labels"] is None
    # The shipped models follow the 128-Hz Guinea-Bissau data they were trained on,
    # and the registry agrees with the contract in their JSON sidecars.
    for name in (DEFAULT_MODEL, DEFAULT_CLASSIFIER):
        sidecar = json.loads((DATA_DIR / f"{name}.json").read_text())
        assert models[name]["contract"] == sidecar["contract"]
        assert models[name]["contract"]["sfreq"] == 128.0
    assert models[DEFAULT_CLASSIFIER]["labels"] == ["Control", "Epilepsy"]
    assert models["luna-base"]["params"] < models["luna-large"]["params"]
    assert models["luna-large"]["params"] < models["luna-huge"]["params"]


def _check_params(names):
    from mne_eegfm.models import create_model

    for name in names:
        entry = REGISTRY[name]
        n_outputs = None if entry.labels is None else len(entry.labels)
        head = entry.head if n_outputs else None
        model = create_model(entry.arch, n_outputs=n_outputs, head=head)
        assert sum(p.numel() for p in model.parameters()) == entry.n_params, name


def test_registry_params_small():
    _check_params(["lumamba-recon-tuh", DEFAULT_CLASSIFIER, "luna-base"])


@pytest.mark.slow
def test_registry_params_all():
    with torch.device("meta"):
        _check_params(REGISTRY)


def test_sys_info():
    import io

    from mne_eegfm import sys_info

    out = io.StringIO()
    sys_info(fid=out)
    text = out.getvalue()
    for label in ("Python:", "torch:", "mne:", "numpy:", "sklearn:", "mamba-ssm:"):
        assert label in text
    assert "CUDA:" in text and "Threads:" in text


# ---------------------------------------------------------------------------
# Model cards


def test_model_card_round_trip_and_validation():
    card = ModelCard(
        name="m",
        arch="lumamba-tiny",
        licence="CC BY 4.0",
        labels=("a", "b"),
        input_statistics={"rms_uv": [1.0, 2.0]},
        extra={"note": "x"},
    )
    data = card.to_dict()
    assert data["labels"] == ["a", "b"] and "source" not in data
    assert ModelCard.from_dict(json.loads(json.dumps(data))) == card
    assert card["licence"] == "CC BY 4.0" and card.get("source", "-") == "-"
    assert dict(card) == data
    with pytest.raises(
        ValueError, match=r"Unknown model card key\(s\) in f.json: bogus"
    ):
        ModelCard.from_dict({"name": "m", "bogus": 1}, where="f.json")
    with pytest.raises(ValueError, match="'n_features_in' in f.json must be int"):
        ModelCard.from_dict({"n_features_in": "4"}, where="f.json")
    with pytest.raises(ValueError, match="'labels' in f.json must be a list"):
        ModelCard.from_dict({"labels": [{"a": 1}]}, where="f.json")
    with pytest.raises(ValueError, match="card of f.json must be a JSON object"):
        ModelCard.from_dict("name", where="f.json")


# ---------------------------------------------------------------------------
# resolve


def test_resolve_cases(layouts, tmp_path):
    from mne_eegfm.models import create_model

    shipped = resolve(DEFAULT_MODEL)
    assert (shipped.kind, shipped.arch) == ("registry", "lumamba-tiny")
    assert shipped.weights.name == f"{DEFAULT_MODEL}.safetensors"
    assert isinstance(shipped.card, ModelCard) and shipped.card.licence == "CC BY 4.0"
    arch = resolve("lumamba-base")
    assert (arch.kind, arch.weights, arch.config) == (
        "architecture",
        None,
        {"name": "lumamba-base"},
    )
    path = save_model(
        create_model("lumamba-tiny"), tmp_path / "m", contract=_contract()
    )
    for spec in (path, path.with_suffix(".json"), tmp_path / "m", str(tmp_path / "m")):
        found = resolve(spec)
        assert (found.kind, found.name, found.weights) == ("file", "m", path)
    bare = tmp_path / "LuMamba_ReconstructionOnly.safetensors"
    save_file(_random_state_dict(layouts["lumamba-tiny-pretrain"], "model."), bare)
    found = resolve(bare)
    assert (found.kind, found.name, found.arch) == (
        "published-file",
        "lumamba-recon-tuh",
        "lumamba-tiny",
    )
    for spec in ("", "  "):
        with pytest.raises(ValueError, match="model name is empty"):
            resolve(spec)
    with pytest.raises(ValueError, match="got int"):
        resolve(3)
    with pytest.raises(ValueError, match="weights= is only used with a registry"):
        resolve(path, weights=path)
    with pytest.raises(FileNotFoundError, match="neither a registered model"):
        resolve(tmp_path / "missing")
    path.unlink()
    with pytest.raises(FileNotFoundError, match="has no weights beside it"):
        resolve(tmp_path / "m.json")
    with pytest.raises(ValueError, match="an architecture, not a trained model"):
        load_model("lumamba-base")


# ---------------------------------------------------------------------------
# Files downloaded from a release, without sidecar


def test_bare_published_file_loads(tmp_path):
    from mne_eegfm.models import create_model

    model = create_model("lumamba-tiny")
    path = tmp_path / "LuMamba_ReconstructionOnly.safetensors"
    save_file({"model." + k: v for k, v in model.state_dict().items()}, path)
    loaded = load_model(path)
    assert loaded.card.name == "lumamba-recon-tuh"
    assert loaded.card.licence == "CC BY-ND 4.0"
    assert loaded.card.weights_file == path.name
    assert loaded.card.weights_sha256 == file_sha256(path)
    assert loaded.contract.sfreq == 256.0
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    # any name, with a task head: architecture and head from the layout
    clf = create_model("femba-tiny", n_outputs=3, head="mamba")
    other = tmp_path / "my-download.safetensors"
    save_file(clf.state_dict(), other)
    with pytest.warns(RuntimeWarning, match="no mne-eegfm sidecar"):
        loaded = load_model(other)
    assert (loaded.config["name"], loaded.config["n_outputs"]) == ("femba-tiny", 3)
    ambiguous = other.rename(tmp_path / "FEMBA_tiny.safetensors")  # TUAR or TUSL
    with pytest.warns(RuntimeWarning, match="femba-tiny-tuar, femba-tiny-tusl"):
        assert load_model(ambiguous).card.name == "FEMBA_tiny"


def test_golden_reference_file_infers_architecture(reference_path):
    path = reference_path / "golden" / "lumamba-tiny-22ch.weights.safetensors"
    with pytest.warns(RuntimeWarning, match="loaded as lumamba-tiny"):
        model = load_model(path)
    assert model.config["name"] == "lumamba-tiny" and model.config["head"] is None


def test_bare_file_without_known_layout_names_nearest(tmp_path):
    from mne_eegfm.models import create_model

    path = tmp_path / "odd.safetensors"
    save_file(create_model("lumamba-tiny", num_blocks=3).state_dict(), path)
    with pytest.raises(ValueError, match=r"odd.safetensors .* Nearest: lumamba-tiny"):
        load_model(path)


# ---------------------------------------------------------------------------
# Crafted model files (#15): refused before anything is built


@pytest.fixture
def saved(tmp_path):
    from mne_eegfm.models import create_model

    path = save_model(
        create_model("lumamba-tiny"), tmp_path / "m", contract=_contract()
    )
    return path, path.with_suffix(".json")


def _edit(json_path, change):
    meta = json.loads(json_path.read_text())
    change(meta)
    meta.pop("sidecar_sha256")
    json_path.write_text(json.dumps(meta))


@pytest.fixture
def no_real_build(monkeypatch):
    """Fail if a model is built anywhere but on the meta device."""
    from mne_eegfm.models import factory

    build = factory.create_model

    def only_meta(*args, **kwargs):
        assert torch.empty(0).device.type == "meta", "a model was built"
        return build(*args, **kwargs)

    monkeypatch.setattr(factory, "create_model", only_meta)


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda m: m["config"].update(num_blocks=100000), "num_blocks=100000 is out"),
        (lambda m: m["config"].update(embed_dim=200000), "embed_dim=200000 is out"),
        (lambda m: m["config"].update(num_blocks=4), "40 missing keys: mamba_blocks.2"),
        (lambda m: m.update(config="lumamba-tiny"), "config in m.json must be a JSON"),
        (lambda m: m["config"].update(evil=1), "'evil' is not an option of LuMamba"),
        (lambda m: m["config"].update(n_outputs="2"), "'n_outputs' must be int"),
        (lambda m: m["config"].update(name=["x"]), "m.json: unknown model"),
        (lambda m: m.update(card={"estimator ": 1}), "Unknown model card key"),
        (lambda m: m["contract"].update(sfreq="x"), "Invalid input contract in m"),
    ],
)
def test_crafted_model_json_refused(saved, no_real_build, change, match):
    _edit(saved[1], change)
    with pytest.raises(ValueError, match=match):
        load_model(saved[0])


def test_crafted_safetensors_header_refused(saved):
    data = bytearray(saved[0].read_bytes())
    n_header = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n_header])
    key = next(k for k in header if k != "__metadata__")
    header[key]["shape"] = [100000, 100000]
    text = json.dumps(header).encode()
    body = bytes(data[8 + n_header :])
    saved[0].write_bytes(len(text).to_bytes(8, "little") + text + body)
    with pytest.raises(ValueError, match=f"entry '{key}' is inconsistent"):
        checkpoints.tensor_shapes(saved[0])


def test_digest_covers_the_json(saved):
    path, json_path = saved
    first = load_model(path).card
    meta = json.loads(json_path.read_text())
    meta["card"]["description"] = "edited"
    json_path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="changed after it was saved"):
        load_model(path)
    _edit(json_path, lambda m: None)  # accept the edit: drop the recorded digest
    second = load_model(path).card
    assert second.weights_sha256 == first.weights_sha256
    assert second.sidecar_sha256 != first.sidecar_sha256


def test_shipped_sidecars_digests_and_no_machine_paths():
    for name in (DEFAULT_MODEL, DEFAULT_CLASSIFIER):
        json_path = DATA_DIR / f"{name}.json"
        text = json_path.read_text()
        assert not re.search(r"/(work|tmp|home)/", text), name
        meta = json.loads(text)
        assert sidecar_digest(meta) == REGISTRY[name].sidecar_sha256
        assert meta["sha256"] == REGISTRY[name].sha256
        assert meta["weights"] == f"{name}.safetensors"
