"""Running a command over recordings: resume, parallel jobs, failures, summaries.

A recording is "up to date" when its JSON sidecar says it was completed with
the same settings (model name, SHA-256 of the model file, window, overlap) and
its input still has the same size, modification time and SHA-256. This is
decided before torch is imported or a model loaded, so re-running over finished
outputs is fast. Recordings left to compute run in up to ``--n-jobs`` processes,
never more than the recordings or the cores; one failing recording is reported
and the others continue.
"""

import csv
import json
import math
import os
import sys
import traceback
import warnings
from dataclasses import dataclass
from io import StringIO
from pathlib import Path

import click

from ._common import collect, model_spec

COMPLETE = "complete"


def log_level():
    """MNE log level chosen with ``mne-eegfm -v``."""
    ctx = click.get_current_context(silent=True)
    return (ctx.obj or {}).get("log_level", "WARNING") if ctx else "WARNING"


def n_workers(n_jobs, n_tasks):
    """Processes to use: ``n_jobs`` (-1: all cores) capped by tasks and cores."""
    cores = os.cpu_count() or 1
    wanted = cores if n_jobs < 0 else n_jobs
    return max(1, min(wanted, n_tasks, cores))


def model_files(spec):
    """The files of a model found without loading it (a path or a shipped file)."""
    from ._common import _DATA

    for stem in (Path(spec), _DATA / spec):
        if stem.suffix in (".safetensors", ".json"):
            stem = stem.with_suffix("")
        files = [Path(f"{stem}{s}") for s in (".safetensors", ".json")]
        if files[0].is_file():
            return [f for f in files if f.is_file()]
    return []


def model_card(spec):
    """The card of a model file or shipped model, read from its JSON sidecar.

    Nothing is imported or loaded; None when there is no readable sidecar
    (e.g. a published checkpoint).
    """
    for fname in model_files(spec):
        if fname.suffix == ".json":
            try:
                card = json.loads(fname.read_text(encoding="utf-8")).get("card")
            except (OSError, ValueError, AttributeError):
                return None
            return card if isinstance(card, dict) else None
    return None


def model_digest(spec):
    """SHA-256 of a model's files: outputs of other weights are stale.

    A model file or a shipped model is found without importing torch; a
    published checkpoint is located with :func:`mne_eegfm.registry.resolve`
    (nothing is built or loaded).
    """
    import hashlib

    from ..io import sha256

    files = model_files(spec)
    if not files:
        from ..registry import resolve

        try:
            resolved = resolve(spec)
        except (OSError, ValueError) as err:
            message = f"Could not load the model {spec!r}: {err}"
            raise click.ClickException(message) from None
        files = [p for p in (resolved.weights, resolved.sidecar) if p is not None]
    if not files:
        return None
    digest = hashlib.sha256()
    for fname in files:
        digest.update(sha256(fname).encode())
    return digest.hexdigest()


