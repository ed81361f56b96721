"""Resumable, distributed pretraining loop.

AdamW with linear warm-up and cosine decay, gradient clipping, a float32 or
bfloat16 step (``precision``; float32 master weights), a JSON-lines log of the
losses and atomic checkpoints (model, optimiser, scheduler, data position,
step) that ``torch.load(weights_only=True)`` reads back. Random numbers
(masks, crops, channel subsets, dropout) are reseeded at every step
from ``(seed, rank, step)``, so the random state at any step is restored
exactly by its step number and a resumed run repeats an uninterrupted one.
Under ``torchrun`` the model is wrapped in DDP (NCCL on GPU, gloo on CPU) and
each rank reads its own shard of the batches. Batches hold one montage, or
every montage at once with random channel subsets and channel dropout
(``mixed=True``, see :func:`~mne_eegfm.pretrain.data.mixed_batch`).
"""

import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from mne.utils import logger, verbose, warn

from .._docs import fill_doc
from ..models.precision import precision_context, resolve_precision
from ..utils import atomic_path, resolve_device
from .data import MixedBatchSampler, MontageBatchSampler, mixed_batch
from .objectives import PretrainModule, PretrainObjective

CHECKPOINT_NAME = "checkpoint.pt"
LOG_NAME = "log.jsonl"


def init_distributed(device="auto"):
    """Join the process group when launched by ``torchrun``.

    Parameters
    ----------
    device : str
        ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``.

    Returns
    -------
    rank, world_size : int
        This process's rank and the number of processes (0, 1 without torchrun).
    device : torch.device
        The device of this process.
    """
    device = resolve_device(device)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return 0, 1, device
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    return dist.get_rank(), dist.get_world_size(), device


#: Batch options of :func:`pretrain` (``batches=``) and their defaults.
BATCH_DEFAULTS = {
    "mixed": False,
    "max_channels": None,
    "min_channels": 1,
    "channel_dropout": 0.0,
    "crop_samples": None,
    "precision": "float32",
}


def barrier():
    """Wait for every rank (no-op without a process group)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def warmup_cosine(step, warmup_steps, total_steps, min_ratio=0.01):
    """Learning-rate factor: linear warm-up then cosine decay to ``min_ratio``.

    Parameters
    ----------
    step : int
        Current step (0-based).
    warmup_steps : int
        Steps of linear warm-up.
    total_steps : int
        Total number of steps.
    min_ratio : float
        Final factor.

    Returns
    -------
    factor : float
        Multiplier of the base learning rate.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def step_seed(seed, rank, step):
    """Seed of the random numbers of one step of one rank.

    Parameters
    ----------
    seed : int
        Run seed.
    rank : int
        Process rank.
    step : int
        Training step.

    Returns
    -------
    seed : int
        A 63-bit seed.
    """
    return (
        int(np.random.SeedSequence([seed, rank, step]).generate_state(2, np.uint64)[0])
        >> 1
    )


def save_checkpoint(path, state):
    """Write a checkpoint atomically (temporary file, fsync, rename).

    Parameters
    ----------
    path : path-like
        Destination.
    state : dict
        Tensors, numbers, strings and containers of them only.
    """
    with atomic_path(path) as tmp, open(tmp, "wb") as fid:
        torch.save(state, fid)
        fid.flush()
        os.fsync(fid.fileno())


def load_checkpoint(path, map_location="cpu"):
    """Read a checkpoint with ``weights_only=True`` (no arbitrary pickles).

    Parameters
    ----------
    path : path-like
        The checkpoint.
    map_location : str | torch.device
        Where to put the tensors.

    Returns
    -------
    state : dict
        The checkpoint.
    """
    return torch.load(path, map_location=map_location, weights_only=True)


def _trim_log(log_path, last_step):
    """Drop log lines of steps after the checkpoint we resume from."""
    if not log_path.is_file():
        return
    lines = []
    for line in log_path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:  # a line cut by a kill or a full disk: dropped
            continue
        if isinstance(record, dict) and record.get("step", last_step + 1) <= last_step:
            lines.append(line)
    log_path.write_text("".join(f"{line}\n" for line in lines))


