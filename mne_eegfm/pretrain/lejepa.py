"""LeJEPA (Balestriero & LeCun, 2025) as LuMamba adapts it (model-spec.md sec. 3).

Views of each window are encoded and mean-pooled; the loss pulls every local
view's embedding towards the mean of the global views' and SIGReg pushes each
view's batch of embeddings towards an isotropic Gaussian (sliced
Epps-Pulley test), which prevents collapse without a projector or a teacher.
"""

import torch


def random_time_crops(x, n_views, length, generator=None):
    """Crop ``n_views`` windows of ``length`` samples, each sample its own start.

    Parameters
    ----------
    x : torch.Tensor
        ``(B, C, T)``.
    n_views : int
        Number of crops.
    length : int
        Samples per crop (at most T).
    generator : torch.Generator | None
        Source of randomness (CPU generator).

    Returns
    -------
    views : torch.Tensor
        ``(n_views * B, C, length)``, view-major (all samples of view 0 first).
    """
    n_batch, n_chan, n_times = x.shape
    if length > n_times:
        raise ValueError(f"crop of {length} samples is longer than T={n_times}")
    starts = torch.randint(
        0, n_times - length + 1, (n_views, n_batch), generator=generator
    )
    index = starts[:, :, None] + torch.arange(length)
    index = index[:, :, None, :].expand(-1, -1, n_chan, -1).to(x.device)
    crops = torch.gather(x[None].expand(n_views, -1, -1, -1), 3, index)
    return crops.reshape(n_views * n_batch, n_chan, length)


def random_channel_subsets(channel_mask, n_views, fraction, generator=None):
    """Give each view its own random subset of each sample's real channels.

    Parameters
    ----------
    channel_mask : torch.Tensor
        Bool ``(B, C)``, True for real channels.
    n_views : int
        Number of views.
    fraction : float
        Fraction of each sample's real channels that a view keeps (rounded,
        at least two channels, or one where a sample has only one).
    generator : torch.Generator | None
        Source of randomness (CPU generator).

    Returns
    -------
    mask : torch.Tensor
        Bool ``(n_views * B, C)`` on the device of ``channel_mask``,
        view-major like :func:`random_time_crops`.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"view channel fraction must be in (0, 1], got {fraction}")
    real = channel_mask.cpu().bool()[None].expand(n_views, -1, -1)
    scores = torch.rand(real.shape, generator=generator).masked_fill(~real, 2.0)
    n_real = real.sum(-1)
    n_keep = torch.maximum(torch.round(n_real * fraction), n_real.clamp(max=2))
    rank = scores.argsort(-1).argsort(-1)
    mask = rank < n_keep[..., None]
    return mask.reshape(-1, channel_mask.shape[1]).to(channel_mask.device)


def _all_reduce_sum(tensor):
    """Differentiable sum over DDP ranks (identity when not distributed)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return tensor
    from torch.distributed.nn.functional import all_reduce

    return all_reduce(tensor, op=dist.ReduceOp.SUM)


def _global_batch_size(n_local, device):
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return n_local
    count = torch.tensor([float(n_local)], device=device)
    dist.all_reduce(count)
    return int(count.item())


def random_directions(dim, num_slices, seed):
    """Unit directions ``(dim, num_slices)`` drawn from a generator seeded by ``seed``.

    Parameters
    ----------
    dim : int
        Embedding dimension.
    num_slices : int
        Number of directions.
    seed : int
        Seed (the training step), so every rank draws the same directions.

    Returns
    -------
    directions : torch.Tensor
        Float32, each column of unit norm.
    """
    generator = torch.Generator().manual_seed(int(seed))
    directions = torch.randn(dim, num_slices, generator=generator)
    return directions / directions.norm(dim=0, keepdim=True)


def sigreg(embeddings, seed=0, num_slices=128, n_points=17, t_max=5.0):
    """Sliced Epps-Pulley statistic of LeJEPA's SIGReg (0 for N(0, I) in the limit).

    The embeddings are projected on ``num_slices`` random unit directions; for
    each slice the empirical characteristic function ``phi(t) = mean exp(i t z)``
    is compared to the standard normal one at ``n_points`` values of ``t`` in
    ``[-t_max, t_max]``, weighted by ``exp(-t^2 / 2)``, integrated with the
    trapezoid rule and multiplied by the (global) number of samples N; the
    result is averaged over slices. Under DDP the sums behind ``phi`` and N
    are reduced over all ranks (differentiably), so every rank gets the
    statistic of the global batch.

    For N standard normal samples its expectation is
    ``sqrt(2 pi) - sqrt(2 pi / 3) ~ 1.06``; for a batch collapsed to one
    point it is about ``0.41 * N``.

    Parameters
    ----------
    embeddings : torch.Tensor
        ``(N, D)``.
    seed : int
        Seed of the random directions (the training step).
    num_slices : int
        Number of random directions K.
    n_points : int
        Integration points.
    t_max : float
        Half-width of the integration interval.

    Returns
    -------
    statistic : torch.Tensor
        Scalar.
    """
    embeddings = embeddings.float()
    directions = random_directions(embeddings.shape[1], num_slices, seed)
    projections = embeddings @ directions.to(embeddings.device)
    t = torch.linspace(-t_max, t_max, n_points, device=embeddings.device)
    angles = projections[:, :, None] * t
    sums = torch.stack([angles.cos().sum(0), angles.sin().sum(0)])
    sums = _all_reduce_sum(sums)
    n_total = _global_batch_size(embeddings.shape[0], embeddings.device)
    real, imag = sums[0] / n_total, sums[1] / n_total
    gaussian = torch.exp(-0.5 * t.square())
    error = ((real - gaussian).square() + imag.square()) * gaussian
    return torch.trapezoid(error, t, dim=-1).mul(n_total).mean()


def lejepa_loss(local_embeddings, global_embeddings, seed=0, lam=0.002, num_slices=128):
    """LeJEPA loss ``(1 - lam) * prediction + lam * SIGReg``.

    ``prediction`` is the mean over local views (and samples, and embedding
    dimensions) of the squared difference between the mean of the global
    view embeddings and each local view embedding. SIGReg is averaged over
    all views.

    Parameters
    ----------
    local_embeddings : torch.Tensor
        ``(V_local, B, D)`` pooled embeddings of the local views.
    global_embeddings : torch.Tensor
        ``(V_global, B, D)`` pooled embeddings of the global views.
    seed : int
        Seed of SIGReg's random directions (the training step).
    lam : float
        Weight of SIGReg.
    num_slices : int
        Number of SIGReg directions.

    Returns
    -------
    loss : torch.Tensor
        Scalar.
    parts : dict of str to torch.Tensor
        ``"pred"`` and ``"sigreg"`` (detached).
    """
    center = global_embeddings.float().mean(0)
    pred = (center[None] - local_embeddings.float()).square().mean()
    views = torch.cat([local_embeddings, global_embeddings])
    reg = torch.stack([sigreg(v, seed=seed, num_slices=num_slices) for v in views])
    reg = reg.mean()
    loss = (1.0 - lam) * pred + lam * reg
    return loss, {"pred": pred.detach(), "sigreg": reg.detach()}
