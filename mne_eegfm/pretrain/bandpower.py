"""Band-power target: predict each electrode's spectrum from the latent.

An addition to masked reconstruction (``--objective spectral`` or
``--bandpower-weight``): the log relative power of each electrode in six
bands, per segment of the window, is predicted from the latent and the
electrode's location embedding. Relative power means the same on any device
and amplitude scale, so the target teaches the latent spectral and spatial
content that transfers across montages.
"""

import torch
from torch import nn

from ..models.positions import check_inputs

#: Frequency bands (Hz) of the band-power target.
BANDS = ((1.0, 4.0), (4.0, 8.0), (8.0, 13.0), (13.0, 20.0), (20.0, 30.0), (30.0, 45.0))


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
    bands : tuple of tuple of float
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
        """Predict the band power of every electrode in every segment.

        Parameters
        ----------
        segments : torch.Tensor
            ``(B, G, D)`` latent averaged over the patches of each segment.
        locations : torch.Tensor
            ``(B, C, E)`` location embeddings of the electrodes.

        Returns
        -------
        prediction : torch.Tensor
            ``(B, G, C, n_bands)`` predicted log relative power.
        """
        hidden = self.latent(segments)[:, :, None] + self.location(locations)[:, None]
        return self.out(hidden)


def masked_mean(values, weights):
    """Mean of ``values`` weighted by ``weights`` (0 when every weight is 0)."""
    return (values * weights).sum() / weights.sum().clamp_min(1.0)


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
    return masked_mean(errors, channel_mask.float()[:, None, :].expand_as(errors))


def band_power_term(
    model, head, latent, x, positions, channel_mask, sfreq, segment_patches
):
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
    sfreq : float
        Sampling rate of the windows (Hz).
    segment_patches : int
        Patches per segment of the target.

    Returns
    -------
    loss : torch.Tensor
        Scalar.
    """
    if head is None:
        raise ValueError("the band-power target needs a BandPowerHead")
    n_seg = max(1, latent.shape[1] // segment_patches)
    per_seg = latent.shape[1] // n_seg
    usable = n_seg * per_seg
    segments = latent[:, :usable].reshape(latent.shape[0], n_seg, per_seg, -1)
    positions, mask = check_inputs(x, positions, channel_mask, model.patch_size)
    locations = model.location_embedding(positions, mask)
    target = log_band_power(
        x[..., : usable * model.patch_size],
        sfreq,
        per_seg * model.patch_size,
    )
    prediction = head(segments.mean(2).float(), locations.float())
    return band_power_loss(prediction, target, mask)
