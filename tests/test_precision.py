"""Precision: resolving it, and bfloat16 numerics against float32."""

import pytest
import torch

from mne_eegfm.models import create_model, precision
from mne_eegfm.models.precision import (
    precision_context,
    prepare_model,
    resolve_precision,
)
from mne_eegfm.pretrain.objectives import reconstruction_loss


def rel_err(y, ref):
    return ((y.float() - ref).norm() / ref.norm()).item()


def _inputs(name="lumamba-tiny"):
    n_batch, n_chan, n_times = (1, 22, 160) if name.startswith("femba") else (2, 5, 400)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n_batch, n_chan, n_times, generator=gen)
    positions = torch.randn(n_chan, 3, generator=gen) * 0.05
    return x, positions


def test_resolve_precision(bf16_cpu):
    assert resolve_precision("float32") == "float32"
    assert resolve_precision("bfloat16", "cpu") == "bfloat16"
    assert resolve_precision("auto", torch.device("cpu")) == "bfloat16"
    with pytest.raises(ValueError, match="precision must be one of.*'float16'"):
        resolve_precision("float16")
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision(torch.bfloat16)


def test_resolve_precision_without_bf16(no_bf16_cpu):
    assert resolve_precision("auto") == "float32"
    assert resolve_precision("float32", "cpu") == "float32"
    with pytest.raises(ValueError, match="'bfloat16'.*this CPU .*AVX512-BF16"):
        resolve_precision("bfloat16", "cpu")
    with pytest.raises(ValueError, match="'bfloat16'"):
        with precision_context("bfloat16"):
            pass
    with pytest.raises(ValueError, match="'bfloat16'"):
        prepare_model(torch.nn.Linear(2, 2), "bfloat16")


def test_cpu_probe_reads_flags(monkeypatch):
    monkeypatch.setattr(precision, "_cpuinfo", lambda: ("X", frozenset({"avx2"})))
    assert precision.cpu_bf16_feature() is None
    flags = frozenset({"avx2", "avx512_bf16"})
    monkeypatch.setattr(precision, "_cpuinfo", lambda: ("X", flags))
    assert precision.cpu_bf16_feature() == "avx512_bf16"


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_resolve_precision_cuda_missing():
    assert resolve_precision("auto", "cuda") == "float32"
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_precision("bfloat16", "cuda")


def test_float32_context_is_bit_identical():
    model = create_model("lumamba-tiny", num_blocks=1).eval()
    x, positions = _inputs()
    with torch.no_grad():
        ref = model.encode(x, positions)
        with precision_context("float32"):
            out = model.encode(x, positions)
    assert torch.equal(out, ref)


@pytest.mark.parametrize(
    "name, overrides",
    [
        ("lumamba-tiny", {"num_blocks": 1}),
        ("lumamba-tiny", {"num_blocks": 1, "ssm": "mamba2"}),
        ("luna-base", {"depth": 2}),
        ("femba-tiny", {"num_blocks": 1}),
    ],
)
def test_bf16_embeddings_close(bf16_cpu, name, overrides):
    torch.manual_seed(0)
    model = prepare_model(create_model(name, **overrides), "bfloat16")
    x, positions = _inputs(name)
    with torch.no_grad():
        ref = model.embed(x, positions)
        with precision_context("bfloat16") as resolved:
            out = model.embed(x, positions)
    assert resolved == "bfloat16"
    assert out.dtype in (torch.bfloat16, torch.float32)
    assert torch.isfinite(out.float()).all()
    assert rel_err(out, ref) < 2e-2
    assert all(p.dtype == torch.float32 for p in model.parameters())


@pytest.mark.parametrize("name", ["lumamba-tiny", "femba-tiny"])
def test_bf16_training_gradients(bf16_cpu, name):
    torch.manual_seed(0)
    model = create_model(name, num_blocks=1).train()
    for module in model.modules():  # dropout off: same function in both runs
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    if hasattr(model, "cross_attn"):
        model.cross_attn.dropout = 0.0
        model.cross_attn.cross_attention.dropout = 0.0
    x, positions = _inputs(name)
    # LuMamba masks (B, C, S) patches of 40 samples, FEMBA (B, 11, S) of 2 x 16.
    shape = (1, 11, 10) if name.startswith("femba") else (2, 5, 10)
    patch_mask = torch.rand(shape, generator=torch.Generator().manual_seed(1)) < 0.5
    patch_size = x.shape[-1] // shape[-1]

    def step(precision_name):
        model.zero_grad()
        with precision_context(precision_name):
            out = model.pretrain_forward(x, positions, patch_mask)
            mask = patch_mask.repeat_interleave(x.shape[1] // shape[1], 1)
            loss = reconstruction_loss(out["recon"], x, mask, patch_size)
        loss.backward()
        return loss.detach(), [
            p.grad.clone() for p in model.parameters() if p.grad is not None
        ]

    loss32, grads32 = step("float32")
    loss16, grads16 = step("bfloat16")
    assert loss16.dtype == torch.float32
    assert abs(loss16 - loss32) / loss32 < 2e-2
    assert len(grads16) == len(grads32)
    flat32 = torch.cat([g.flatten() for g in grads32])
    flat16 = torch.cat([g.flatten() for g in grads16])
    assert flat16.dtype == torch.float32 and torch.isfinite(flat16).all()
    assert rel_err(flat16, flat32) < 5e-2