class _Loop:
    """State of one training run (kept small: one object, plain attributes)."""

    def __init__(self, model, dataset, objective, settings, rank, world_size, device):
        self.model = model
        self.dataset = dataset
        self.settings = settings
        self.rank = rank
        self.device = device
        self.module = PretrainModule(model, objective).to(device)
        self.wrapped = self.module
        if world_size > 1:
            self.wrapped = torch.nn.parallel.DistributedDataParallel(
                self.module,
                device_ids=[device.index] if device.type == "cuda" else None,
                find_unused_parameters=True,
            )
        self.optimizer = torch.optim.AdamW(
            self.module.parameters(),
            lr=settings["lr"],
            weight_decay=settings["weight_decay"],
            betas=(0.9, 0.95),
        )
        steps, warmup = settings["steps"], settings["warmup_steps"]
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: warmup_cosine(step, warmup, steps)
        )
        sampler = MixedBatchSampler if settings["mixed"] else MontageBatchSampler
        self.sampler = sampler(
            dataset.groups, settings["batch_size"], settings["seed"], rank, world_size
        )
        self.precision = resolve_precision(settings["precision"], device)
        self.step = self.epoch = self.position = 0
        self.train_time = 0.0
        self._batches = (None, None)

    def state(self):
        head = self.module.head
        return {
            "model": self.model.state_dict(),
            **({"head": head.state_dict()} if head is not None else {}),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "position": self.position,
            "train_time_s": self.train_time,
            "rng_cpu": torch.get_rng_state(),
            "settings": json.dumps(self.settings, sort_keys=True),
        }

    def restore(self, state):
        self.model.load_state_dict(state["model"])
        if self.module.head is not None:
            self.module.head.load_state_dict(state["head"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step, self.epoch = state["step"], state["epoch"]
        self.position, self.train_time = state["position"], state["train_time_s"]
        torch.set_rng_state(state["rng_cpu"])

    def next_batch(self, rng):
        if self._batches[0] != self.epoch:
            self._batches = (self.epoch, self.sampler.epoch(self.epoch))
        pairs = self._batches[1][self.position]
        self.position += 1
        if self.position == len(self._batches[1]):
            self.epoch, self.position = self.epoch + 1, 0
        if not self.settings["mixed"]:
            x, positions = self.dataset.batch(pairs)
            return torch.from_numpy(x), torch.from_numpy(positions), None
        settings = self.settings
        x, positions, mask = mixed_batch(
            self.dataset,
            pairs,
            rng,
            settings["max_channels"],
            settings["min_channels"],
            settings["channel_dropout"],
            settings["crop_samples"],
        )
        return torch.from_numpy(x), torch.from_numpy(positions), torch.from_numpy(mask)

    def train_step(self):
        seed = step_seed(self.settings["seed"], self.rank, self.step)
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        batch = self.next_batch(np.random.default_rng(seed))
        x, positions, mask = (
            None if t is None else t.to(self.device, non_blocking=True) for t in batch
        )
        self.module.train()
        with precision_context(self.precision, self.device):
            loss, parts = self.wrapped(x, positions, mask, generator, self.step)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(
            self.module.parameters(), self.settings["grad_clip"]
        )
        self.optimizer.step()
        lr = self.scheduler.get_last_lr()[0]
        self.scheduler.step()
        self.step += 1
        return {
            "loss": float(loss.detach()),
            **parts,
            "grad_norm": float(norm),
            "lr": lr,
        }


def _settings(steps, batch_size, lr, weight_decay, warmup_steps, grad_clip, seed,
              batches):  # fmt: skip
    if warmup_steps is None:
        warmup_steps = max(1, min(500, steps // 10))
    unknown = set(batches) - set(BATCH_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown batch option(s) {sorted(unknown)}")
    return {
        **BATCH_DEFAULTS,
        **batches,
        "steps": int(steps),
        "batch_size": int(batch_size),
        "lr": float(lr),
        "weight_decay": float(weight_decay),
        "warmup_steps": int(warmup_steps),
        "grad_clip": float(grad_clip),
        "seed": int(seed),
    }


@verbose
@fill_doc
def pretrain(  # noqa: D417 (docdict)
    model,
    dataset,
    out_dir,
    *,
    objective=None,
    steps=1000,
    batch_size=32,
    lr=5e-4,
    weight_decay=0.05,
    warmup_steps=None,
    grad_clip=1.0,
    checkpoint_every=100,
    seed=0,
    resume=False,
    device="auto",
    batches=None,
    on_checkpoint=None,
    progress=True,
    verbose=None,
):
    """Pretrain a model, resumably, on one process or under ``torchrun``.

    Parameters
    ----------
    model : torch.nn.Module
        Model with ``pretrain_forward``, ``encode`` and ``patch_size``; build it
        after seeding so every rank starts from the same weights (DDP also
        broadcasts rank 0's weights).
    dataset : WindowDataset
        The windows.
    out_dir : path-like
        Folder of the checkpoint (``checkpoint.pt``) and the log (``log.jsonl``).
    objective : PretrainObjective | None
        The loss (default: the mixed objective).
    steps : int
        Total number of optimiser steps.
    batch_size : int
        Windows per step and per process.
    lr : float
        Peak learning rate.
    weight_decay : float
        AdamW weight decay.
    warmup_steps : int | None
        Linear warm-up steps (default ``min(500, steps // 10)``, at least 1).
    grad_clip : float
        Maximum gradient norm.
    checkpoint_every : int
        Write a checkpoint every this many steps (and at the end).
    seed : int
        Seed of the data order, masks, crops and dropout.
    resume : bool
        Continue from ``out_dir/checkpoint.pt`` if it exists.
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    batches : dict | None
        How batches are made and run (defaults in ``BATCH_DEFAULTS``):
        ``mixed`` (every montage in every batch, padded), ``max_channels``,
        ``min_channels`` and ``channel_dropout`` (channel subset and dropout
        per window, see :func:`~mne_eegfm.pretrain.data.channel_subset`; mixed
        batches only), ``crop_samples`` (random crop of the windows; mixed
        batches only) and ``precision`` (``"float32"``, ``"bfloat16"`` or
        ``"auto"``).
    on_checkpoint : callable | None
        Called on rank 0 after each checkpoint with the summary so far (see
        Returns), e.g. to export the model.
    progress : bool
        Show a progress bar (rank 0 only).
    %(verbose)s

    Returns
    -------
    summary : dict
        ``steps``, ``train_time_s`` (over all sessions of the run),
        ``final_loss`` (mean of the last 50 logged losses of rank 0),
        ``world_size``.
    """
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path, log_path = out_dir / CHECKPOINT_NAME, out_dir / LOG_NAME
    rank, world_size, device = init_distributed(device)
    settings = _settings(
        steps, batch_size, lr, weight_decay, warmup_steps, grad_clip, seed,
        batches or {},
    )  # fmt: skip
    settings["world_size"] = world_size
    loop = _Loop(
        model,
        dataset,
        objective or PretrainObjective(),
        settings,
        rank,
        world_size,
        device,
    )
    if ckpt_path.is_file() and not resume:
        raise ValueError(
            f"{ckpt_path} exists: pass resume=True (--resume) to continue that run, "
            "or choose another output folder."
        )
    if ckpt_path.is_file():
        state = load_checkpoint(ckpt_path, map_location=device)
        loop.restore(state)
        logger.info(f"Resuming from step {loop.step} of {ckpt_path}")
        saved = json.loads(state["settings"])
        if saved != settings:
            warn(f"Settings differ from the checkpoint's: {saved} != {settings}")
    if rank == 0:
        _trim_log(log_path, loop.step)
    bar = tqdm(
        total=steps, initial=loop.step, disable=not progress or rank != 0, unit="step"
    )
    losses = []
    while loop.step < steps:
        start = time.perf_counter()
        record = loop.train_step()
        loop.train_time += time.perf_counter() - start
        losses = (losses + [record["loss"]])[-50:]
        bar.update(1)
        bar.set_postfix(loss=f"{record['loss']:.4f}")
        if rank == 0:
            record = {"step": loop.step, **record, "time_s": round(loop.train_time, 3)}
            with open(log_path, "a") as fid:
                fid.write(json.dumps(record) + "\n")
        if loop.step % checkpoint_every == 0 or loop.step == steps:
            if rank == 0:
                save_checkpoint(ckpt_path, loop.state())
                if on_checkpoint is not None:
                    on_checkpoint(_summary(loop, losses, world_size))
            barrier()
    bar.close()
    return _summary(loop, losses, world_size)


def _summary(loop, losses, world_size):
    return {
        "steps": loop.step,
        "train_time_s": loop.train_time,
        "final_loss": float(np.mean(losses)) if losses else None,
        "world_size": world_size,
        "precision": loop.precision,
    }