def completed(rec, files, settings):
    """The sidecar record of a previous run that is still valid, else None."""
    from ..io import same_file

    if not all(rec.output(*f).is_file() for f in files):
        return None
    try:
        meta = json.loads(rec.output(*files[0]).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    info = meta.get("MneEegfm", {}) if isinstance(meta, dict) else {}
    if info.get("status") != COMPLETE or info.get("settings") != settings:
        return None
    if not same_file(rec.source, info.get("input")):
        return None
    return info


def describe(err):
    """One line saying why a recording failed."""
    from ..evaluation import describe_error

    return describe_error(err)


def warning_notes(caught):
    """Whole warning messages (their lines joined), each once."""
    notes = []
    for item in caught:
        text = " ".join(
            line.strip() for line in str(item.message).splitlines() if line.strip()
        )
        if not text or issubclass(item.category, DeprecationWarning) or text in notes:
            continue
        notes.append(text)
    return notes


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
        result = {"status": "failed", "error": describe(err)}
    notes = warning_notes(caught)
    if notes:
        result.setdefault("warnings", []).extend(notes)
    return {"source": rec.source, "name": rec.name, "root": rec.root, **result}


class _Task:
    """A picklable ``rec -> result`` for joblib workers."""

    def __init__(self, work, options):
        self.work = work
        self.options = options

    def __call__(self, rec):
        return _guarded(self.work, rec, self.options)


def _execute(task, recordings, n_jobs, desc):
    from tqdm.auto import tqdm

    bar = dict(total=len(recordings), desc=desc, unit="rec", file=sys.stderr)
    bar["disable"] = None if len(recordings) > 1 else True
    workers = n_workers(n_jobs, len(recordings))
    if workers == 1:
        return [task(rec) for rec in tqdm(recordings, **bar)]
    from joblib import Parallel, delayed

    parallel = Parallel(n_jobs=workers, backend="loky", return_as="generator_unordered")
    return list(tqdm(parallel(delayed(task)(rec) for rec in recordings), **bar))


def pending(recordings, files, options):
    """Split recordings into (results of those up to date, those to compute)."""
    done, todo = {}, []
    for rec in recordings:
        info = None
        if not options["overwrite"]:
            info = completed(rec, files, options["settings"])
        if info is None:
            todo.append(rec)
            continue
        done[rec.source] = {
            "source": rec.source,
            "name": rec.name,
            "root": rec.root,
            "status": "up to date",
            **info.get("summary", {}),
            "files": info.get("files", {}),
        }
    return done, todo


@dataclass
class Plan:
    """What a ``predict`` or ``embed`` call computes, and what is already done."""

    recordings: list
    bids_roots: dict
    spec: str
    options: dict
    done: dict
    todo: list

    @property
    def label(self):
        """The model's name in written files (no path)."""
        return self.options["settings"]["model"]


def plan(params, default, files, **extra):
    """Plan a command over the PATH arguments of ``params`` (the click params).

    ``files`` are the outputs of a recording, its JSON sidecar first;
    ``extra`` goes into the options given to the workers.
    """
    filters = {
        "subjects": params["subject"],
        "sessions": params["session"],
        "tasks": params["task"],
    }
    recordings, bids_roots = collect(
        params["paths"], params["out"], filters, params["example"]
    )
    spec, label = model_spec(params["model"], default)
    settings = {
        "model": label,
        "weights_sha256": model_digest(spec),
        "window": params["window"],
        "overlap": params["overlap"],
    }
    options = {
        "spec": spec,
        "window": params["window"],
        "overlap": params["overlap"],
        "overwrite": params["overwrite"],
        "settings": settings,
        "log_level": log_level(),
        **extra,
    }
    done, todo = pending(recordings, files, options)
    return Plan(recordings, bids_roots, spec, options, done, todo)


def run(work, plan, n_jobs, desc):
    """Compute ``plan.todo`` with ``work(rec, options)``; results in input order."""
    from ..io import remove_stale_temporaries

    if plan.todo:
        from ..bids import write_dataset_description

        for deriv, root in plan.bids_roots.items():
            write_dataset_description(deriv, root)
    for root in sorted({rec.root for rec in plan.todo}):
        remove_stale_temporaries(root)
    results = dict(plan.done)
    for res in _execute(_Task(work, plan.options), plan.todo, n_jobs, desc):
        results[res["source"]] = res
    return [results[rec.source] for rec in plan.recordings]


def report_failures(results, errors=()):
    """Print warnings, failed recordings and ``errors`` to stderr; exit status."""
    failed = [r for r in results if r["status"] == "failed"]
    for res in results:
        for note in res.get("warnings", []):
            click.echo(f"warning: {res['name']}: {note}", err=True)
    for error in errors:
        click.echo(f"error: {error}", err=True)
    if not failed:
        return 1 if errors else 0
    click.echo(f"\n{len(failed)} of {len(results)} recording(s) failed:", err=True)
    for res in failed:
        click.echo(f"  {res['source']}\n      {res['error']}", err=True)
    return 1


def write_summary(fname, results, columns):
    """Write or update a per-recording table, keyed by ``source``.

    Rows of recordings not in ``results`` (from an earlier run into the same
    folder) are kept; rows of recordings in ``results`` are replaced. Written
    with the ``csv`` module (no pandas import: a re-run stays fast). Returns
    None, or the error (e.g. a full disk) as one line: the caller still
    reports the recordings' failures.
    """
    from ..bids import write_text

    rows = [{c: _cell(res.get(c)) for c in columns} for res in results]
    for row, res in zip(rows, results):
        row["source"] = res["name"]
    old_columns, old_rows = _read_table(fname)
    if "source" in old_columns:
        new = {row["source"] for row in rows}
        rows = [row for row in old_rows if row["source"] not in new] + rows
        columns = list(dict.fromkeys([*old_columns, *columns]))
    text = StringIO()
    writer = csv.DictWriter(
        text, columns, restval="n/a", delimiter="\t", lineterminator="\n"
    )
    writer.writeheader()
    writer.writerows(rows)
    try:
        write_text(fname, text.getvalue())
    except OSError as err:
        return f"could not write {fname}: {err.strerror or err}"
    return None


def _cell(value):
    """A table cell: missing values (None, NaN) are ``n/a``."""
    missing = value is None or (isinstance(value, float) and math.isnan(value))
    return "n/a" if missing else value


def _read_table(fname):
    """``(columns, rows)`` of a TSV file, every cell a string; empty if absent."""
    try:
        with open(fname, encoding="utf-8", newline="") as fid:
            reader = csv.DictReader(fid, delimiter="\t")
            rows = list(reader)
            return list(reader.fieldnames or []), rows
    except FileNotFoundError:
        return [], []


def summary_files(results, name):
    """Path of the ``name`` table in each output root -> results written there."""
    files = {}
    for res in results:
        files.setdefault(Path(res["root"]) / name, []).append(res)
    return files
