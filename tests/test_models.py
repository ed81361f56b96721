"""Tests of the LuMamba / LUNA / FEMBA models, their layouts and their contract."""

import json
import math

import pytest
import torch

from mne_eegfm.models import create_model, list_configs

GOLDEN = "golden/lumamba-tiny-22ch"

LAYOUTS = {
    "lumamba-tiny-pretrain": ("lumamba-tiny", None, None),
    "lumamba-tiny-queryhead-2cls": ("lumamba-tiny", 2, "query"),
    "lumamba-tiny-mambahead-2cls": ("lumamba-tiny", 2, "mamba"),
    "lumamba-tiny-linearhead-2cls": ("lumamba-tiny", 2, "linear"),
    "luna-base-pretrain": ("luna-base", None, None),
    "luna-base-queryhead-2cls": ("luna-base", 2, "query"),
}


def _positions(n_chan, seed=0):
    """Distinct electrode-like positions (metres) on a sphere of radius 9 cm."""
    gen = torch.Generator().manual_seed(seed)
    pos = torch.randn(n_chan, 3, generator=gen)
    return 0.09 * pos / pos.norm(dim=1, keepdim=True)


def _signals(n_batch, n_chan, n_times, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n_batch, n_chan, n_times, generator=gen)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return create_model("lumamba-tiny").eval()


def _rel(a, b):
    return float((a - b).norm() / b.norm())


def test_golden_parity(reference_path):
    """Random-weight reference outputs are reproduced to float32 precision."""
    safetensors = pytest.importorskip("safetensors.torch")
    weights = safetensors.load_file(reference_path / f"{GOLDEN}.weights.safetensors")
    io = safetensors.load_file(reference_path / f"{GOLDEN}.io.safetensors")
    meta = json.loads((reference_path / f"{GOLDEN}.json").read_text())
    model = create_model("lumamba-tiny", num_blocks=meta["config"]["num_blocks"])
    model.load_state_dict(weights, strict=True)
    model.eval()
    x, pos = io["x"], io["positions_m"]
    with torch.no_grad():
        unified = model.unify(x, pos)[0]
        encoded = model.encode(x, pos)
    n_q, width = io["unified"].shape[1:]
    assert _rel(unified.reshape(-1, n_q, width), io["unified"]) < 1e-4
    assert _rel(encoded, io["encoded"]) < 1e-4


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_checkpoint_layout(reference_path, layout):
    """State-dict keys, order and shapes equal the published checkpoints."""
    expected = json.loads((reference_path / "checkpoint-keys.json").read_text())[layout]
    name, n_outputs, head = LAYOUTS[layout]
    model = create_model(name, n_outputs=n_outputs, head=head)
    got = [(k, list(v.shape)) for k, v in model.state_dict().items()]
    assert got == list(expected.items())
    n_values = sum(math.prod(shape) for shape in expected.values())
    assert sum(p.numel() for p in model.parameters()) == n_values


def test_prefixed_state_dict_loads():
    """A 'model.'-prefixed checkpoint loads strictly once the prefix is stripped."""
    source = create_model("lumamba-tiny", n_outputs=2, head="mamba")
    prefixed = {f"model.{k}": v for k, v in source.state_dict().items()}
    target = create_model("lumamba-tiny", n_outputs=2, head="mamba")
    target.load_state_dict({k.removeprefix("model."): v for k, v in prefixed.items()})
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value)


def test_paper_parameter_count():
    model = create_model("lumamba-tiny", n_outputs=2, head="mamba")
    assert sum(p.numel() for p in model.parameters()) == 4_631_611


