"""``mne-eegfm fit``: train a classifier on a BIDS dataset after subject-wise CV."""

import json
import warnings
from pathlib import Path

import click

from ._common import (
    DEFAULT_MODEL,
    DISCLAIMER,
    check_writable,
    echo_cv,
    model_spec,
    precision_option,
    window_help,
)
from ._runner import log_level, warning_notes
from .embed import load_embedder


def _class_counts(loaded, kind):
    """Classes and their counts: recordings (participants) or windows (events)."""
    import numpy as np

    if kind == "participants":
        labels = [labs[0] for _, _, labs in loaded]
    else:
        labels = [lab for _, _, labs in loaded for lab in labs]
    return np.unique(labels, return_counts=True)


def _command_line(ctx):
    """The command line that reproduces this call, defaults included.

    Paths are shown by their last part (no machine path is written)."""
    import shlex

    parts = ["mne-eegfm", ctx.info_name]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if value is None or value is False or value == ():
            continue
        if isinstance(value, Path) or Path(str(value)).is_absolute():
            value = Path(value).name
        if isinstance(param, click.Argument):
            parts.append(str(value))
            continue
        opt = max(param.opts, key=len)
        if getattr(param, "is_flag", False):
            parts.append(opt)
        else:
            for item in value if param.multiple else [value]:
                parts += [opt, str(item)]
    return shlex.join(parts)


def _dataset_card(root):
    desc = json.loads((Path(root) / "dataset_description.json").read_text("utf-8"))
    return {
        "name": desc.get("Name", Path(root).name),
        "licence": desc.get("License", "unknown"),
        "references": desc.get("ReferencesAndLinks", []),
        "authors": desc.get("Authors", []),
    }


@click.command()
@click.argument("data", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--target",
    required=True,
    help="Labels: participants:COLUMN (one label per subject from "
    "participants.tsv, e.g. participants:group) or events (one label per "
    "window from the annotations/events of each recording).",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Model file to write (PATH.safetensors and PATH.json are created).",
)
@click.option("--model", help="Pretrained encoder (default: lumamba-tiny-gb).")
@click.option(
    "--mode",
    type=click.Choice(["linear-probe", "finetune"]),
    default="linear-probe",
    show_default=True,
)
@click.option(
    "--head",
    type=click.Choice(["query", "mamba", "linear"]),
    default="query",
    show_default=True,
)
@click.option(
    "--cv",
    "n_splits",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="Folds of subject-wise cross-validation before the final fit (0: none).",
)
@click.option("--max-epochs", type=click.IntRange(min=1), default=30, show_default=True)
@click.option(
    "--window",
    type=click.FloatRange(min=0, min_open=True),
    help=window_help(),
)
@click.option("--subject", multiple=True, help="BIDS subject(s) to use.")
@click.option("--session", multiple=True, help="BIDS session(s) to use.")
@click.option("--task", multiple=True, help="BIDS task(s) to use.")
@click.option(
    "--max-windows",
    type=click.IntRange(min=1),
    help="participants target: use at most this many windows per recording, "
    "spread evenly over it (faster; default: every window).",
)
@click.option("--random-state", type=int, default=0, show_default=True)
@click.option("--name", help="Model name in its card (default: the --out file stem).")
@click.option("--overwrite", is_flag=True, help="Replace an existing model file.")
@precision_option
def fit(**params):
    """Train a classifier on a BIDS dataset, after subject-wise cross-validation.

    \b
    Examples:
      mne-eegfm fit /data/gb-bids --target participants:group --out epilepsy.eegfm
      mne-eegfm predict new_recording.edf --model epilepsy.eegfm

    Every window of a recording gets its subject's label (participants:COLUMN)
    or the label of the annotation it lies in (events). Cross-validation splits
    by subject, never windows of one subject across train and test; its
    balanced accuracy and ROC AUC (per recording and per window) are printed
    and stored in the model card, then the model is fitted on all data.
    """
    from mne.utils import use_log_level

    with warnings.catch_warnings(record=True) as caught, use_log_level(log_level()):
        warnings.simplefilter("always")
        try:
            _fit(**params)
        finally:
            for note in warning_notes(caught):
                click.echo(f"warning: {note}", err=True)


