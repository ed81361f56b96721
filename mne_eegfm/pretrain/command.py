"""The ``mne-eegfm pretrain`` command."""

import copy
import json
import os
import platform
import shlex
import sys
from pathlib import Path

import click
import torch

from ..preprocessing import InputContract
from ..utils import parameter_defaults
from .objectives import OBJECTIVES, PretrainObjective
from .trainer import barrier, init_distributed
from .trainer import pretrain as run_pretraining

RUN_NAME = "run.json"


# Option defaults come from the library, so --help cannot drift from it.
_CONTRACT = parameter_defaults(InputContract)
_OBJECTIVE = parameter_defaults(PretrainObjective)
_TRAINING = parameter_defaults(run_pretraining)


def _model_options(items):
    """Parse ``KEY=VALUE`` model options; values are JSON when they parse."""
    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def _read_subjects(path):
    if path is None:
        return []
    lines = Path(path).read_text().splitlines()
    return [line.split()[0] for line in lines if line.strip() and line[0] != "#"]


def _portable(path, out):
    """A path as written to run.json and the card: relative to the output folder.

    Written files carry no absolute, machine-specific path; relative to
    ``out``, the path still leads to the data from where the card lies.
    """
    try:
        return os.path.relpath(Path(path).resolve(), Path(out).resolve())
    except ValueError:  # another drive (Windows)
        return Path(path).name


def _command_line(out):
    """The command as typed (``mne-eegfm pretrain ...``), with portable paths."""
    args = sys.argv[1:]
    if "pretrain" in args:
        args = args[args.index("pretrain") + 1 :]
    args = [_portable(arg, out) if os.path.isabs(arg) else arg for arg in args]
    return shlex.join(["mne-eegfm", "pretrain", *args])


def _hardware(device):
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    return f"CPU ({cpu}, {os.cpu_count()} cores), {torch.get_num_threads()} thread(s)"


def _writable_folder(out):
    """Create ``out`` (and check it can be written) before any long work."""
    from ..cli._common import write_problem

    reason = write_problem(out)
    if reason is not None:
        raise click.BadParameter(
            f"cannot write into {Path(out)}: {reason}", param_hint="--out"
        )
    return Path(out)


def _create(config, items):
    """The model to pretrain, or a usage error naming the bad config/option."""
    from ..models import create_model

    try:
        return create_model(config, **_model_options(items))
    except (KeyError, TypeError, ValueError) as err:
        message = err.args[0] if err.args else err
        raise click.BadParameter(str(message), param_hint="--config") from None


def _initial(spec, config, items):
    """The model to continue pretraining from ``spec``, and its record for the card."""
    from ..checkpoints import load_model

    source = click.get_current_context().get_parameter_source("config")
    if items or source != click.core.ParameterSource.DEFAULT:
        raise click.UsageError("--init takes the model's own config: drop --config/-m")
    try:
        model = load_model(spec, verbose=False)
    except (FileNotFoundError, KeyError, ValueError) as err:
        raise click.BadParameter(str(err), param_hint="--init") from None
    if not hasattr(model, "pretrain_forward") or model.config.get("n_outputs"):
        raise click.BadParameter(
            f"{spec} is not an encoder that can be pretrained", param_hint="--init"
        )
    record = {"model": Path(str(spec)).name, "sha256": model.card.weights_sha256}
    return model, record


def _check_run(out, run):
    """Write ``run.json``, or check that a resumed run uses the same settings."""
    path = Path(out) / RUN_NAME
    if path.is_file():
        saved = json.loads(path.read_text())
        keys = (
            "contract", "model_config", "init", "objective", "data",
            "holdout_subjects",
        )  # fmt: skip
        changed = [key for key in keys if saved.get(key) != run.get(key)]
        if changed:
            raise click.UsageError(
                f"{path} was written with different {', '.join(changed)}; resume "
                "with the same data and options, or use another --out folder."
            )
        return
    path.write_text(json.dumps(run, indent=2) + "\n")


def _export(model, out, contract, run, summary, dataset, card_file, float16):
    from ..checkpoints import save_model

    card = json.loads(Path(card_file).read_text()) if card_file else {}
    # signal covered by the windows (overlapping parts counted once)
    step_s = contract.window_s * (1.0 - run["overlap"])
    extra_s = len(dataset.recordings) * (contract.window_s - step_s)
    hours = (len(dataset) * step_s + extra_s) / 3600.0
    card.setdefault("licence", "same as the pretraining data")
    card.update(
        {
            "objective": run["objective"],
            "pretraining": {
                **dataset.summary(),
                "hours": round(hours, 3),
                "overlap": run["overlap"],
                "data": run["data"],
                "holdout_subjects": run["holdout_subjects"],
                "init": run["init"],
                **summary,
                "hardware": run["hardware"],
                "command": run["command"],
                "settings": run["settings"],
            },
        }
    )
    export = copy.deepcopy(model).cpu()  # never change the model being trained
    export = export.half() if float16 else export
    return save_model(export, Path(out) / "model", contract=contract, card=card)


