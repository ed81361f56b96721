"""The ``mne-eegfm`` command line: predict, embed, fit, models, sys-info.

Heavy modules (torch, MNE, pandas) are imported inside the commands so that
``mne-eegfm --help`` and ``import mne_eegfm.cli`` stay fast.
"""

import json
import os
import sys
import tempfile
import traceback
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import click

from . import __version__

DISCLAIMER = "Research demonstration, not a diagnostic device."
EXAMPLE_FILE = (
    Path(__file__).resolve().parent
    / "data"
    / "example"
    / "sub-024_task-restingstate_eeg.edf"
)
#: Extensions searched for when PATH is a folder that is not a BIDS root
#: (companion files such as .fdt, .eeg or .vmrk are read through their header).
READABLE_EXTENSIONS = (".edf", ".bdf", ".gdf", ".vhdr", ".set", ".fif", ".cnt", ".lay")
_COMPLETE = "complete"


class _LazyGroup(click.Group):
    """A group whose heavy subcommands are imported only when used."""

    lazy_commands = {
        "pretrain": (
            "mne_eegfm.pretrain.command",
            "Pretrain an encoder on unlabelled EEG (self-supervised).",
        )
    }

    def list_commands(self, ctx):
        return sorted(set(super().list_commands(ctx)) | set(self.lazy_commands))

    def get_command(self, ctx, cmd_name):
        if cmd_name in self.lazy_commands and cmd_name not in self.commands:
            from importlib import import_module

            module = import_module(self.lazy_commands[cmd_name][0])
            self.add_command(getattr(module, cmd_name.replace("-", "_")))
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx, formatter):
        # Short help of lazy commands without importing them (and torch).
        rows = []
        for name in self.list_commands(ctx):
            if name in self.commands:
                cmd = self.commands[name]
                if not cmd.hidden:
                    rows.append((name, cmd.get_short_help_str(150)))
            else:
                rows.append((name, self.lazy_commands[name][1]))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(
    cls=_LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 96},
)
@click.version_option(
    __version__,
    "-V",
    "--version",
    prog_name="mne-eegfm",
    message="%(prog)s %(version)s",
)
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="Show MNE's log messages (channels used, preprocessing steps).",
)
@click.pass_context
def main(ctx, verbose):
    """EEG foundation models (LuMamba) for MNE-Python, from the command line.

    \b
    Start here (runs on the example recording shipped in the package):
      mne-eegfm predict --example
    Your own recordings (any file MNE reads, or a BIDS dataset):
      mne-eegfm predict sub-01_eeg.edf --out results/
      mne-eegfm predict /data/my_bids --subject 01 --report
    Embeddings, training a classifier, available models:
      mne-eegfm embed /data/my_bids --out embeddings/
      mne-eegfm fit /data/my_bids --target participants:group --out my.eegfm
      mne-eegfm models --card lumamba-tiny-gb-epilepsy

    Research software: predictions are a research demonstration, not a
    diagnostic device.
    """
    ctx.obj = {"log_level": "INFO" if verbose else "WARNING"}


# ---------------------------------------------------------------------------
# Inputs


@dataclass(frozen=True)
class Recording:
    """One recording to process and where its outputs go.

    Parameters
    ----------
    source : str
        The file that is read.
    stem : str
        Output path without its ``_desc-eegfm_<suffix><ext>`` ending.
    bids_path : mne_bids.BIDSPath | None
        The BIDS path when the recording comes from a BIDS dataset.
    """

    source: str
    stem: str
    bids_path: object = None

    def output(self, suffix, extension):
        """Path of the output file with this suffix and extension."""
        return Path(f"{self.stem}_desc-eegfm_{suffix}{extension}")

    @property
    def name(self):
        """File name of the source."""
        return Path(self.source).name


def _file_base(path):
    """Output base name of a plain file: BIDS entities, or the stem."""
    name = Path(Path(path).name.removesuffix(".gz")).stem
    if name.startswith("sub-") and "_" in name:
        entities, _, suffix = name.rpartition("_")
        if suffix in ("eeg", "meg", "ieeg", "raw"):
            return entities
    return name


def _unique_bases(files):
    """Output base names for plain files, made unique where names collide."""
    bases = [_file_base(f) for f in files]
    counts = {b: bases.count(b) for b in bases}
    bases = [
        f"{b}_{Path(f).suffix.lstrip('.').lower()}" if counts[b] > 1 else b
        for b, f in zip(bases, files)
    ]
    seen = {}
    unique = []
    for base in bases:
        seen[base] = seen.get(base, 0) + 1
        unique.append(base if seen[base] == 1 else f"{base}_{seen[base]}")
    return unique


def _folder_files(folder):
    files = sorted(
        p
        for p in Path(folder).rglob("*")
        if p.is_file()
        and p.suffix.lower() in READABLE_EXTENSIONS
        and not p.name.startswith(".")
        and "derivatives" not in p.relative_to(folder).parts
    )
    if not files:
        raise click.ClickException(
            f"No EEG file found in the folder {folder} (looked for "
            f"{', '.join(READABLE_EXTENSIONS)}; a BIDS dataset needs a "
            "dataset_description.json at its root)."
        )
    return files


