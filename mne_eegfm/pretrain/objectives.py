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
from .bandpower import BandPowerHead, band_power_term, masked_mean
from .lejepa import lejepa_loss, random_channel_subsets, random_time_crops

OBJECTIVES = ("mixed", "recon", "lejepa", "spectral")


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
    return masked_mean(errors, masked) + visible_weight * masked_mean(errors, visible)


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
    view_channels : float
        Fraction of each window's channels that each LeJEPA view sees, drawn
        anew per view. 1 (default) gives every view all channels, as in
        ``model-spec.md``; below 1 the views also differ in montage, so the
        pooled embedding is pushed to be the same whichever electrodes
        record the window.
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
        view_channels=1.0,
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
        if not 0.0 < view_channels <= 1.0:
            raise ValueError(f"view_channels must be in (0, 1], got {view_channels}")
        self.view_channels = float(view_channels)
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
            parts["bandpower"] = band_power_term(
                model, head, out["latent"], x, positions, channel_mask,
                self.sfreq, self.segment_patches,
            )  # fmt: skip
        return parts

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
            mask = self._view_channels(x, channel_mask, n_views, generator)
            pooled = model.encode(views, pos, channel_mask=mask).mean(1)
            embeddings.append(pooled.reshape(n_views, x.shape[0], -1))
        loss, parts = lejepa_loss(
            *embeddings, seed=step, lam=self.lejepa_lambda, num_slices=self.num_slices
        )
        return {"lejepa": loss, **parts}

    def _view_channels(self, x, channel_mask, n_views, generator):
        """Channel mask ``(n_views * B, C)`` of the views (None: all channels)."""
        if self.view_channels == 1.0:
            return None if channel_mask is None else channel_mask.repeat(n_views, 1)
        if channel_mask is None:
            channel_mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        return random_channel_subsets(
            channel_mask, n_views, self.view_channels, generator
        )

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
