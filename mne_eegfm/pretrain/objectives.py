"""Self-supervised objectives: masked reconstruction, query specialisation, LeJEPA.

The formulas follow ``model-spec.md`` sections 1-3 (LUNA / LuMamba) and 5
(EEGM2's spectral term). Every function works on plain tensors so that each
term can be unit-tested on hand-computable inputs; :class:`PretrainObjective`
combines them and :class:`PretrainModule` wraps model + objective into one
``nn.Module`` so that DDP sees a single forward call per step.
"""

import torch
import torch.nn.functional as F
from torch import nn

from .._docs import fill_doc

OBJECTIVES = ("mixed", "recon", "lejepa", "spectral")
#: Frequency bands (Hz) of the band-power target.
BANDS = ((1.0, 4.0), (4.0, 8.0), (8.0, 13.0), (13.0, 20.0), (20.0, 30.0), (30.0, 45.0))


def random_patch_mask(shape, ratio=0.5, channel_mask=None, generator=None):
    """Draw a mask of (1 channel x 1 patch) cells, the same fraction per sample.

    Parameters
    ----------
    shape : tuple of int
        ``(B, C, S)``: batch size, channels and patches per channel.
    ratio : float
        Fraction of the real cells of each sample that are masked
        (rounded to the nearest integer number of cells).
    channel_mask : torch.Tensor | None
        Bool ``(B, C)``, True for real channels; padded channels are never
        masked. None means all channels are real.
    generator : torch.Generator | None
        Source of randomness (CPU generator).

    Returns
    -------
    mask : torch.Tensor
        Bool ``(B, C, S)`` on the CPU, True = masked.
    """
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"mask ratio must be in [0, 1], got {ratio}")
    n_batch, n_chan, n_patch = shape
    scores = torch.rand(n_batch, n_chan, n_patch, generator=generator)
    if channel_mask is None:
        real = torch.ones(n_batch, n_chan, n_patch, dtype=torch.bool)
    else:
        real = channel_mask.cpu().bool()[:, :, None].expand(-1, -1, n_patch)
    scores = scores.masked_fill(~real, 2.0).reshape(n_batch, -1)
    n_masked = torch.round(real.reshape(n_batch, -1).sum(1) * ratio).long()
    rank = scores.argsort(dim=1).argsort(dim=1)
    return (rank < n_masked[:, None]).reshape(n_batch, n_chan, n_patch)


def _cell_weights(patch_mask, patch_size, channel_mask):
    """Expand a (B, C, S) patch mask to masked/visible sample weights (B, C, T)."""
    masked = patch_mask.repeat_interleave(patch_size, dim=-1).float()
    visible = 1.0 - masked
    if channel_mask is not None:
        real = channel_mask.float()[:, :, None]
        masked, visible = masked * real, visible * real
    return masked, visible


def _weighted_mean(values, weights):
    return (values * weights).sum() / weights.sum().clamp_min(1.0)


def reconstruction_loss(
    recon, target, patch_mask, patch_size, channel_mask=None, visible_weight=0.05
):
    """LUNA's masked reconstruction loss.

    SmoothL1 averaged over the samples of masked cells plus ``visible_weight``
    times SmoothL1 averaged over the samples of visible cells. Padded channels
    (``channel_mask`` False) do not count.

    Parameters
    ----------
    recon, target : torch.Tensor
        ``(B, C, T)`` reconstruction and normalised input.
    patch_mask : torch.Tensor
        Bool ``(B, C, S)``, True = masked, with ``S * patch_size == T``.
    patch_size : int
        Samples per patch.
    channel_mask : torch.Tensor | None
        Bool ``(B, C)``, True for real channels.
    visible_weight : float
        Weight of the visible-cell term.

    Returns
    -------
    loss : torch.Tensor
        Scalar.
    """
    if patch_mask.shape[-1] * patch_size != target.shape[-1]:
        raise ValueError(
            f"patch mask has {patch_mask.shape[-1]} patches of {patch_size} samples "
            f"but the signal has T={target.shape[-1]} samples"
        )
    errors = F.smooth_l1_loss(recon.float(), target.float(), reduction="none")
    masked, visible = _cell_weights(
        patch_mask.to(errors.device), patch_size, channel_mask
    )
    return _weighted_mean(errors, masked) + visible_weight * _weighted_mean(
        errors, visible
    )