def _resolve_inputs(paths, out, filters):
    """Turn PATH arguments into recordings and derivative roots.

    Returns
    -------
    recordings : list of Recording
    bids_roots : dict
        Derivative root -> source BIDS root, for dataset_description.json.
    out_roots : list of Path
        Every output folder (checked for write access before any work).
    """
    from . import bids

    default_out = Path("mne-eegfm-results") if out is None else Path(out)
    roots = [Path(p) for p in paths if bids.is_bids_root(p)]
    recordings, bids_roots, plain = [], {}, []
    for path in map(Path, paths):
        if path in roots:
            if out is None:
                deriv = bids.derivatives_root(path)
            elif len(roots) > 1:
                deriv = Path(out) / path.resolve().name
            else:
                deriv = Path(out)
            try:
                found = bids.find_recordings(path, **filters, verbose=False)
            except ValueError as err:
                raise click.ClickException(str(err)) from None
            bids_roots[deriv] = path
            for bids_path in found:
                first = bids.derivative_path(bids_path, deriv, "x", ".x")
                stem = str(first).removesuffix("_desc-eegfm_x.x")
                recordings.append(Recording(str(bids_path.fpath), stem, bids_path))
        elif path.is_dir():
            plain.extend(_folder_files(path))
        else:
            plain.append(path)
    for path, base in zip(plain, _unique_bases(plain)):
        recordings.append(Recording(str(path), str(default_out / base)))
    out_roots = list(bids_roots) + ([default_out] if plain else [])
    return recordings, bids_roots, out_roots


def _check_writable(folder):
    """Create ``folder`` and check that files can be written in it."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".mne-eegfm-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        reason = err.strerror or str(err)
        raise click.ClickException(
            f"Cannot write to the output folder {folder}: {reason}. "
            "Choose a writable folder with --out."
        ) from None


# ---------------------------------------------------------------------------
# Running over recordings


def _describe(err):
    """One line saying why a recording failed."""
    message = str(err).strip().splitlines()
    message = message[0] if message else repr(err)
    return f"{type(err).__name__}: {message}"


def _run_all(task, recordings, options, n_jobs, desc):
    """Run ``task(recording, options)`` over recordings, with a progress bar."""
    from tqdm.auto import tqdm

    bar = dict(total=len(recordings), desc=desc, unit="rec", file=sys.stderr)
    bar["disable"] = None if len(recordings) > 1 else True
    if n_jobs == 1 or len(recordings) < 2:
        return [task(rec, options) for rec in tqdm(recordings, **bar)]
    from joblib import Parallel, delayed

    parallel = Parallel(n_jobs=n_jobs, backend="loky", return_as="generator_unordered")
    results = list(
        tqdm(parallel(delayed(task)(rec, options) for rec in recordings), **bar)
    )
    order = {rec.source: i for i, rec in enumerate(recordings)}
    return sorted(results, key=lambda r: order[r["source"]])


def _guarded(work, rec, options):
    """Run ``work``; turn an exception into a failed result naming the file."""
    from mne.utils import use_log_level

    caught = []
    try:
        with (
            warnings.catch_warnings(record=True) as caught,
            use_log_level(options["log_level"]),
        ):
            warnings.simplefilter("always")
            result = work(rec, options)
    except Exception as err:  # one bad recording must not stop the others
        if os.environ.get("MNE_EEGFM_DEBUG"):
            traceback.print_exc()
        return {"source": rec.source, "status": "failed", "error": _describe(err)}
    notes = _warning_notes(caught)
    if notes:
        result.setdefault("warnings", []).extend(notes)
    return {"source": rec.source, **result}


def _warning_notes(caught):
    notes = []
    for item in caught:
        text = (str(item.message).strip().splitlines() or [""])[0]
        if not text or issubclass(item.category, DeprecationWarning) or text in notes:
            continue
        notes.append(text)
    return notes


def _report_failures(results):
    """Print failed recordings to stderr; return the exit status."""
    failed = [r for r in results if r["status"] == "failed"]
    for res in results:
        for note in res.get("warnings", []):
            click.echo(f"warning: {Path(res['source']).name}: {note}", err=True)
    if not failed:
        return 0
    click.echo(f"\n{len(failed)} of {len(results)} recording(s) failed:", err=True)
    for res in failed:
        click.echo(f"  {res['source']}\n      {res['error']}", err=True)
    return 1


def _is_complete(rec, files, settings):
    """Whether a previous run wrote every output with the same settings."""
    sidecar = rec.output(*files[0])
    if not all(rec.output(*f).is_file() for f in files):
        return None
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    info = meta.get("MneEegfm", {})
    if info.get("status") != _COMPLETE or info.get("settings") != settings:
        return None
    return info


# ---------------------------------------------------------------------------
# Models and reading


@lru_cache(maxsize=4)
def _classifier(spec):
    """Load a classifier (cached per process)."""
    from .estimators import EEGFMClassifier

    return EEGFMClassifier.load(spec, verbose=False)


@lru_cache(maxsize=4)
def _encoder(spec):
    """Load an encoder (cached per process)."""
    from .checkpoints import load_model

    return load_model(spec, verbose=False)


def _weights_digest(net):
    """SHA-256 of the model's weights file: outputs of other weights are stale."""
    from .checkpoints import file_sha256

    weights = (getattr(net, "card", None) or {}).get("weights")
    return file_sha256(weights) if weights and Path(weights).is_file() else None


def _read(rec):
    """Read a recording (BIDS-aware), refusing EDF+D files."""
    if rec.bids_path is not None:
        from .bids import read_recording

        return read_recording(rec.bids_path, verbose=False)
    from .preprocessing import read_raw

    return read_raw(rec.source, verbose=False)


def _model_spec(model, default):
    """Registry name, or the absolute path of a model file."""
    if model is None:
        return default
    for suffix in ("", ".safetensors", ".json"):
        if Path(model + suffix).is_file():
            return str(Path(model).resolve())
    return model


# ---------------------------------------------------------------------------
# predict

_PRED_FILES = (("predictions", ".json"), ("predictions", ".tsv"))
_REPORT_FILE = ("report", ".html")


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


def _summary(table, labels, n_skipped, duration):
    probas = {f"proba_{lab}": float(table[f"proba_{lab}"].mean()) for lab in labels}
    best = max(labels, key=lambda lab: probas[f"proba_{lab}"])
    return {
        "label": best,
        **probas,
        "n_windows": int(len(table)),
        "n_skipped": int(n_skipped),
        "duration_s": round(float(duration), 3),
    }


def _contract(contract, window):
    from dataclasses import replace

    return contract if window is None else replace(contract, window_s=float(window))