def _fit(
    data,
    target,
    out,
    model,
    mode,
    head,
    n_splits,
    max_epochs,
    window,
    subject,
    session,
    task,
    max_windows,
    random_state,
    name,
    overwrite,
    precision,
):
    from .. import bids
    from ..estimators import EEGFMClassifier
    from ..estimators._models import card_dict
    from ..evaluation import cross_validate, load_labelled, parse_target

    try:
        kind, column = parse_target(target)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--target") from None
    stem = out.with_suffix("") if out.suffix in (".safetensors", ".json") else out
    existing = [p for p in (Path(f"{stem}.safetensors"), Path(f"{stem}.json"))]
    if any(p.exists() for p in existing) and not overwrite:
        raise click.ClickException(f"{existing[0]} exists; use --overwrite.")
    filters = {"subjects": subject, "sessions": session, "tasks": task}
    try:
        bids.validate_bids_root(data)  # before any output folder is created
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    check_writable(stem.parent)
    try:
        recordings = bids.find_recordings(data, **filters, verbose=False)
        if kind == "participants":
            bids.subject_labels(data, column)  # fail early on a wrong column
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    encoder, encoder_label = model_spec(model, DEFAULT_MODEL)
    base = EEGFMClassifier(
        model=encoder,
        mode=mode,
        head=head,
        window_s=window,
        on_missing="warn",
        max_epochs=max_epochs,
        random_state=random_state,
        precision=precision,
        verbose=False,
    )
    try:
        win = window or load_embedder(encoder)._get_model()[1].window_s
    except (OSError, ValueError) as err:
        raise click.ClickException(
            f"Could not load the encoder {encoder!r}: {err}"
        ) from None
    click.echo(f"Reading {len(recordings)} recording(s) from {data} ...", err=True)
    try:
        loaded, skipped = load_labelled(
            data, recordings, target, win, max_windows, show_progress=True
        )
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    for fname, why in skipped:
        click.echo(f"left out: {fname}: {why}", err=True)
    classes, counts = _class_counts(loaded, kind)
    subjects = sorted({sub for sub, _, _ in loaded})
    if len(classes) < 2:
        raise click.ClickException(
            f"Need at least 2 classes to train; found {classes.tolist()}."
        )
    unit = "recordings" if kind == "participants" else "windows"
    click.echo(
        f"{len(loaded)} recording(s) from {len(subjects)} subject(s); {unit} per "
        "class: " + ", ".join(f"{c} {n}" for c, n in zip(classes, counts))
    )
    cv_summary = None
    if n_splits:
        per_class = [
            len({sub for sub, _, labs in loaded if c in labs}) for c in classes
        ]
        if min(per_class) < n_splits:
            raise click.ClickException(
                f"--cv {n_splits} needs at least {n_splits} subjects per class "
                f"(smallest class has {min(per_class)}); lower --cv or use --cv 0."
            )
        cv_summary = cross_validate(
            base,
            loaded,
            n_splits,
            per_recording=kind == "participants",
            seed=random_state,
            log=lambda line: click.echo(line, err=True),
            show_progress=True,
        )
        echo_cv(cv_summary, n_splits, len(subjects))
    click.echo("\nFitting on all data ...", err=True)
    clf = base.fit(
        [item for _, item, _ in loaded], [lab for _, _, labs in loaded for lab in labs]
    )
    encoder_card = card_dict(clf.model_)
    encoder_card.pop("weights_file", None)  # a local path, set again when loading
    encoder_card.pop("labels", None)
    clf.model_.card = {
        "licence": encoder_card.get("licence"),
        "source": "mne-eegfm fit",
        "attribution": encoder_card.get("attribution"),
        "name": name or stem.name,
        "description": f"{' vs '.join(map(str, classes))} classifier "
        f"({mode}, {head} head) on the {encoder_card.get('name', encoder_label)} "
        "encoder. Research demonstration, not a diagnostic device.",
        "encoder": encoder_card.get("name", encoder_label),
        "training_data": {
            **_dataset_card(data),
            "target": target,
            "n_subjects": len(subjects),
            "n_recordings": len(loaded),
            f"{unit}_per_class": {str(c): int(n) for c, n in zip(classes, counts)},
            "windows_per_recording": max_windows or "all",
            "left_out": [f"{fname}: {why}" for fname, why in skipped],
        },
        "cross_validation": None
        if cv_summary is None
        else {"n_splits": n_splits, "split": "subject-wise", **cv_summary},
        "command": _command_line(click.get_current_context()),
        "disclaimer": DISCLAIMER,
        "encoder_card": encoder_card,
    }
    try:
        path = clf.save(stem)
    except OSError as err:
        raise click.ClickException(
            f"Could not save the classifier to {stem}: {err.strerror or err}"
        ) from None
    click.echo(f"\nSaved the classifier to {path} (+ {Path(path).stem}.json).")
    click.echo(f"Use it: mne-eegfm predict RECORDING --model {stem}")
    click.echo(DISCLAIMER)