def test_shapes_and_lengths(tiny):
    pos = _positions(5)
    for n_times in (1280, 40, 120):
        x = _signals(2, 5, n_times)
        with torch.no_grad():
            latent = tiny.encode(x, pos)
            emb = tiny.embed(x, pos)
        assert latent.shape == (2, n_times // 40, 384)
        assert emb.shape == (2, 384)
        assert torch.isfinite(latent).all()
    assert tiny.patch_size == 40 and tiny.embed_dim == 384 and tiny.num_queries == 6


@pytest.mark.parametrize("n_times", [1281, 1010, 0])
def test_bad_length_raises(tiny, n_times):
    with pytest.raises(ValueError, match=f"T={n_times}"):
        tiny.encode(torch.zeros(1, 4, n_times), _positions(4))


def test_bad_inputs_raise(tiny):
    with pytest.raises(ValueError, match="positions"):
        tiny.encode(torch.zeros(1, 4, 80), _positions(5))
    pos = _positions(4)
    pos[2, 0] = math.nan
    with pytest.raises(ValueError, match="positions"):
        tiny.encode(torch.zeros(1, 4, 80), pos)
    x = torch.zeros(1, 4, 80)
    x[0, 1, 7] = math.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        tiny.encode(x, _positions(4))


def test_permutation_equivariance(tiny):
    x, pos = _signals(2, 7, 400), _positions(7)
    perm = torch.tensor([3, 0, 6, 1, 5, 2, 4])
    with torch.no_grad():
        ref = tiny.encode(x, pos)
        out = tiny.encode(x[:, perm], pos[perm])
        att = tiny.channel_attention(x, pos)
        att_perm = tiny.channel_attention(x[:, perm], pos[perm])
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(att_perm, att[..., perm], rtol=1e-4, atol=1e-5)


def test_shared_and_per_sample_positions_agree(tiny):
    x, pos = _signals(3, 6, 160), _positions(6)
    with torch.no_grad():
        shared = tiny.encode(x, pos)
        per_sample = tiny.encode(x, pos.expand(3, -1, -1).clone())
    torch.testing.assert_close(shared, per_sample)


def test_batch_independence_mixed_montages(tiny):
    """Padding, other samples and padded values never change a sample's output."""
    x_a, pos_a = _signals(1, 8, 400, seed=1), _positions(8, seed=1)
    x_b, pos_b = _signals(1, 5, 400, seed=2), _positions(5, seed=2)
    x = torch.randn(2, 8, 400) * 50
    pos = torch.randn(2, 8, 3)
    x[0], pos[0] = x_a[0], pos_a
    x[1, :5], pos[1, :5] = x_b[0], pos_b
    mask = torch.ones(2, 8, dtype=torch.bool)
    mask[1, 5:] = False
    with torch.no_grad():
        batch = tiny.encode(x, pos, channel_mask=mask)
        alone_a = tiny.encode(x_a, pos_a)
        alone_b = tiny.encode(x_b, pos_b)
        attention = tiny.channel_attention(x, pos, channel_mask=mask)
        x[1, 5:] = -x[1, 5:] * 3
        pos[1, 5:] = 1.0
        repadded = tiny.encode(x, pos, channel_mask=mask)
    torch.testing.assert_close(batch[0], alone_a[0], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(batch[1], alone_b[0], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(repadded, batch, rtol=1e-5, atol=1e-5)
    assert torch.all(attention[1, :, 5:] == 0)
    torch.testing.assert_close(attention.sum(-1), torch.ones(2, 6))


def test_chunked_front_end_matches(tiny, monkeypatch):
    x, pos = _signals(2, 6, 440), _positions(6)
    with torch.no_grad():
        ref = tiny.encode(x, pos)
        monkeypatch.setattr(tiny, "chunk_tokens", 50)
        chunked = tiny.encode(x, pos)
    torch.testing.assert_close(chunked, ref, rtol=1e-5, atol=1e-5)


def test_inference_is_deterministic(tiny):
    x, pos = _signals(2, 4, 160), _positions(4)
    with torch.no_grad():
        torch.testing.assert_close(
            tiny.encode(x, pos), tiny.encode(x, pos), rtol=0, atol=0
        )


def test_pretrain_forward_and_gradients():
    torch.manual_seed(0)
    model = create_model("lumamba-tiny", num_blocks=1).train()
    x, pos = _signals(2, 5, 200), _positions(5)
    patch_mask = torch.rand(2, 5, 5) < 0.5
    channel_mask = torch.tensor([[True] * 5, [True] * 4 + [False]])
    out = model.pretrain_forward(x, pos, patch_mask, channel_mask, jitter=0.02)
    assert out["recon"].shape == (2, 5, 200)
    assert out["attention"].shape == (2 * 5, 6, 5)
    assert out["latent"].shape == (2, 5, 384)
    out["recon"].square().mean().backward()
    for name in (
        "mask_token",
        "cross_attn.query_embed",
        "patch_embed.proj_in.0.weight",
    ):
        grad = model.get_parameter(name).grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
    ids = torch.arange(5)
    out = model.eval().pretrain_forward(x, pos, None, channel_ids=ids)
    assert out["recon"].shape == (2, 5, 200)


@pytest.mark.parametrize("head", ["query", "mamba", "linear"])
def test_heads(head):
    model = create_model("lumamba-tiny", n_outputs=3, head=head).eval()
    with torch.no_grad():
        logits = model(_signals(2, 4, 160), _positions(4))
    assert logits.shape == (2, 3)
    with pytest.raises(ValueError, match="decoder"):
        model.pretrain_forward(_signals(2, 4, 160), _positions(4), None)


def test_encoder_without_head_raises(tiny):
    with pytest.raises(ValueError, match="head"):
        tiny(_signals(1, 4, 80), _positions(4))


@pytest.mark.parametrize(
    "overrides", [{"embedding": "multibranch"}, {"ssm": "mamba2", "d_state": 16}]
)
def test_options_run(overrides):
    if overrides.get("ssm") == "mamba2":
        pytest.importorskip("mne_eegfm.models.mamba2")
    model = create_model("lumamba-tiny", n_outputs=2, num_blocks=1, **overrides)
    with torch.no_grad():
        assert model.eval()(_signals(2, 4, 160), _positions(4)).shape == (2, 2)
    assert create_model(**model.config).config == model.config


def test_luna_runs_and_configs():
    assert {"lumamba-tiny", "lumamba-base", "luna-base", "femba-tiny"} <= set(
        list_configs()
    )
    model = create_model("luna-base", n_outputs=2).eval()
    with torch.no_grad():
        assert model.encode(_signals(2, 4, 160), _positions(4)).shape == (2, 4, 256)
        assert model(_signals(2, 4, 160), _positions(4)).shape == (2, 2)
    config = json.loads(json.dumps(model.config))
    rebuilt = create_model(**config)
    assert rebuilt.config == model.config
    assert rebuilt.state_dict().keys() == model.state_dict().keys()


def test_create_model_errors():
    with pytest.raises(ValueError, match="unknown model"):
        create_model("lumamba-giant")
    with pytest.raises(ValueError, match="head"):
        create_model("lumamba-tiny", n_outputs=2, head="svm")
    with pytest.raises(ValueError, match="num_layers"):
        create_model("lumamba-tiny", num_layers=3)
    with pytest.raises(ValueError, match="embedding"):
        create_model("lumamba-tiny", embedding="wavelet")


def test_femba():
    model = create_model("femba-tiny", n_outputs=2, num_blocks=1).eval()
    x = _signals(2, 22, 320)
    with torch.no_grad():
        assert model(x, None).shape == (2, 2)
        assert model.encode(_signals(1, 22, 160)).shape == (1, 10, 385)
    with pytest.raises(ValueError, match="22"):
        model.encode(_signals(1, 19, 320))
    pretrain = create_model("femba-tiny", num_blocks=1)
    out = pretrain.pretrain_forward(x, None, torch.rand(2, 11, 20) < 0.6)
    assert out["recon"].shape == x.shape


# ---------------------------------------------------------------------------
# Declarations read by the registry


@pytest.mark.parametrize(
    "name, n_outputs, head",
    [
        ("lumamba-tiny", None, None),
        ("lumamba-tiny", 2, "query"),
        ("lumamba-tiny", 2, "mamba"),
        ("lumamba-tiny", 3, "linear"),
        ("luna-base", None, None),
        ("femba-tiny", 4, "mamba"),
    ],
)
def test_count_parameters_matches_create_model(name, n_outputs, head):
    from mne_eegfm.models.factory import count_parameters

    model = create_model(name, n_outputs=n_outputs, head=head)
    expected = sum(p.numel() for p in model.parameters())
    assert count_parameters(name, n_outputs, head) == expected


def test_configs_declared_by_architecture_modules():
    from mne_eegfm.models import femba, lumamba, luna

    declared = [*lumamba.CONFIGS, *luna.CONFIGS, *femba.CONFIGS]
    assert sorted(declared) == sorted(list_configs())
    for module in (lumamba, luna, femba):
        for spec in module.PUBLISHED:
            assert spec["config"] in module.CONFIGS


def test_head_fingerprints_declared_by_heads():
    from mne_eegfm.models.heads import head_fingerprint

    for head in ("query", "mamba", "linear"):
        model = create_model("lumamba-tiny", n_outputs=5, head=head)
        found, last = head_fingerprint(model.state_dict())
        assert found == head and model.state_dict()[last].shape[0] == 5
    assert head_fingerprint(create_model("lumamba-tiny").state_dict()) == (None, None)


def test_check_config_bounds_and_types():
    from mne_eegfm.models.factory import check_config

    assert check_config({"name": "luna-base", "depth": 2})["depth"] == 2
    with pytest.raises(ValueError, match="num_blocks=100000 is out of bounds"):
        check_config({"name": "lumamba-tiny", "num_blocks": 100000}, "x.json")
    with pytest.raises(ValueError, match="x.json: option 'dropout' must be float"):
        check_config({"name": "lumamba-tiny", "dropout": "0.1"}, "x.json")
    with pytest.raises(ValueError, match="must be a JSON object, got str"):
        check_config("lumamba-tiny", "x.json")


def test_meta_build_skips_initial_maths():
    """Checking a model file's layout must not load PyTorch's compiler (seconds)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from mne_eegfm.models.factory import meta_model\n"
        "for name, n_outputs, head in [('lumamba-tiny', None, None),"
        " ('lumamba-tiny', 2, 'linear'), ('lumamba-tiny', 2, 'query'),"
        " ('luna-base', None, None), ('femba-tiny', 2, None)]:\n"
        "    meta_model({'name': name, 'n_outputs': n_outputs, 'head': head})\n"
        "print('torch._dynamo' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
