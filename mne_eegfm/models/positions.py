"""Inputs of the front end: shape checks, electrode positions and their encoding."""

import math

import torch
import torch.nn.functional as F

PATCH_SIZE = 40


def check_inputs(x, positions, channel_mask, patch_size=PATCH_SIZE):
    """Validate model inputs and bring positions/mask to per-sample form.

    Parameters
    ----------
    x : torch.Tensor, shape (B, C, T)
        Signals.
    positions : torch.Tensor | array, shape (B, C, 3) | (C, 3)
        Electrode positions in metres.
    channel_mask : torch.Tensor | None, shape (B, C)
        True for real channels, False for padding.
    patch_size : int
        T must be a multiple of it.

    Returns
    -------
    positions : torch.Tensor, shape (B, C, 3)
    channel_mask : torch.Tensor | None, shape (B, C)
        None when every channel is real.
    """
    if x.ndim != 3:
        raise ValueError(f"x must have shape (B, C, T), got {tuple(x.shape)}")
    if x.dtype != torch.float32:
        raise ValueError(
            f"x must be float32 (the models' dtype), got {x.dtype}; "
            "convert it with x.float()"
        )
    n_batch, n_chan, n_times = x.shape
    if n_chan == 0:
        raise ValueError("x has no channels (shape (B, 0, T)): nothing to encode")
    if n_times == 0 or n_times % patch_size:
        raise ValueError(
            f"T={n_times} samples is not a positive multiple of the patch size "
            f"{patch_size}; crop or pad the windows (e.g. 5 s at 256 Hz = 1280)"
        )
    positions = torch.as_tensor(positions, dtype=x.dtype, device=x.device)
    if positions.ndim == 2:
        positions = positions.expand(n_batch, -1, -1)
    if positions.shape != (n_batch, n_chan, 3):
        raise ValueError(
            f"positions must have shape ({n_chan}, 3) or ({n_batch}, {n_chan}, 3) "
            f"for x of shape {tuple(x.shape)}, got {tuple(positions.shape)}"
        )
    if channel_mask is not None:
        channel_mask = torch.as_tensor(channel_mask, device=x.device).bool()
        if channel_mask.shape != (n_batch, n_chan):
            raise ValueError(
                f"channel_mask must have shape ({n_batch}, {n_chan}), "
                f"got {tuple(channel_mask.shape)}"
            )
        empty = (~channel_mask.any(dim=1)).nonzero().flatten().tolist()
        if empty:
            raise ValueError(f"samples {empty} have no real channel in channel_mask")
        if bool(channel_mask.all()):
            channel_mask = None
    real = positions if channel_mask is None else positions[channel_mask]
    if not torch.isfinite(real).all():
        raise ValueError("positions of real channels contain NaN or infinite values")
    if not torch.isfinite(x).all():
        raise ValueError("x contains NaN or infinite values (padding included)")
    return positions, channel_mask


def normalize_positions(positions, channel_mask=None):
    """Min-max normalise coordinates per sample and axis over the real channels.

    Parameters
    ----------
    positions : torch.Tensor, shape (B, C, 3)
        Coordinates.
    channel_mask : torch.Tensor | None, shape (B, C)
        Real channels (padding is ignored and set to 0).

    Returns
    -------
    normalized : torch.Tensor, shape (B, C, 3)
        ``(p - min) / (max - min + 1e-8)``.
    """
    if channel_mask is None:
        low = positions.amin(dim=1, keepdim=True)
        high = positions.amax(dim=1, keepdim=True)
        return (positions - low) / (high - low + 1e-8)
    real = channel_mask[..., None]
    positions = torch.where(real, positions, 0.0)
    low = torch.where(real, positions, math.inf).amin(dim=1, keepdim=True)
    high = torch.where(real, positions, -math.inf).amax(dim=1, keepdim=True)
    return torch.where(real, (positions - low) / (high - low + 1e-8), 0.0)


def nerf_encoding(coords, width):
    """NeRF sin/cos encoding of 3-D coordinates, zero-padded to ``width``.

    Parameters
    ----------
    coords : torch.Tensor, shape (..., 3)
        Normalised coordinates.
    width : int
        Output width; ``width // 6`` frequency bands ``2**0 .. 2**(F-1)``.

    Returns
    -------
    features : torch.Tensor, shape (..., width)
        Ordered (band, axis, [sin, cos]).
    """
    n_bands = width // (2 * coords.shape[-1])
    bands = 2.0 ** torch.arange(n_bands, device=coords.device, dtype=coords.dtype)
    angles = bands[:, None] * coords[..., None, :]  # (..., band, axis)
    features = torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(-3)
    return F.pad(features, (0, width - features.shape[-1]))
