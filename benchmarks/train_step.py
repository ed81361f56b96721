"""Pretraining step time in float32 vs bfloat16 (encoder + decoder, training loss).

One step = forward of ``pretrain_forward`` (masked patches, reconstruction
decoder) + LUNA's masked reconstruction loss + backward + AdamW update, with
float32 master weights; the bfloat16 step runs forward and backward under
:func:`mne_eegfm.models.precision.precision_context`. Both start from the same
weights and batch; the script prints the best step time of each, the ratio,
and the losses of the first step (same weights, so they differ only by
rounding). bfloat16 is skipped, with the reason, where the device does not
support it.

Run: ``python benchmarks/train_step.py [--model lumamba-tiny] [--batch 16]``
"""

import argparse
import copy
import os
import time

import torch

from mne_eegfm.models import create_model
from mne_eegfm.models.precision import precision_context, resolve_precision
from mne_eegfm.pretrain.objectives import random_patch_mask, reconstruction_loss

SFREQ = 256
N_CHANNELS = 22


def step_time(model, batch, precision, repeats, device):
    """Best wall time of one training step and the loss of the first one."""
    x, positions, patch_mask = batch
    model = copy.deepcopy(model).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step():
        optimizer.zero_grad(set_to_none=True)
        with precision_context(precision, device):
            out = model.pretrain_forward(x, positions, patch_mask)
            loss = reconstruction_loss(out["recon"], x, patch_mask, model.patch_size)
        loss.backward()
        optimizer.step()
        return loss.item()  # waits for the device

    first_loss = step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return min(times), first_loss


def _print_row(precision, seconds, loss):
    print(f"{precision:<9} {seconds:8.3f} s/step  loss {loss:.5f}")


def train_step_ratio(
    name="lumamba-tiny", n_batch=16, seconds=10.0, repeats=3, device="cpu"
):
    """Measure and print float32 vs bfloat16 step times.

    Returns
    -------
    result : dict
        ``float32_s``, ``float32_loss`` and, where bfloat16 is supported,
        ``bfloat16_s``, ``bfloat16_loss`` and ``ratio`` (float32 / bfloat16 time).
    """
    device = torch.device(device)
    torch.manual_seed(0)
    model = create_model(name).to(device)
    for module in model.modules():  # dropout off: same function in both runs
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    n_times = int(seconds * SFREQ)
    x = torch.randn(n_batch, N_CHANNELS, n_times, device=device)
    positions = torch.randn(N_CHANNELS, 3, device=device) * 0.05
    n_patches = n_times // model.patch_size
    gen = torch.Generator().manual_seed(0)
    patch_mask = random_patch_mask((n_batch, N_CHANNELS, n_patches), generator=gen)
    batch = (x, positions, patch_mask.to(device))
    load = " ".join(f"{v:.1f}" for v in os.getloadavg())
    print(
        f"{name} pretraining step: batch {n_batch} x {N_CHANNELS} ch x {seconds:g} s "
        f"@ {SFREQ} Hz, {torch.get_num_threads()} threads, {device}, "
        f"best of {repeats}, load average {load}"
    )
    result = {}
    result["float32_s"], result["float32_loss"] = step_time(
        model, batch, "float32", repeats, device
    )
    _print_row("float32", result["float32_s"], result["float32_loss"])
    try:
        resolve_precision("bfloat16", device)
    except ValueError as err:
        print(f"bfloat16: not measured: {err}")
        return result
    result["bfloat16_s"], result["bfloat16_loss"] = step_time(
        model, batch, "bfloat16", repeats, device
    )
    result["ratio"] = result["float32_s"] / result["bfloat16_s"]
    _print_row("bfloat16", result["bfloat16_s"], result["bfloat16_loss"])
    print(f"speed-up bfloat16 / float32: {result['ratio']:.2f}x (goal >= 3x)")
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lumamba-tiny")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train_step_ratio(args.model, args.batch, args.seconds, args.repeats, args.device)


if __name__ == "__main__":
    main()