def _stream(net, raw, contract, overlap, batch_size, compute):
    """Run ``compute(x, positions)`` over the windows of ``raw``, chunk by chunk.

    Returns the list of outputs (one array per batch), the window onsets, the
    number of windows skipped for BAD annotations, the window duration and the
    last chunk's Windows (channels and positions).
    """
    import numpy as np
    import torch

    from .preprocessing import iter_windows

    device = next(net.parameters()).device
    outputs, onsets, n_skipped, last = [], [], 0, None
    chunks = iter_windows(raw, contract, overlap=overlap, on_missing="warn")
    for win in chunks:
        n_skipped += win.n_skipped
        onsets.append(win.onsets)
        last = win
        pos = torch.as_tensor(win.positions, dtype=torch.float32, device=device)
        for start in range(0, len(win.data), batch_size):
            x = torch.as_tensor(win.data[start : start + batch_size], device=device)
            with torch.inference_mode():
                outputs.append(compute(x, pos))
    duration = last.data.shape[-1] / last.sfreq
    return outputs, np.concatenate(onsets), n_skipped, duration, last


def predict_recording(clf, raw, *, window=None, overlap=0.0, attention=False):
    """Predict every window of a recording in bounded memory.

    Parameters
    ----------
    clf : EEGFMClassifier
        A fitted classifier.
    raw : mne.io.Raw
        The recording (read chunk by chunk; never modified).
    window : float | None
        Window length in seconds (None: the model's).
    overlap : float
        Fraction of overlap between windows.
    attention : bool
        Also average the channel-unification attention over windows.

    Returns
    -------
    table : pandas.DataFrame
        One row per window: onset, duration, label, proba_<class>.
    n_skipped : int
        Windows left out for BAD annotations.
    extras : dict
        ``attention`` (n_queries, n_channels) or None, ``ch_names``,
        ``positions``.
    """
    import numpy as np
    import pandas as pd
    import torch
    from scipy.special import softmax

    net = clf.model_.eval()

    def compute(x, pos):
        logits = net(x, pos).double().cpu().numpy()
        att = net.channel_attention(x, pos).sum(0).double() if attention else None
        return logits, att

    outputs, onsets, n_skipped, duration, last = _stream(
        net, raw, _contract(clf.contract_, window), overlap, clf.batch_size, compute
    )
    n_classes = len(clf.classes_)
    logits = np.concatenate([o[0] for o in outputs] or [np.zeros((0, n_classes))])
    proba = softmax(logits, axis=1)
    if not np.isfinite(proba).all():
        raise ValueError("the model returned non-finite outputs for some windows")
    table = pd.DataFrame(
        {
            "onset": onsets,
            "duration": np.full(len(onsets), duration),
            "label": clf.classes_[np.argmax(proba, axis=1)] if len(proba) else [],
        }
    )
    for index, label in enumerate(clf.classes_):
        table[f"proba_{label}"] = proba[:, index]
    att = None
    if attention and outputs:
        att = (torch.stack([o[1] for o in outputs]).sum(0) / len(onsets)).numpy()
    extras = {"attention": att, "ch_names": last.ch_names, "positions": last.positions}
    return table, n_skipped, extras


def _predict_one(rec, options):
    files = _PRED_FILES + ((_REPORT_FILE,) if options["report"] else ())
    if not options["overwrite"]:
        done = _is_complete(rec, files, options["settings"])
        if done is not None:
            return {"status": "up to date", **done["summary"], "files": done["files"]}
    from .bids import write_text, write_tsv

    raw = _read(rec)
    clf = _classifier(options["model"])
    table, n_skipped, extras = predict_recording(
        clf,
        raw,
        window=options["window"],
        overlap=options["overlap"],
        attention=options["report"],
    )
    if table.empty:
        raise ValueError(
            f"no window left to predict: all {n_skipped} windows overlap BAD "
            "annotations"
        )
    labels = [str(c) for c in clf.classes_]
    summary = _summary(table, labels, n_skipped, raw.n_times / raw.info["sfreq"])
    tsv = rec.output("predictions", ".tsv")
    write_tsv(tsv, table)
    outputs = {"predictions": str(tsv)}
    card = clf.model_.card
    if options["report"]:
        from .report import write_report

        html = rec.output(*_REPORT_FILE)
        write_report(
            html,
            raw,
            table,
            summary=summary,
            card=card,
            title=f"mne-eegfm: {rec.name}",
            disclaimer=DISCLAIMER,
            verbose=False,
            **extras,
        )
        outputs["report"] = str(html)
    meta = {
        **_columns_help(labels),
        "Sources": [rec.source],
        "MneEegfm": {
            "status": _COMPLETE,
            "version": __version__,
            "settings": options["settings"],
            "model": card.get("name"),
            "summary": summary,
            "files": outputs,
            "disclaimer": DISCLAIMER,
        },
    }
    write_text(
        rec.output("predictions", ".json"),
        json.dumps(meta, indent=2, ensure_ascii=False) + "\n",
    )
    return {"status": "ok", **summary, "files": outputs}


def _echo_model(card, spec, labels, n_recordings):
    click.echo(
        f"mne-eegfm {__version__}: model {card.get('name', spec)} "
        f"({' vs '.join(labels)}), {n_recordings} recording(s)"
    )
    cv = (card.get("cross_validation") or {}).get("recording")
    if cv:
        click.echo(
            f"  subject-wise {card['cross_validation']['n_splits']}-fold "
            f"cross-validation per recording: balanced accuracy "
            f"{cv['pooled']['balanced_accuracy']:.2f}, ROC AUC "
            f"{cv['pooled']['roc_auc']:.2f} (n={cv['n']})"
        )
    click.echo("")


