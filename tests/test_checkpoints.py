"""Checkpoint registry, published-weight conformance and safe model files."""

import json
import pickle
import socket
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from mne_eegfm import registry
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
    save_model,
)

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
