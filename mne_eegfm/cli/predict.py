"""``mne-eegfm predict``: per-window predictions and a summary per recording."""

import json
import sys
from functools import lru_cache
from pathlib import Path

import click

from .. import __version__
from . import _runner
from ._common import (
    DEFAULT_CLASSIFIER,
    DISCLAIMER,
    EXAMPLE_GROUP,
    echo_table,
    load_or_fail,
    recording_options,
)
from ._events import EVENTS_FILE, write_events_file

PRED_FILES = (("predictions", ".json"), ("predictions", ".tsv"), EVENTS_FILE)
REPORT_FILE = ("report", ".html")


@lru_cache(maxsize=4)
def load_classifier(spec, digest=None):
    """Load a classifier (cached per process and model-file digest)."""
    from ..estimators import EEGFMClassifier

    return EEGFMClassifier.load(spec, verbose=False)


def _columns_help(labels):
    cols = {
        "onset": {"Description": "Window start from the recording start", "Units": "s"},
        "duration": {"Description": "Window length", "Units": "s"},
        "label": {"Description": "Predicted class of the window"},
    }
    for label in labels:
        cols[f"proba_{label}"] = {
            "Description": f"Predicted probability of class {label!r}"
        }
    return cols


def _write_report(rec, raw, table, summary, clf, result):
    from ..report import write_report

    html = rec.output(*REPORT_FILE)
    write_report(
        html,
        raw,
        table,
        summary=summary,
        card=clf.model_.card,
        title=f"mne-eegfm: {Path(rec.source).name}",
        disclaimer=DISCLAIMER,
        verbose=False,
        attention=result.attention[0],
        ch_names=result.ch_names[0],
        positions=result.positions[0],
    )
    return html


def predict_one(rec, options):
    """Predict one recording and write its outputs (run in a worker)."""
    from ..api import predict
    from ..bids import write_text, write_tsv
    from ..io import file_fingerprint, read_recording

    fingerprint = file_fingerprint(rec.source)
    raw = read_recording(rec.source if rec.bids_path is None else rec.bids_path)
    clf = load_classifier(options["spec"], options["settings"]["weights_sha256"])
    result = predict(
        raw,
        clf,
        window_s=options["window"],
        overlap=options["overlap"],
        on_missing="warn",
        batch_size=clf.batch_size,
        precision=options["precision"],
        attention=options["report"],
    )
    table = result.to_dataframe().drop(columns="recording")
    summary = result.summary(0)
    summary["duration_s"] = round(raw.n_times / raw.info["sfreq"], 3)
    summary["out_of_distribution"] = result.ood[0]["text"]
    tsv = rec.output("predictions", ".tsv")
    write_tsv(tsv, table)
    files = {"predictions": rec.relative(tsv)}
    events = write_events_file(rec, result, raw, options, clf.model_.card)
    files["events"] = rec.relative(events)
    if options["report"]:
        html = _write_report(rec, raw, table, summary, clf, result)
        files["report"] = rec.relative(html)
    meta = {
        **_columns_help([str(c) for c in clf.classes_]),
        "Sources": [rec.name],
        "MneEegfm": {
            "status": _runner.COMPLETE,
            "version": __version__,
            "settings": options["settings"],
            "input": fingerprint,
            "model": options["settings"]["model"],
            "summary": summary,
            "out_of_distribution": result.ood[0],
            "files": files,
            "disclaimer": DISCLAIMER,
        },
    }
    write_text(
        rec.output("predictions", ".json"),
        json.dumps(meta, indent=2, ensure_ascii=False) + "\n",
    )
    return {"status": "ok", **summary, "files": files}


def _echo_model(card, label, labels, n_recordings):
    card = card if isinstance(card, dict) else card.to_dict()
    click.echo(
        f"mne-eegfm {__version__}: model {card.get('name', label)} "
        f"({' vs '.join(labels)}), {n_recordings} recording(s)"
    )
    cv = (card.get("cross_validation") or {}).get("recording")
    if cv:
        mean, std = cv["mean"], cv["std"]
        click.echo(
            f"  subject-wise {card['cross_validation']['n_splits']}-fold "
            f"cross-validation per recording (mean +/- sd over folds): balanced "
            f"accuracy {mean['balanced_accuracy']:.2f} +/- "
            f"{std['balanced_accuracy']:.2f}, ROC AUC {mean['roc_auc']:.2f} +/- "
            f"{std['roc_auc']:.2f} (n={cv['n']})"
        )
    click.echo("")


def _echo_predictions(results, labels):
    rows = []
    for res in results:
        ok = "label" in res
        rows.append(
            [
                res["name"],
                f"{res['duration_s'] / 60:.1f} min" if ok else "-",
                res.get("label", "-"),
                *(f"{res[f'proba_{lab}']:.2f}" if ok else "-" for lab in labels),
                f"{res['n_windows']} / {res['n_skipped']}" if ok else "-",
                res["status"],
            ]
        )
    header = ["recording", "length", "prediction", *(f"P({lab})" for lab in labels)]
    echo_table(header + ["windows used / skipped", "status"], rows)