@click.command("pretrain")
@click.argument("data", nargs=-1, required=True, type=click.Path(exists=True))
@click.option(
    "--config", default="lumamba-tiny", show_default=True, help="Model config."
)
@click.option(
    "--init",
    "init_from",
    help="Continue pretraining this encoder (registry name or model file) "
    "instead of a new --config model.",
)
@click.option(
    "--out", required=True, type=click.Path(file_okay=False), help="Output folder."
)
@click.option("--resume", is_flag=True, help="Continue the run in --out.")
@click.option(
    "--steps",
    default=_TRAINING["steps"],
    show_default=True,
    help="Total optimiser steps.",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=_TRAINING["batch_size"],
    show_default=True,
    help="Windows per step and process.",
)
@click.option(
    "--lr", default=_TRAINING["lr"], show_default=True, help="Peak learning rate."
)
@click.option("--weight-decay", default=_TRAINING["weight_decay"], show_default=True)
@click.option(
    "--warmup-steps", type=int, default=None, help="Default: min(500, steps/10)."
)
@click.option(
    "--checkpoint-every", default=_TRAINING["checkpoint_every"], show_default=True
)
@click.option(
    "--objective",
    type=click.Choice(OBJECTIVES),
    default=_OBJECTIVE["name"],
    show_default=True,
)
@click.option(
    "--spectral", is_flag=True, help="Add EEGM2's spectral term (alpha=beta=1)."
)
@click.option("--seed", default=_TRAINING["seed"], show_default=True)
@click.option(
    "--holdout-subjects",
    type=click.Path(exists=True, dir_okay=False),
    help="File of subjects (one per line) left out of pretraining.",
)
@click.option(
    "--sfreq",
    default=_CONTRACT["sfreq"],
    show_default=True,
    help="Contract sampling rate.",
)
@click.option("--l-freq", default=_CONTRACT["l_freq"], show_default=True)
@click.option("--h-freq", default=_CONTRACT["h_freq"], show_default=True)
@click.option("--notch", type=float, default=None, help="Line frequency to notch out.")
@click.option(
    "--window-s",
    default=_CONTRACT["window_s"],
    show_default=True,
    help="Window length (s).",
)
@click.option(
    "--overlap", default=0.0, show_default=True, help="Window overlap fraction."
)
@click.option(
    "--cache-dir", type=click.Path(file_okay=False), help="Default: OUT/cache."
)
@click.option("--model-option", "-m", multiple=True, help="KEY=VALUE config override.")
@click.option("--device", default=_TRAINING["device"], show_default=True)
@click.option("--threads", type=int, default=None, help="CPU threads per process.")
@click.option(
    "--card", type=click.Path(exists=True, dir_okay=False), help="JSON card fields."
)
@click.option("--float16", is_flag=True, help="Export the weights in float16.")
@click.option(
    "--bandpower-weight",
    type=float,
    default=None,
    help="Weight of the band-power target (default: 1 for --objective spectral).",
)
@click.option(
    "--lejepa-weight",
    type=float,
    default=_OBJECTIVE["lejepa_weight"],
    show_default=True,
    help="Weight of LeJEPA in --objective mixed.",
)
@click.option(
    "--lejepa-lambda",
    type=click.FloatRange(0.0, 1.0),
    default=_OBJECTIVE["lejepa_lambda"],
    show_default=True,
    help="SIGReg weight inside LeJEPA (SIGReg grows with the batch size: "
    "small batches may need more).",
)
@click.option(
    "--view-channels",
    type=click.FloatRange(0.0, 1.0, min_open=True),
    default=_OBJECTIVE["view_channels"],
    show_default=True,
    help="Fraction of a window's channels each LeJEPA view sees (own subset per view).",
)
@click.option(
    "--mixed-montages",
    is_flag=True,
    help="Mix every montage in every batch (padded, with a channel mask).",
)
@click.option(
    "--max-channels", type=int, default=None, help="Random channel subset size cap."
)
@click.option("--min-channels", default=1, show_default=True)
@click.option(
    "--channel-dropout", default=0.0, show_default=True, help="Per-channel drop rate."
)
@click.option(
    "--crop-s", type=float, default=None, help="Random crop of the windows (s)."
)
@click.option(
    "--precision",
    type=click.Choice(("float32", "bfloat16", "auto")),
    default="float32",
    show_default=True,
    help="Precision of the training step (float32 master weights).",
)
@click.option(
    "--exclude-heldout",
    is_flag=True,
    help="Leave out recordings of the transfer benchmark's subjects.",
)
@click.option(
    "--allow-heldout",
    is_flag=True,
    help="Use recordings of the transfer benchmark's subjects anyway.",
)
def pretrain(
    data, config, init_from, out, resume, steps, batch_size, lr, weight_decay,
    warmup_steps, checkpoint_every, objective, spectral, seed, holdout_subjects, sfreq,
    l_freq, h_freq, notch, window_s, overlap, cache_dir, model_option, device, threads,
    card, float16, bandpower_weight, lejepa_weight, lejepa_lambda, view_channels,
    mixed_montages, max_channels, min_channels, channel_dropout, crop_s, precision,
    exclude_heldout, allow_heldout,
):  # fmt: skip
    """Pretrain (or continue pretraining) a model on unlabeled EEG in DATA.

    DATA are EEG files MNE can read, BIDS roots or folders of EEG files. The
    recordings are preprocessed once (cached in --cache-dir), cut into
    windows and used without labels. Writes OUT/checkpoint.pt during training
    (resumable with --resume), OUT/log.jsonl, and OUT/model.safetensors +
    OUT/model.json at every checkpoint and at the end. Recordings of the
    subjects held out for ``benchmarks/transfer.py``
    (``mne_eegfm.pretrain.heldout``) are refused unless --exclude-heldout or
    --allow-heldout is given. Launch with torchrun for several processes.
    """
    from .data import WindowDataset, cache_recordings, find_sources

    contract = InputContract(
        sfreq=sfreq, l_freq=l_freq, h_freq=h_freq, notch=notch, window_s=window_s
    )
    if threads is not None:
        torch.set_num_threads(threads)
    rank, _, torch_device = init_distributed(device)
    holdout = _read_subjects(holdout_subjects)
    if exclude_heldout and allow_heldout:
        raise click.UsageError("use --exclude-heldout or --allow-heldout, not both")
    heldout = "exclude" if exclude_heldout else "allow" if allow_heldout else "raise"
    try:
        sources = find_sources(data, holdout, heldout=heldout)
    except ValueError as err:
        raise click.UsageError(str(err)) from err
    out = _writable_folder(out)
    torch.manual_seed(seed)
    if init_from:
        model, initial = _initial(init_from, config, model_option)
    else:
        model, initial = _create(config, model_option), None
    crop = None
    if crop_s is not None:
        crop = int(round(crop_s * sfreq)) // model.patch_size * model.patch_size
    settings = PretrainObjective(
        objective,
        spectral=(1.0, 1.0) if spectral else None,
        bandpower_weight=bandpower_weight,
        lejepa_weight=lejepa_weight,
        lejepa_lambda=lejepa_lambda,
        view_channels=view_channels,
        sfreq=sfreq,
    )
    batches = {
        "mixed": mixed_montages,
        "max_channels": max_channels,
        "min_channels": min_channels,
        "channel_dropout": channel_dropout,
        "crop_samples": crop,
        "precision": precision,
    }
    run = {
        "contract": contract.to_dict(),
        "model_config": model.config,
        "init": initial,
        "objective": settings.to_dict(),
        "data": [_portable(p, out) for p in data],
        "holdout_subjects": holdout,
        "overlap": overlap,
        "hardware": _hardware(torch_device),
        "command": _command_line(out),
        "settings": {
            "steps": steps,
            "batch_size": batch_size,
            "lr": lr,
            "seed": seed,
            **batches,
        },
        "heldout": heldout,
    }
    if rank == 0:
        _check_run(out, run)
    cache = Path(cache_dir) if cache_dir else out / "cache"
    if rank != 0:
        barrier()
    try:
        recordings = cache_recordings(sources, contract, cache, overlap=overlap)
    except OSError as err:
        raise click.ClickException(f"{err}; nothing was trained.") from None
    if rank == 0:
        barrier()
    dataset = WindowDataset(recordings)
    click.echo(f"Pretraining on {json.dumps(dataset.summary())}", err=True)

    def export(summary):
        path = _export(model, out, contract, run, summary, dataset, card, float16)
        click.echo(f"Saved {path} ({summary['steps']} steps)", err=True)

    summary = run_pretraining(
        model, dataset, out, objective=settings, steps=steps, batch_size=batch_size,
        lr=lr, weight_decay=weight_decay, warmup_steps=warmup_steps,
        checkpoint_every=checkpoint_every, seed=seed, resume=resume, device=device,
        batches=batches, on_checkpoint=export,
    )  # fmt: skip
    if rank == 0:
        export(summary)