def spectral_loss(recon, target, alpha=1.0, beta=1.0):
    """EEGM2's spatiotemporal-aware loss, ``alpha * L1 + beta * spectral MSE``.

    The spectral term is the mean over channels and frequency bins of
    ``|rfft(target) - rfft(recon)|^2`` (FFT along time).

    Parameters
    ----------
    recon, target : torch.Tensor
        ``(B, C, T)``.
    alpha, beta : float
        Weights of the L1 and spectral terms.

    Returns
    -------
    loss : torch.Tensor
        Scalar.
    """
    recon, target = recon.float(), target.float()
    spectral = (torch.fft.rfft(target, dim=-1) - torch.fft.rfft(recon, dim=-1)).abs()
    return alpha * F.l1_loss(recon, target) + beta * spectral.square().mean()


def log_band_power(x, sfreq, segment, bands=BANDS):
    """Log relative band power of each channel in consecutive segments.

    Each segment is Hann-windowed; the power of each band is divided by the
    power of all the bands together, so the target does not depend on the
    amplitude (windows are z-scored anyway) and means the same on any device.

    Parameters
    ----------
    x : torch.Tensor
        ``(B, C, T)`` signals, ``T`` a multiple of ``segment``.
    sfreq : float
        Sampling rate (Hz).
    segment : int
        Samples per segment.
    bands : sequence of (float, float)
        Band edges (Hz), low edge included, high edge excluded.

    Returns
    -------
    power : torch.Tensor
        ``(B, T // segment, C, n_bands)`` natural log of the relative power.
    """
    n_batch, n_chan, n_times = x.shape
    segs = x.float().reshape(n_batch, n_chan, n_times // segment, segment)
    segs = segs - segs.mean(-1, keepdim=True)
    window = torch.hann_window(segment, periodic=False, device=x.device)
    spectrum = torch.fft.rfft(segs * window, dim=-1).abs().square()
    freqs = torch.fft.rfftfreq(segment, 1.0 / sfreq).to(x.device)
    power = torch.stack(
        [spectrum[..., (freqs >= lo) & (freqs < hi)].sum(-1) for lo, hi in bands], -1
    )
    relative = power / power.sum(-1, keepdim=True).clamp_min(1e-12)
    return torch.log(relative + 1e-4).transpose(1, 2)


class BandPowerHead(nn.Module):
    """Predict each electrode's band power from the latent and its position.

    A segment of the latent (patches averaged) and the electrode's location
    embedding are mapped to a shared hidden space, added, and read out as the
    log relative power of each band. Since the electrode is named only by
    its position, the target teaches the latent the spectral and spatial
    content of any montage.

    Parameters
    ----------
    latent_dim : int
        Width of the encoder output.
    location_dim : int
        Width of the location embedding.
    n_bands : int
        Number of bands (``len(BANDS)``).
    hidden : int
        Hidden width.
    """

    def __init__(self, latent_dim, location_dim, n_bands=6, hidden=128):
        super().__init__()
        self.latent = nn.Linear(latent_dim, hidden)
        self.location = nn.Linear(location_dim, hidden)
        self.out = nn.Sequential(nn.GELU(), nn.Linear(hidden, n_bands))

    def forward(self, segments, locations):
        """``(B, G, D)`` segments and ``(B, C, E)`` locations -> ``(B, G, C, n)``."""
        hidden = self.latent(segments)[:, :, None] + self.location(locations)[:, None]
        return self.out(hidden)


def band_power_loss(prediction, target, channel_mask=None):
    """Mean squared error over real channels, segments and bands.

    Parameters
    ----------
    prediction, target : torch.Tensor
        ``(B, G, C, n_bands)``.
    channel_mask : torch.Tensor | None
        Bool ``(B, C)``, True for real channels.

    Returns
    -------
    loss : torch.Tensor
        Scalar.
    """
    errors = (prediction.float() - target.float()).square().mean(-1)
    if channel_mask is None:
        return errors.mean()
    weights = channel_mask.float()[:, None, :].expand_as(errors)
    return _weighted_mean(errors, weights)


def query_specialization_loss(attention):
    """Mean of the squares of ``A @ A.T`` with its diagonal zeroed.

    Parameters
    ----------
    attention : torch.Tensor
        ``(N, Q, C)`` attention of each query over the channels.

    Returns
    -------
    loss : torch.Tensor
        Scalar; zero when the queries attend to disjoint channels.
    """
    attention = attention.float()
    gram = attention @ attention.transpose(1, 2)
    eye = torch.eye(gram.shape[-1], dtype=torch.bool, device=gram.device)
    return gram.masked_fill(eye, 0.0).square().mean()


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


class PretrainObjective:
    """The pretraining objective: reconstruction, query specialisation and LeJEPA.

    Parameters
    ----------
    name : str
        ``"mixed"`` (default: reconstruction + query specialisation +
        ``lejepa_weight`` x LeJEPA), ``"recon"`` (reconstruction + query
        specialisation), ``"lejepa"`` (LeJEPA only) or ``"spectral"``
        (reconstruction + query specialisation + ``bandpower_weight`` x the
        band-power target of :class:`BandPowerHead`).
    mask_ratio : float
        Fraction of (channel x patch) cells masked.
    visible_weight : float
        Weight of the visible cells in the reconstruction loss.
    query_weight : float
        Weight of the query-specialisation loss (LUNA: 0.8).
    lejepa_weight : float
        Weight of the LeJEPA loss in the mixed objective.
    lejepa_lambda : float
        SIGReg weight inside LeJEPA.
    n_local, local_patches, n_global, global_patches : int
        Number and length (in patches) of the local and global views.
    num_slices : int
        SIGReg directions.
    jitter : float
        Std of the Gaussian jitter on normalised channel coordinates.
    spectral : tuple of float | None
        ``(alpha, beta)`` to add EEGM2's spectral term on the reconstruction.
    bandpower_weight : float | None
        Weight of the band-power target (None: 1 for ``"spectral"``, else 0;
        a positive weight adds it to ``"recon"`` and ``"mixed"`` too).
    sfreq : float
        Sampling rate of the windows (for the band-power target).
    segment_patches : int
        Patches per segment of the band-power target.
    """

    def __init__(
        self,
        name="mixed",
        mask_ratio=0.5,
        visible_weight=0.05,
        query_weight=0.8,
        lejepa_weight=0.05,
        lejepa_lambda=0.002,
        n_local=4,
        local_patches=4,
        n_global=2,
        global_patches=16,
        num_slices=128,
        jitter=0.02,
        spectral=None,
        bandpower_weight=None,
        sfreq=128.0,
        segment_patches=8,
    ):
        if name not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, got {name!r}")
        self.name = name
        self.mask_ratio = mask_ratio
        self.visible_weight = visible_weight
        self.query_weight = query_weight
        self.lejepa_weight = lejepa_weight
        self.lejepa_lambda = lejepa_lambda
        self.n_local = n_local
        self.local_patches = local_patches
        self.n_global = n_global
        self.global_patches = global_patches
        self.num_slices = num_slices
        self.jitter = jitter
        self.spectral = spectral
        if bandpower_weight is None:
            bandpower_weight = 1.0 if name == "spectral" else 0.0
        if name == "lejepa" and bandpower_weight:
            raise ValueError("the band-power target needs a reconstruction pass")
        self.bandpower_weight = float(bandpower_weight)
        self.sfreq = float(sfreq)
        self.segment_patches = int(segment_patches)

    def to_dict(self):
        """Return the settings as a JSON-serialisable dict.

        Returns
        -------
        settings : dict
            The constructor arguments by name.
        """
        return dict(vars(self))

    @fill_doc
    def reconstruction_terms(  # noqa: D417 (docdict)
        self, model, x, positions, channel_mask, generator, head=None
    ):
        """Masked reconstruction + query specialisation (+ spectral) terms.

        Parameters
        ----------
        %(objective_batch)s
        generator : torch.Generator | None
            CPU generator for the patch mask.
        head : BandPowerHead | None
            Head of the band-power target (needed when it is weighted).

        Returns
        -------
        parts : dict of str to torch.Tensor
            Scalar losses ``recon`` and ``query``, plus ``spectral`` and
            ``bandpower`` when those terms are enabled.
        """
        n_patch = x.shape[-1] // model.patch_size
        patch_mask = random_patch_mask(
            (x.shape[0], x.shape[1], n_patch), self.mask_ratio, channel_mask, generator
        ).to(x.device)
        out = model.pretrain_forward(
            x, positions, patch_mask, channel_mask=channel_mask, jitter=self.jitter
        )
        recon = reconstruction_loss(
            out["recon"],
            x,
            patch_mask,
            model.patch_size,
            channel_mask,
            self.visible_weight,
        )
        query = query_specialization_loss(out["attention"])
        parts = {"recon": recon, "query": query}
        if self.spectral is not None:
            alpha, beta = self.spectral
            parts["spectral"] = spectral_loss(out["recon"], x, alpha, beta)
        if self.bandpower_weight:
            parts["bandpower"] = self.bandpower_term(
                model, head, out["latent"], x, positions, channel_mask
            )
        return parts

    def bandpower_term(self, model, head, latent, x, positions, channel_mask):
        """Band-power target: predict each electrode's spectrum from the latent.

        Parameters
        ----------
        model : torch.nn.Module
            The model (for ``location_embedding``).
        head : BandPowerHead
            The prediction head.
        latent : torch.Tensor
            ``(B, S, D)`` encoder output of the masked input.
        x : torch.Tensor
            ``(B, C, T)`` normalised windows (the unmasked target).
        positions : torch.Tensor
            ``(C, 3)`` or ``(B, C, 3)`` channel positions (metres).
        channel_mask : torch.Tensor | None
            Bool ``(B, C)``, True for real channels.

        Returns
        -------
        loss : torch.Tensor
            Scalar.
        """
        from ..models.positions import check_inputs

        if head is None:
            raise ValueError("the band-power target needs a BandPowerHead")
        n_seg = max(1, latent.shape[1] // self.segment_patches)
        per_seg = latent.shape[1] // n_seg
        usable = n_seg * per_seg
        segments = latent[:, :usable].reshape(latent.shape[0], n_seg, per_seg, -1)
        positions, mask = check_inputs(x, positions, channel_mask, model.patch_size)
        locations = model.location_embedding(positions, mask)
        target = log_band_power(
            x[..., : usable * model.patch_size],
            self.sfreq,
            per_seg * model.patch_size,
        )
        prediction = head(segments.mean(2).float(), locations.float())
        return band_power_loss(prediction, target, mask)

    @fill_doc
    def lejepa_terms(self, model, x, positions, channel_mask, generator, step):  # noqa: D417 (docdict)
        """LeJEPA loss on random local and global time crops.

        Parameters
        ----------
        %(objective_batch)s
        generator : torch.Generator | None
            CPU generator for the time crops.
        step : int
            Training step (seeds SIGReg's directions).

        Returns
        -------
        parts : dict of str to torch.Tensor
            Scalar ``lejepa`` loss and its detached ``pred`` and ``sigreg``
            components.
        """
        size = model.patch_size
        embeddings = []
        for n_views, n_patches in (
            (self.n_local, self.local_patches),
            (self.n_global, self.global_patches),
        ):
            views = random_time_crops(x, n_views, n_patches * size, generator)
            pos = positions if positions.dim() == 2 else positions.repeat(n_views, 1, 1)
            mask = None if channel_mask is None else channel_mask.repeat(n_views, 1)
            pooled = model.encode(views, pos, channel_mask=mask).mean(1)
            embeddings.append(pooled.reshape(n_views, x.shape[0], -1))
        loss, parts = lejepa_loss(
            *embeddings, seed=step, lam=self.lejepa_lambda, num_slices=self.num_slices
        )
        return {"lejepa": loss, **parts}

    @fill_doc
    def __call__(  # noqa: D417 (docdict)
        self, model, x, positions, channel_mask=None, generator=None, step=0, head=None
    ):
        """Compute the loss of one batch.

        Parameters
        ----------
        %(objective_batch)s
        generator : torch.Generator | None
            CPU generator for masks and crops.
        step : int
            Training step (seeds SIGReg's directions).
        head : BandPowerHead | None
            Head of the band-power target.

        Returns
        -------
        loss : torch.Tensor
            Scalar to minimise.
        parts : dict of str to float
            Each term, for logging.
        """
        parts = {}
        loss = x.new_zeros((), dtype=torch.float32)
        if self.name in ("mixed", "recon", "spectral"):
            terms = self.reconstruction_terms(
                model, x, positions, channel_mask, generator, head
            )
            loss = loss + terms["recon"] + self.query_weight * terms["query"]
            loss = loss + terms.get("spectral", 0.0)
            loss = loss + self.bandpower_weight * terms.get("bandpower", 0.0)
            parts.update(terms)
        if self.name in ("mixed", "lejepa"):
            terms = self.lejepa_terms(
                model, x, positions, channel_mask, generator, step
            )
            weight = self.lejepa_weight if self.name == "mixed" else 1.0
            loss = loss + weight * terms["lejepa"]
            parts.update(terms)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite loss at step {step}: {parts}")
        parts = {key: float(value.detach()) for key, value in parts.items()}
        return loss, parts


class PretrainModule(nn.Module):
    """Model + objective as one module, so DDP wraps a single forward per step.

    Parameters
    ----------
    model : torch.nn.Module
        The model being pretrained.
    objective : PretrainObjective
        The loss.
    """

    def __init__(self, model, objective):
        super().__init__()
        self.model = model
        self.objective = objective
        self.head = None
        if objective.bandpower_weight:
            self.head = BandPowerHead(model.embed_dim, model.patch_embed_dim)

    def forward(self, x, positions, channel_mask=None, generator=None, step=0):
        """Return ``(loss, parts)`` for one batch (see :class:`PretrainObjective`)."""
        return self.objective(
            self.model, x, positions, channel_mask, generator, step, self.head
        )