def _labels_of(results):
    for res in results:
        labels = [k.removeprefix("proba_") for k in res if k.startswith("proba_")]
        if labels:
            return labels
    return []


def _finish(results, labels, in_sample):
    columns = ["source", "status", "label", *(f"proba_{lab}" for lab in labels)]
    columns += ["n_windows", "n_skipped", "duration_s", "out_of_distribution"]
    columns += ["error"]
    summaries = _runner.summary_files(results, "summary.tsv")
    errors = [
        _runner.write_summary(f, subset, columns) for f, subset in summaries.items()
    ]
    errors = [e for e in errors if e]
    _echo_predictions(results, labels)
    click.echo("")
    done = [r for r in results if "files" in r]
    for res in done[:3]:
        click.echo(
            f"Per-window predictions: {Path(res['root']) / res['files']['predictions']}"
        )
    if len(done) > 3:
        click.echo(f"... and {len(done) - 3} more *_desc-eegfm_predictions.tsv")
    for fname in summaries:
        click.echo(f"Summary (one row per recording): {fname}")
    reports = [
        Path(r["root"]) / r["files"]["report"] for r in done if "report" in r["files"]
    ]
    if reports:
        click.echo(f"Reports: {reports[0]}" + (" ..." if len(reports) > 1 else ""))
    if in_sample:
        click.echo(
            f"Note: the example subject is in the {EXAMPLE_GROUP} group of its "
            "dataset and is one of those the shipped classifier was trained on, "
            "so this prediction is in-sample and says nothing about accuracy; "
            "subject-wise cross-validated figures: "
            f"`mne-eegfm models --card {DEFAULT_CLASSIFIER}`."
        )
    click.echo(f"\n{DISCLAIMER}")
    sys.exit(_runner.report_failures(results, errors))


def _load(spec, digest=None):
    return load_or_fail(lambda s: load_classifier(s, digest), spec)


def _card_and_labels(plan, n_jobs):
    """The model card and class labels for the header.

    With worker processes, read from the model's JSON sidecar: this process
    then imports no torch and loads no model (the workers do). Otherwise, or
    without a sidecar, the model is loaded here (and reused for the work).
    """
    card = None
    if _runner.n_workers(n_jobs, len(plan.todo)) > 1:
        card = _runner.model_card(plan.spec)
    if card is None or not card.get("labels"):
        clf = _load(plan.spec, plan.options["settings"]["weights_sha256"])
        return clf.model_.card, [str(c) for c in clf.classes_]
    return card, [str(c) for c in card["labels"]]


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@recording_options
@click.option(
    "--report",
    is_flag=True,
    help="Also write an HTML report per recording (prediction timeline over the "
    "signal, topomaps of the channel-unification attention).",
)
@click.option(
    "--background",
    multiple=True,
    help="Class written as background (bckg) in the events file, e.g. Control.",
)
def predict(**params):
    """Predict every window of each recording, and a summary per recording.

    PATH is any EEG file MNE reads (EDF/EDF+, BDF, BrainVision .vhdr, EEGLAB
    .set, FIF, GDF, EGI .mff, Nihon Kohden .EEG, ...), a folder of such files,
    or the root of a BIDS dataset (every EEG recording is used; filter with
    --subject/--session/--task).

    \b
    Outputs per recording (BIDS input: in derivatives/mne-eegfm/ with names
    built from the source, e.g. sub-01_task-rest_desc-eegfm_predictions.tsv):
      *_desc-eegfm_predictions.tsv   one row per window: onset, duration,
                                     label, proba_<class>
      *_desc-eegfm_predictions.json  column descriptions and the summary
      *_desc-eegfm_events.tsv        szCORE events (+ .json): runs of windows
                                     of one class, spans not evaluated
      *_desc-eegfm_report.html       with --report
    and summary.tsv with one row per recording (mean probabilities, label,
    windows used and skipped), updated by later runs into the same folder.

    A recording that cannot be read is reported and the others continue; the
    exit status is 1 if any failed. Re-running skips recordings whose outputs
    are complete for the same model file, settings and input file (use
    --overwrite). Research demonstration, not a diagnostic device.
    """
    report = params["report"]
    files = PRED_FILES + ((REPORT_FILE,) if report else ())
    plan = _runner.plan(
        params,
        DEFAULT_CLASSIFIER,
        files,
        report=report,
        precision=params["precision"],
        background=params["background"],
    )
    if plan.todo:
        card, labels = _card_and_labels(plan, params["n_jobs"])
        _echo_model(card, plan.label, labels, len(plan.recordings))
    else:
        labels = _labels_of(plan.done.values())
        click.echo(f"mne-eegfm {__version__}: every recording is up to date.\n")
    results = _runner.run(predict_one, plan, params["n_jobs"], "predict")
    _finish(results, labels, params["example"] and plan.label == DEFAULT_CLASSIFIER)