def _echo_predictions(results, labels):
    rows = [
        [
            Path(res["source"]).name,
            f"{res['duration_s'] / 60:.1f} min" if "label" in res else "-",
            res.get("label", "-"),
            *(
                f"{res[f'proba_{lab}']:.2f}" if "label" in res else "-"
                for lab in labels
            ),
            f"{res['n_windows']} / {res['n_skipped']}" if "label" in res else "-",
            res["status"],
        ]
        for res in results
    ]
    header = ["recording", "length", "prediction", *(f"P({lab})" for lab in labels)]
    header += ["windows used / skipped", "status"]
    _echo_table(header, rows)


def _echo_table(header, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    for row in [header, *rows]:
        click.echo("  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip())


def _write_summary(fname, results, columns):
    import pandas as pd

    from .bids import write_tsv

    rows = [{c: res.get(c, "n/a") for c in columns} for res in results]
    write_tsv(fname, pd.DataFrame(rows, columns=columns))


def _check_n_jobs(ctx, param, value):
    if value == 0:
        raise click.BadParameter("use a positive number or -1 (all cores)")
    return value


def _common_options(func):
    """Options shared by predict and embed."""
    options = [
        click.option(
            "--out",
            type=click.Path(file_okay=False, path_type=Path),
            help="Output folder. Default: <BIDS root>/derivatives/mne-eegfm for a "
            "BIDS dataset, ./mne-eegfm-results for files.",
        ),
        click.option(
            "--model",
            help="Registered model name (see `mne-eegfm models`) or a model file.",
        ),
        click.option("--subject", multiple=True, help="BIDS subject(s) to keep."),
        click.option("--session", multiple=True, help="BIDS session(s) to keep."),
        click.option("--task", multiple=True, help="BIDS task(s) to keep."),
        click.option(
            "--window",
            type=click.FloatRange(min=0, min_open=True),
            help="Window length in seconds (default: the model's, 5 s).",
        ),
        click.option(
            "--overlap",
            type=click.FloatRange(0, 1, max_open=True),
            default=0.0,
            show_default=True,
            help="Fraction of overlap between consecutive windows.",
        ),
        click.option(
            "--n-jobs",
            type=int,
            default=1,
            callback=_check_n_jobs,
            show_default=True,
            help="Recordings processed in parallel (processes; -1 = all cores).",
        ),
        click.option(
            "--overwrite",
            is_flag=True,
            help="Recompute recordings whose outputs are already complete.",
        ),
        click.option(
            "--example",
            is_flag=True,
            help="Add the example recording shipped with mne-eegfm.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _collect(paths, example, out, subject, session, task):
    paths = list(paths) + ([str(EXAMPLE_FILE)] if example else [])
    if not paths:
        raise click.UsageError("Give at least one PATH (or --example).")
    filters = {"subjects": subject, "sessions": session, "tasks": task}
    recordings, bids_roots, out_roots = _resolve_inputs(paths, out, filters)
    for folder in out_roots:
        _check_writable(folder)
    return recordings, bids_roots


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@_common_options
@click.option(
    "--report",
    is_flag=True,
    help="Also write an HTML report per recording (prediction timeline over the "
    "signal, topomaps of the channel-unification attention).",
)
def predict(
    paths,
    out,
    model,
    subject,
    session,
    task,
    window,
    overlap,
    n_jobs,
    overwrite,
    example,
    report,
):
    """Predict every window of each recording, and a summary per recording.

    PATH is any EEG file MNE reads (EDF/EDF+, BDF, BrainVision .vhdr, EEGLAB
    .set, FIF, GDF, ...), a folder of such files, or the root of a BIDS dataset
    (every EEG recording is used; filter with --subject/--session/--task).

    \b
    Outputs per recording (BIDS input: in derivatives/mne-eegfm/ with names
    built from the source, e.g. sub-01_task-rest_desc-eegfm_predictions.tsv):
      *_desc-eegfm_predictions.tsv   one row per window: onset, duration,
                                     label, proba_<class>
      *_desc-eegfm_predictions.json  column descriptions and the summary
      *_desc-eegfm_report.html       with --report
    and summary.tsv with one row per recording (mean probabilities, label,
    windows used and skipped).

    A recording that cannot be read is reported and the others continue; the
    exit status is 1 if any failed. Re-running skips recordings whose outputs
    are complete (use --overwrite). Research demonstration, not a diagnostic
    device.
    """
    from .checkpoints import DEFAULT_CLASSIFIER

    recordings, bids_roots = _collect(paths, example, out, subject, session, task)
    spec = _model_spec(model, DEFAULT_CLASSIFIER)
    try:
        clf = _classifier(spec)
    except (OSError, ValueError) as err:
        raise click.ClickException(
            f"Could not load the model {spec!r}: {err}"
        ) from None
    labels = [str(c) for c in clf.classes_]
    from .bids import write_dataset_description

    for deriv, root in bids_roots.items():
        write_dataset_description(deriv, root)
    settings = {
        "model": spec,
        "weights_sha256": _weights_digest(clf.model_),
        "window": window,
        "overlap": overlap,
    }
    options = {
        "model": spec,
        "window": window,
        "overlap": overlap,
        "report": report,
        "overwrite": overwrite,
        "settings": settings,
        "log_level": click.get_current_context().obj["log_level"],
    }
    _echo_model(clf.model_.card, spec, labels, len(recordings))
    results = _run_all(_guarded_predict, recordings, options, n_jobs, "predict")
    in_sample = example and clf.model_.card.get("name") == DEFAULT_CLASSIFIER
    _finish_predict(results, recordings, labels, bids_roots, in_sample)


def _guarded_predict(rec, options):
    return _guarded(_predict_one, rec, options)


def _finish_predict(results, recordings, labels, bids_roots, in_sample):
    columns = ["source", "status", "label", *(f"proba_{lab}" for lab in labels)]
    columns += ["n_windows", "n_skipped", "duration_s", "error"]
    summaries = _summary_files(recordings, bids_roots, "summary.tsv")
    for fname, subset in summaries.items():
        _write_summary(fname, [r for r in results if r["source"] in subset], columns)
    _echo_predictions(results, labels)
    click.echo("")
    done = [r for r in results if "files" in r]
    for res in done[:3]:
        click.echo(f"Per-window predictions: {res['files']['predictions']}")
    if len(done) > 3:
        click.echo(f"... and {len(done) - 3} more *_desc-eegfm_predictions.tsv")
    for fname in summaries:
        click.echo(f"Summary (one row per recording): {fname}")
    reports = [r["files"]["report"] for r in done if "report" in r["files"]]
    if reports:
        click.echo(f"Reports: {reports[0]}" + (" ..." if len(reports) > 1 else ""))
    if in_sample:
        click.echo(
            "Note: the example subject is one of those the shipped classifier was "
            "trained on (an in-sample result); cross-validated metrics: "
            "`mne-eegfm models --card lumamba-tiny-gb-epilepsy`."
        )
    click.echo(f"\n{DISCLAIMER}")
    status = _report_failures(results)
    sys.exit(status)


def _summary_files(recordings, bids_roots, name):
    """Path of the ``name`` table in each output root -> sources it lists."""
    files = {}
    for rec in recordings:
        root = None
        for deriv in bids_roots:
            if Path(rec.stem).is_relative_to(deriv):
                root = deriv
        if root is None:
            root = Path(rec.stem).parent
        files.setdefault(Path(root) / name, set()).add(rec.source)
    return files


# ---------------------------------------------------------------------------
# embed

_EMB_FILE = ("embeddings", ".npz")


def embed_recording(net, raw, *, window=None, overlap=0.0, batch_size=32):
    """Embed every window of a recording in bounded memory.

    Parameters
    ----------
    net : torch.nn.Module
        An encoder from :func:`mne_eegfm.load_model` (with ``.contract``).
    raw : mne.io.Raw
        The recording (read chunk by chunk; never modified).
    window : float | None
        Window length in seconds (None: the model's).
    overlap : float
        Fraction of overlap between windows.
    batch_size : int
        Windows per forward pass.

    Returns
    -------
    embeddings : ndarray of float32, shape (n_windows, D)
        One embedding per window (mean over patches).
    onsets : ndarray, shape (n_windows,)
        Window starts in seconds.
    n_skipped : int
        Windows left out for BAD annotations.
    duration : float
        Window length in seconds.
    ch_names : list of str
        Channels used.
    """
    import numpy as np

    def compute(x, pos):
        return net.embed(x, pos).float().cpu().numpy()

    outputs, onsets, n_skipped, duration, last = _stream(
        net.eval(), raw, _contract(net.contract, window), overlap, batch_size, compute
    )
    emb = np.concatenate(outputs) if outputs else np.zeros((0, net.embed_dim))
    return emb.astype(np.float32), onsets, n_skipped, duration, last.ch_names


def _embedding_done(npz, settings):
    import numpy as np

    if not npz.is_file():
        return None
    try:
        with np.load(npz, allow_pickle=False) as data:
            if str(data["settings"]) != json.dumps(settings, sort_keys=True):
                return None
            return {
                "n_windows": int(len(data["onsets"])),
                "n_skipped": int(data["n_skipped"]),
                "pooled": data["pooled"],
            }
    except (OSError, ValueError, KeyError):
        return None


def _embed_one(rec, options):
    import numpy as np

    from .utils import atomic_path

    npz = rec.output(*_EMB_FILE)
    files = {"embeddings": str(npz)}
    settings = options["settings"]
    if not options["overwrite"]:
        done = _embedding_done(npz, settings)
        if done is not None:
            return {"status": "up to date", **done, "files": files}
    raw = _read(rec)
    net = _encoder(options["model"])
    emb, onsets, n_skipped, duration, ch_names = embed_recording(
        net, raw, window=options["window"], overlap=options["overlap"]
    )
    if len(emb) == 0:
        raise ValueError(
            f"no window left to embed: all {n_skipped} windows overlap BAD annotations"
        )
    if not np.isfinite(emb).all():
        raise ValueError("the model returned non-finite embeddings")
    pooled = emb.mean(axis=0)
    with atomic_path(npz) as tmp:
        np.savez(
            tmp,
            embeddings=emb,
            pooled=pooled,
            onsets=onsets,
            durations=np.full(len(onsets), duration),
            n_skipped=np.array(n_skipped),
            source=np.array(rec.source),
            ch_names=np.array(ch_names),
            model=np.array(str(net.card.get("name", options["model"]))),
            settings=np.array(json.dumps(settings, sort_keys=True)),
        )
    return {
        "status": "ok",
        "n_windows": len(emb),
        "n_skipped": n_skipped,
        "pooled": pooled,
        "files": files,
    }


def _guarded_embed(rec, options):
    return _guarded(_embed_one, rec, options)


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@_common_options
def embed(
    paths,
    out,
    model,
    subject,
    session,
    task,
    window,
    overlap,
    n_jobs,
    overwrite,
    example,
):
    """Embed each window of each recording with a pretrained encoder.

    PATH is as for `mne-eegfm predict` (files, folders, BIDS roots). The default
    encoder is the shipped lumamba-tiny-gb.

    \b
    Outputs per recording (*_desc-eegfm_embeddings.npz, read with
    numpy.load(..., allow_pickle=False)):
      embeddings (n_windows, D) float32, pooled (D,) mean over windows,
      onsets and durations (s), n_skipped, source, ch_names, model, settings.
    and embeddings.tsv (pandas.read_csv(..., sep="\\t")) with one row per
    recording: source, file, windows, and the pooled embedding (emb_0...).
    """
    import numpy as np

    from .checkpoints import DEFAULT_MODEL

    recordings, bids_roots = _collect(paths, example, out, subject, session, task)
    spec = _model_spec(model, DEFAULT_MODEL)
    try:
        net = _encoder(spec)
    except (OSError, ValueError) as err:
        raise click.ClickException(
            f"Could not load the model {spec!r}: {err}"
        ) from None
    from .bids import write_dataset_description

    for deriv, root in bids_roots.items():
        write_dataset_description(deriv, root)
    settings = {
        "model": spec,
        "weights_sha256": _weights_digest(net),
        "window": window,
        "overlap": overlap,
    }
    options = {
        "model": spec,
        "window": window,
        "overlap": overlap,
        "overwrite": overwrite,
        "settings": settings,
        "log_level": click.get_current_context().obj["log_level"],
    }
    click.echo(
        f"mne-eegfm {__version__}: embedding {len(recordings)} recording(s) with "
        f"{net.card.get('name', spec)} ({net.embed_dim}-d)",
        err=True,
    )
    results = _run_all(_guarded_embed, recordings, options, n_jobs, "embed")
    dim = net.embed_dim
    for res in results:
        pooled = res.pop("pooled", None)
        for i in range(dim):
            res[f"emb_{i}"] = float(pooled[i]) if pooled is not None else np.nan
        if "files" in res:
            res["file"] = res["files"]["embeddings"]
    columns = ["source", "status", "file", "n_windows", "n_skipped", "error"]
    columns += [f"emb_{i}" for i in range(dim)]
    rows = [
        [
            Path(r["source"]).name,
            r["status"],
            r.get("n_windows", "-"),
            r.get("n_skipped", "-"),
        ]
        for r in results
    ]
    _echo_table(["recording", "status", "windows", "skipped"], rows)
    for fname, subset in _summary_files(
        recordings, bids_roots, "embeddings.tsv"
    ).items():
        _write_summary(fname, [r for r in results if r["source"] in subset], columns)
        click.echo(f"Index (one row per recording, pooled embedding): {fname}")
    sys.exit(_report_failures(results))


# ---------------------------------------------------------------------------
# fit


def _parse_target(target):
    kind, _, column = target.partition(":")
    if kind == "participants" and column:
        return kind, column
    if kind == "events" and not column:
        return kind, None
    raise click.BadParameter(
        f"expected participants:COLUMN or events, got {target!r}", param_hint="--target"
    )


def _epochs_at(raw, starts, n):
    """Epochs of ``n`` samples starting at the given samples (preloaded)."""
    import mne
    import numpy as np

    starts = np.asarray(starts, int) + raw.first_samp
    events = np.column_stack([starts, np.zeros_like(starts), np.ones_like(starts)])
    return mne.Epochs(
        raw,
        events,
        tmin=0.0,
        tmax=(n - 1) / raw.info["sfreq"],
        baseline=None,
        preload=True,
        reject_by_annotation=True,
        event_repeated="drop",
        verbose=False,
    )


def _window_samples(raw, window):
    return int(round(window * raw.info["sfreq"]))


def _annotation_epochs(raw, window):
    """Epochs of ``window`` seconds tiling each non-BAD annotation, and labels."""
    sfreq = raw.info["sfreq"]
    n = _window_samples(raw, window)
    starts, labels = [], []
    for annot in raw.annotations:
        if annot["description"].upper().startswith(("BAD", "EDGE")):
            continue
        onset = annot["onset"] - raw.first_time
        for k in range(max(1, int(annot["duration"] // window))):
            start = int(round((onset + k * window) * sfreq))
            if 0 <= start and start + n <= raw.n_times:
                starts.append(start)
                labels.append(annot["description"])
    if not starts:
        return None, []
    epochs = _epochs_at(raw, starts, n)
    return epochs, [labels[i] for i in epochs.selection]


def _spread_epochs(raw, window, max_windows, label):
    """Up to ``max_windows`` windows spread evenly over the recording."""
    import numpy as np

    n = _window_samples(raw, window)
    if raw.n_times < n:
        return None, []
    count = min(max_windows, (raw.n_times - n) // n + 1)
    starts = np.linspace(0, raw.n_times - n, count).round().astype(int)
    epochs = _epochs_at(raw, starts, n)
    return epochs, [label] * len(epochs)


def _load_training_data(root, recordings, kind, column, window, max_windows):
    """Read recordings and their labels; report those left out.

    Returns a list of (subject, Raw or Epochs, labels): one label per Raw, or
    one per epoch.
    """
    from . import bids

    labels = bids.subject_labels(root, column) if kind == "participants" else None
    data, skipped = [], []
    for bids_path in recordings:
        name = Path(bids_path.fpath).name
        if labels is not None and bids_path.subject not in labels:
            skipped.append((name, f"no {column} in participants.tsv"))
            continue
        try:
            raw = bids.read_recording(bids_path, verbose=False)
            if labels is None:
                item, y = _annotation_epochs(raw, window)
            elif max_windows is None:
                item, y = raw, [labels[bids_path.subject]]
            else:
                label = labels[bids_path.subject]
                item, y = _spread_epochs(raw, window, max_windows, label)
        except Exception as err:  # reported, the others continue
            skipped.append((name, _describe(err)))
            continue
        if item is None or not y:
            skipped.append((name, "no window to train on"))
            continue
        data.append((bids_path.subject, item, y))
    return data, skipped


def _window_truth(table, items):
    """Index (into items) of the recording and true label of each window."""
    import numpy as np
    from mne import BaseEpochs

    owner = table["recording"].to_numpy()
    if isinstance(items[0][1], BaseEpochs):  # one label per epoch, in order
        labels = np.concatenate([y for _, _, y in items])
        if len(labels) != len(table):
            raise RuntimeError(
                f"{len(table)} predictions for {len(labels)} labelled epochs"
            )
        return owner, labels
    return owner, np.array([items[i][2][0] for i in owner])


def _cv_metrics(y_true, proba, classes):
    import numpy as np
    from sklearn.metrics import balanced_accuracy_score, roc_auc_score

    y_pred = classes[np.argmax(proba, axis=1)]
    out = {"balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred))}
    try:
        if len(classes) == 2:
            out["roc_auc"] = float(roc_auc_score(y_true == classes[1], proba[:, 1]))
        else:
            out["roc_auc"] = float(
                roc_auc_score(y_true, proba, multi_class="ovr", labels=classes)
            )
    except ValueError:  # one class only in this fold
        out["roc_auc"] = float("nan")
    return out


def _cross_validate(base, data, kind, n_splits, seed):
    """Subject-wise CV; returns per-fold and pooled out-of-fold metrics."""
    import numpy as np
    import pandas as pd
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedGroupKFold

    units = [(i, lab) for i, (_, _, labels) in enumerate(data) for lab in labels]
    rec_of = np.array([i for i, _ in units])
    y_units = np.array([lab for _, lab in units])
    groups = np.array([data[i][0] for i in rec_of])
    classes = np.unique(y_units)
    cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    levels = ["recording", "window"] if kind == "participants" else ["window"]
    folds = {level: [] for level in levels}
    pooled = {level: ([], []) for level in levels}
    split = cv.split(np.zeros(len(units)), y_units, groups)
    for fold, (train, test) in enumerate(split, start=1):
        train_recs = sorted(set(rec_of[train]))
        test_recs = sorted(set(rec_of[test]))
        est = clone(base).fit(
            [data[i][1] for i in train_recs],
            [lab for i in train_recs for lab in data[i][2]],
        )
        items = [data[i] for i in test_recs]
        table = est.predict_windows([item for _, item, _ in items])
        cols = [f"proba_{c}" for c in est.classes_]
        owner, y_win = _window_truth(table, items)
        results = {"window": (y_win, table[cols].to_numpy())}
        if kind == "participants":
            per_rec = table[cols].groupby(owner).mean()
            y_rec = np.array([items[i][2][0] for i in per_rec.index])
            results["recording"] = (y_rec, per_rec.to_numpy())
        for level, (y_true, p) in results.items():
            folds[level].append(_cv_metrics(y_true, p, est.classes_))
            pooled[level][0].append(y_true)
            pooled[level][1].append(p)
        click.echo(
            f"  fold {fold}/{n_splits}: "
            + ", ".join(
                f"{level} BA {folds[level][-1]['balanced_accuracy']:.3f} "
                f"AUC {folds[level][-1]['roc_auc']:.3f}"
                for level in levels
            ),
            err=True,
        )
    summary = {}
    for level in levels:
        frame = pd.DataFrame(folds[level])
        y_all = np.concatenate(pooled[level][0])
        p_all = np.concatenate(pooled[level][1])
        summary[level] = {
            "mean": frame.mean().round(4).to_dict(),
            "std": frame.std(ddof=0).round(4).to_dict(),
            "pooled": {
                k: round(v, 4) for k, v in _cv_metrics(y_all, p_all, classes).items()
            },
            "n": int(len(y_all)),
        }
    return summary


def _echo_cv(summary, n_splits, n_subjects):
    who = f"{n_subjects} subjects; " if n_subjects else ""
    click.echo(
        f"\nSubject-wise {n_splits}-fold cross-validation ({who}mean ± sd over "
        "folds, and pooled out-of-fold):"
    )
    rows = []
    for level in ("recording", "window"):
        if level in summary:
            rows.append(
                _cv_row(level, "balanced accuracy", "balanced_accuracy", summary)
            )
            rows.append(_cv_row(level, "ROC AUC", "roc_auc", summary))
    _echo_table(["level", "metric", "mean ± sd", "pooled", "n"], rows)


def _cv_row(level, name, metric, summary):
    res = summary[level]
    return [
        f"per {level}",
        name,
        f"{res['mean'][metric]:.3f} ± {res['std'][metric]:.3f}",
        f"{res['pooled'][metric]:.3f}",
        res["n"],
    ]


def _class_counts(loaded, kind):
    """Classes and their counts: recordings (participants) or windows (events)."""
    import numpy as np

    if kind == "participants":
        labels = [labs[0] for _, _, labs in loaded]
    else:
        labels = [lab for _, _, labs in loaded for lab in labs]
    return np.unique(labels, return_counts=True)


def _command_line(ctx):
    """The command line that reproduces this call, defaults included."""
    import shlex

    parts = ["mne-eegfm", ctx.info_name]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if value is None or value is False or value == ():
            continue
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


@main.command()
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
    help="Window length in seconds (default: the model's, 5 s).",
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

    level = click.get_current_context().obj["log_level"]
    with warnings.catch_warnings(record=True) as caught, use_log_level(level):
        warnings.simplefilter("always")
        try:
            _fit(**params)
        finally:
            for note in _warning_notes(caught):
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
):
    from . import bids
    from .estimators import EEGFMClassifier

    kind, column = _parse_target(target)
    stem = out.with_suffix("") if out.suffix in (".safetensors", ".json") else out
    existing = [p for p in (Path(f"{stem}.safetensors"), Path(f"{stem}.json"))]
    if any(p.exists() for p in existing) and not overwrite:
        raise click.ClickException(f"{existing[0]} exists; use --overwrite.")
    _check_writable(stem.parent)
    filters = {"subjects": subject, "sessions": session, "tasks": task}
    try:
        recordings = bids.find_recordings(data, **filters, verbose=False)
        if kind == "participants":
            bids.subject_labels(data, column)  # fail early on a wrong column
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    encoder = _model_spec(model, "lumamba-tiny-gb")
    base = EEGFMClassifier(
        model=encoder,
        mode=mode,
        head=head,
        window_s=window,
        on_missing="warn",
        max_epochs=max_epochs,
        random_state=random_state,
        verbose=False,
    )
    try:
        win = window or _encoder(encoder).contract.window_s
    except (OSError, ValueError) as err:
        raise click.ClickException(
            f"Could not load the encoder {encoder!r}: {err}"
        ) from None
    click.echo(f"Reading {len(recordings)} recording(s) from {data} ...", err=True)
    try:
        loaded, skipped = _load_training_data(
            data, recordings, kind, column, win, max_windows
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
        cv_summary = _cross_validate(base, loaded, kind, n_splits, random_state)
        _echo_cv(cv_summary, n_splits, len(subjects))
    click.echo("\nFitting on all data ...", err=True)
    clf = base.fit(
        [item for _, item, _ in loaded], [lab for _, _, labs in loaded for lab in labs]
    )
    encoder_card = dict(getattr(clf.model_, "card", None) or {})
    encoder_card.pop("weights", None)  # a local path, set again when loading
    encoder_card.pop("labels", None)
    clf.model_.card = {
        "licence": encoder_card.get("licence"),
        "source": "mne-eegfm fit",
        "attribution": encoder_card.get("attribution"),
        "name": name or stem.name,
        "description": f"{' vs '.join(map(str, classes))} classifier "
        f"({mode}, {head} head) on the {encoder_card.get('name', encoder)} "
        "encoder. Research demonstration, not a diagnostic device.",
        "encoder": encoder_card.get("name", encoder),
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
    path = clf.save(stem)
    click.echo(f"\nSaved the classifier to {path} (+ {Path(path).stem}.json).")
    click.echo(f"Use it: mne-eegfm predict RECORDING --model {stem}")
    click.echo(DISCLAIMER)


# ---------------------------------------------------------------------------
# models, sys-info


def _fmt_params(n):
    return f"{n / 1e6:.1f}M"


def _contract_text(contract):
    band = f"{contract.get('l_freq')}-{contract.get('h_freq')} Hz"
    notch = contract.get("notch")
    return (
        f"{contract.get('sfreq'):g} Hz, band-pass {band}"
        + (f", notch {notch} Hz" if notch else "")
        + f", {contract.get('window_s'):g}-s windows, {contract.get('units')}, "
        f"{contract.get('montage')}"
    )


@main.command()
@click.option(
    "--card",
    "card_name",
    metavar="NAME_OR_FILE",
    help="Print the model card of one model (registered name or model file).",
)
def models(card_name):
    """List the available models: size, input contract, labels, licence.

    Models marked "yes" under "here" have their weights on this machine;
    the others need the published file (see the card for where to get it).
    """
    from .checkpoints import DEFAULT_CLASSIFIER, DEFAULT_MODEL, list_models

    if card_name is not None:
        _echo_card(card_name)
        return
    entries = list_models()
    rows = [
        [
            e["name"],
            e["arch"],
            _fmt_params(e["params"]),
            "/".join(e["labels"]) if e["labels"] else "(encoder)",
            "yes" if e["available"] else "no",
            e["licence"],
        ]
        for e in entries
    ]
    _echo_table(["name", "arch", "params", "labels", "here", "licence"], rows)
    click.echo("")
    contracts = {_contract_text(e["contract"]) for e in entries}
    for text in sorted(contracts):
        users = [e["name"] for e in entries if _contract_text(e["contract"]) == text]
        click.echo(f"Input contract {text}:\n  {', '.join(users)}")
    click.echo(
        f"\nDefaults: predict uses {DEFAULT_CLASSIFIER}, embed uses {DEFAULT_MODEL}. "
        "Details: mne-eegfm models --card NAME"
    )


def _card_of(name):
    """Model card dict of a registered name or a model file."""
    from .checkpoints import REGISTRY, list_models

    if name not in REGISTRY:
        for suffix in ("", ".json", ".safetensors"):
            if Path(name + suffix).is_file():
                return _file_card(Path(name + suffix))
    entry = next((e for e in list_models() if e["name"] == name), None)
    if entry is None:
        raise click.ClickException(
            f"Unknown model {name!r}; see `mne-eegfm models` for the names."
        )
    card = {**entry, **_registry_card(name)}
    if entry["available"] and REGISTRY[name].hub_repo is None:
        from .checkpoints import DATA_DIR

        sidecar = (DATA_DIR / REGISTRY[name].filename).with_suffix(".json")
        if sidecar.is_file():
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
            card.update(meta.get("card") or {})
    return card


def _registry_card(name):
    from .checkpoints import REGISTRY

    entry = REGISTRY[name]
    return {"description": entry.description, "attribution": entry.attribution}


def _file_card(path):
    """Card stored in the JSON sidecar of a model file."""
    sidecar = path if path.suffix == ".json" else path.with_suffix(".json")
    try:
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise click.ClickException(
            f"Cannot read the model card {sidecar}: {err}"
        ) from None
    card = dict(meta.get("card") or {})
    card.setdefault("contract", meta.get("contract"))
    card.setdefault("name", path.stem)
    return card


_CARD_SKIP = ("name", "history", "weights")


def _echo_card(name):
    card = _card_of(name)
    title = str(card.get("name", name))
    click.echo(f"{title}\n{'=' * len(title)}")
    for key, value in card.items():
        if key in _CARD_SKIP or value in (None, "", [], {}):
            continue
        if key == "contract" and isinstance(value, dict):
            value = _contract_text(value)
        elif key == "params":
            value = f"{value:,}"
        elif key == "cross_validation":
            _echo_cv(value, value["n_splits"], None)
            continue
        _echo_value(key, value, 0)


def _echo_value(key, value, depth):
    pad = "  " * depth
    if isinstance(value, dict):
        click.echo(f"{pad}{key}:")
        for sub, item in value.items():
            _echo_value(sub, item, depth + 1)
    elif isinstance(value, list | tuple):
        click.echo(f"{pad}{key}: {', '.join(map(str, value))}")
    else:
        click.echo(f"{pad}{key}: {value}")


@main.command("sys-info")
def sys_info():
    """Print versions, compute device and whether mamba-ssm kernels are used."""
    from .utils import sys_info as _sys_info

    _sys_info()


if __name__ == "__main__":  # pragma: no cover
    main()
