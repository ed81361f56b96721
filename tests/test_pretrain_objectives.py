"""Pretraining objectives on hand-computable inputs."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from mne_eegfm.pretrain.bandpower import BANDS, log_band_power
from mne_eegfm.pretrain.lejepa import (
    lejepa_loss,
    random_channel_subsets,
    random_directions,
    random_time_crops,
    sigreg,
)
from mne_eegfm.pretrain.objectives import (
    PretrainObjective,
    query_specialization_loss,
    random_patch_mask,
    reconstruction_loss,
    spectral_loss,
)

# Expected SIGReg values (17-point trapezoid on [-5, 5] is within 1e-3 of these):
# N standard-normal samples: E = int (1 - e^{-t^2}) e^{-t^2/2} dt
NORMAL = math.sqrt(2 * math.pi) - math.sqrt(2 * math.pi / 3)
# N identical samples at 0: N * int (1 - e^{-t^2/2})^2 e^{-t^2/2} dt
COLLAPSED = math.sqrt(2 * math.pi) - 2 * math.sqrt(math.pi) + math.sqrt(2 * math.pi / 3)


def test_patch_mask_ratio_and_padding():
    gen = torch.Generator().manual_seed(0)
    channel_mask = torch.tensor([[True, True, False], [True, True, True]])
    mask = random_patch_mask((2, 3, 4), 0.5, channel_mask, gen)
    assert mask.dtype == torch.bool and mask.shape == (2, 3, 4)
    assert mask[0].sum() == 4 and mask[1].sum() == 6  # half of the real cells
    assert not mask[0, 2].any()  # padded channel never masked
    with pytest.raises(ValueError, match="mask ratio"):
        random_patch_mask((1, 1, 1), 1.5)


def test_reconstruction_loss_hand_values():
    target = torch.zeros(1, 2, 4)
    mask = torch.tensor([[[True, False], [False, False]]])  # patch size 2
    assert reconstruction_loss(target, target, mask, 2) == 0
    # error 0.5 on masked samples only: SmoothL1(0.5) = 0.5 * 0.25 = 0.125
    recon = torch.zeros(1, 2, 4)
    recon[0, 0, :2] = 0.5
    assert torch.isclose(
        reconstruction_loss(recon, target, mask, 2), torch.tensor(0.125)
    )
    # error 3 on every visible sample: SmoothL1(3) = 2.5, weighted by 0.05
    recon = torch.full((1, 2, 4), 3.0)
    recon[0, 0, :2] = 0.0
    loss = reconstruction_loss(recon, target, mask, 2)
    assert torch.isclose(loss, torch.tensor(0.05 * 2.5))
    # padded channels do not count
    recon[0, 1] = 100.0
    channel_mask = torch.tensor([[True, False]])
    loss = reconstruction_loss(recon, target, mask, 2, channel_mask)
    assert torch.isclose(loss, torch.tensor(0.05 * 2.5))
    with pytest.raises(ValueError, match="T=4"):
        reconstruction_loss(recon, target, mask, 3)


def test_spectral_loss_hand_values():
    x = torch.zeros(1, 1, 8)
    assert spectral_loss(x, x) == 0
    y = torch.ones(1, 1, 8)
    # L1 = 1; rfft of a constant 1 is [8, 0, 0, 0, 0]: mean |.|^2 = 64 / 5
    assert torch.isclose(spectral_loss(y, x), torch.tensor(1 + 64 / 5))
    assert torch.isclose(spectral_loss(y, x, alpha=2, beta=0), torch.tensor(2.0))


def test_query_specialization_loss():
    one_hot = torch.eye(3)[None, :, :].repeat(2, 1, 1)  # queries on disjoint channels
    assert query_specialization_loss(one_hot) == 0
    same = torch.full((1, 2, 4), 0.25)  # both queries uniform over 4 channels
    # off-diagonal of A A^T = 4 * 0.0625 = 0.25; mean of squares over 2x2 = 0.03125
    assert torch.isclose(query_specialization_loss(same), torch.tensor(0.03125))


def test_time_crops_are_contiguous_per_sample():
    x = torch.arange(2 * 3 * 10, dtype=torch.float32).reshape(2, 3, 10)
    gen = torch.Generator().manual_seed(1)
    views = random_time_crops(x, 4, 5, gen)
    assert views.shape == (8, 3, 5)
    steps = views.diff(dim=-1)
    assert torch.all(steps == 1)  # contiguous samples
    starts = views[:, 0, 0].reshape(4, 2) - torch.tensor([0.0, 30.0])
    assert torch.all((starts >= 0) & (starts <= 5))
    # channels cropped together
    assert torch.all(views[:, 1] - views[:, 0] == 10)
    with pytest.raises(ValueError, match="longer than T=10"):
        random_time_crops(x, 1, 11)


def test_channel_subsets_per_view():
    gen = torch.Generator().manual_seed(0)
    real = torch.tensor([[True] * 8, [True] * 3 + [False] * 5, [True] + [False] * 7])
    mask = random_channel_subsets(real, 4, 0.5, gen).reshape(4, 3, 8)
    assert not (mask & ~real).any()  # padded channels never kept
    assert mask.sum(-1).tolist() == [[4, 2, 1]] * 4  # half, at least 2 (or all 1)
    assert len({tuple(view[0].tolist()) for view in mask}) > 1  # views differ
    with pytest.raises(ValueError, match="fraction must be in"):
        random_channel_subsets(real, 2, 0.0)


def test_objective_view_channels_reach_the_encoder():
    seen = []

    class _Recorder(_Toy):
        def encode(self, x, positions, channel_mask=None):
            seen.append(channel_mask)
            return super().encode(x, positions, channel_mask)

    objective = PretrainObjective(
        "lejepa", local_patches=1, global_patches=2, num_slices=8, view_channels=0.5
    )
    objective(_Recorder(), torch.randn(3, 6, 16), torch.zeros(6, 3), step=1)
    assert [m.shape for m in seen] == [(12, 6), (6, 6)]  # (views x batch, channels)
    assert all((m.sum(1) == 3).all() for m in seen)
    with pytest.raises(ValueError, match="view_channels"):
        PretrainObjective("lejepa", view_channels=1.5)


def test_log_band_power_finds_the_band_of_a_sinusoid():
    sfreq, t = 128.0, torch.arange(256) / 128.0
    x = torch.stack([torch.sin(2 * math.pi * f * t) for f in (2.0, 10.0, 35.0)])
    power = log_band_power(x[None], sfreq, segment=128)  # (1, 2 segments, 3, bands)
    assert power.shape == (1, 2, 3, len(BANDS))
    assert power.argmax(-1)[0, 0].tolist() == [0, 2, 5]  # delta, alpha, gamma
    assert torch.allclose(power.exp().sum(-1), torch.ones(1, 2, 3), atol=1e-2)


def test_random_directions_unit_and_seeded():
    a = random_directions(16, 8, seed=3)
    assert torch.allclose(a.norm(dim=0), torch.ones(8))
    assert torch.equal(a, random_directions(16, 8, seed=3))
    assert not torch.equal(a, random_directions(16, 8, seed=4))


def test_sigreg_normal_vs_collapsed():
    gen = torch.Generator().manual_seed(0)
    n = 2048
    normal = torch.stack(
        [sigreg(torch.randn(n, 32, generator=gen), seed=s) for s in range(5)]
    )
    assert abs(normal.mean().item() - NORMAL) < 0.3
    collapsed = sigreg(torch.zeros(n, 32))
    assert np.isclose(collapsed.item(), n * COLLAPSED, rtol=1e-2)
    assert collapsed > 300 * normal.mean()
    # the wrong scale is penalised too
    assert sigreg(3 * torch.randn(n, 32, generator=gen)) > 100


def test_sigreg_gradient_spreads_collapse():
    emb = (0.01 * torch.randn(256, 8)).requires_grad_()
    sigreg(emb).backward()
    # pushing along -grad increases the spread of a collapsed batch
    step = emb - 0.01 * emb.grad / emb.grad.norm()
    assert step.std() > emb.std()


def test_lejepa_loss_parts():
    gen = torch.Generator().manual_seed(0)
    glob = torch.randn(2, 512, 16, generator=gen)
    center = glob.mean(0)
    local = center[None].repeat(4, 1, 1)
    loss, parts = lejepa_loss(local, glob, lam=0.002)
    assert parts["pred"] == 0  # locals equal the global mean
    assert torch.isclose(loss, 0.002 * parts["sigreg"])
    loss, parts = lejepa_loss(local + 1.0, glob, lam=0.0)
    assert torch.isclose(loss, torch.tensor(1.0))  # squared error 1 everywhere


class _Toy(nn.Module):
    """Minimal model with the pretraining interface (patch size 4)."""

    patch_size = 4

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 4)
        self.query = nn.Parameter(torch.randn(2, 4))

    def encode(self, x, positions, channel_mask=None):
        n_batch, n_chan, n_times = x.shape
        patches = x.reshape(n_batch, n_chan, n_times // 4, 4)
        return self.proj(patches).mean(1)

    def pretrain_forward(self, x, positions, patch_mask, channel_mask=None, jitter=0.0):
        n_batch, n_chan, n_times = x.shape
        keep = ~patch_mask.repeat_interleave(4, dim=-1)
        patches = (x * keep).reshape(n_batch, n_chan, n_times // 4, 4)
        recon = self.proj(patches).reshape(n_batch, n_chan, n_times)
        attention = torch.softmax(self.query @ patches.mean((0, 2)).T, dim=-1)
        return {"recon": recon, "attention": attention[None], "latent": None}


@pytest.mark.parametrize("name", ["mixed", "recon", "lejepa"])
def test_objective_combines_terms(name):
    torch.manual_seed(0)
    objective = PretrainObjective(name, local_patches=1, global_patches=2, num_slices=8)
    model = _Toy()
    x = torch.randn(3, 2, 16)
    loss, parts = objective(model, x, torch.zeros(2, 3), step=5)
    loss.backward()
    assert torch.isfinite(loss) and model.proj.weight.grad is not None
    if name == "recon":
        expected = parts["recon"] + 0.8 * parts["query"]
    elif name == "lejepa":
        expected = parts["lejepa"]
    else:
        expected = parts["recon"] + 0.8 * parts["query"] + 0.05 * parts["lejepa"]
    assert np.isclose(loss.item(), expected, rtol=1e-5)
    assert ("lejepa" in parts) == (name != "recon")
    with pytest.raises(ValueError, match="objective must be one of"):
        PretrainObjective("byol")


def test_objective_spectral_option():
    torch.manual_seed(0)
    objective = PretrainObjective("recon", spectral=(1.0, 1.0))
    loss, parts = objective(_Toy(), torch.randn(2, 2, 8), torch.zeros(2, 3))
    assert parts["spectral"] > 0
    expected = parts["recon"] + 0.8 * parts["query"] + parts["spectral"]
    assert np.isclose(loss.item(), expected, rtol=1e-5)
