"""What the commands share: recordings and where their outputs go, options, tables.

Only click and the standard library are imported here, so that
``mne-eegfm --help`` stays fast.
"""

import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import click

DISCLAIMER = "Research demonstration, not a diagnostic device."
_DATA = Path(__file__).resolve().parents[1] / "data"
EXAMPLE_FILE = _DATA / "example" / "sub-024_task-restingstate_eeg.edf"
#: The example subject's group in the source dataset (``participants.tsv``).
EXAMPLE_GROUP = "Epilepsy"
DEFAULT_OUT = "mne-eegfm-results"
# The defaults of mne_eegfm.checkpoints, named here without importing torch
# (tests/test_cli.py checks that they agree).
DEFAULT_MODEL = "lumamba-tiny-gb"
DEFAULT_CLASSIFIER = "lumamba-tiny-gb-epilepsy"


def example_output():
    """Output folder of ``--example`` without ``--out`` (not the current folder)."""
    return Path(tempfile.gettempdir()) / "mne-eegfm-example"


def shipped_windows():
    """Window lengths (s) of the shipped models, read from their JSON sidecars."""
    windows = set()
    for sidecar in _DATA.glob("*.json"):
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
            windows.add(float(meta["contract"]["window_s"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return sorted(windows)


def window_help():
    """Help of --window naming the real default window of the shipped models."""
    windows = shipped_windows()
    if len(windows) == 1:
        shipped = f"{windows[0]:g} s for every shipped model"
    else:
        shipped = "shipped models: " + ", ".join(f"{w:g} s" for w in windows)
    return f"Window length in seconds (default: the model's; {shipped})."


@dataclass(frozen=True)
class Recording:
    """One recording to process and where its outputs go.

    Parameters
    ----------
    source : str
        The file (or ``.mff`` folder) that is read.
    stem : str
        Output path without its ``_desc-eegfm_<suffix><ext>`` ending.
    root : str
        The output root (where ``summary.tsv`` goes).
    name : str
        The source relative to its dataset root (BIDS) or the folder it was
        found in (or its file name): what written tables show.
    bids_path : mne_bids.BIDSPath | None
        The BIDS path when the recording comes from a BIDS dataset.
    """

    source: str
    stem: str
    root: str
    name: str
    bids_path: object = None

    def output(self, suffix, extension):
        """Path of the output file with this suffix and extension."""
        return Path(f"{self.stem}_desc-eegfm_{suffix}{extension}")

    def relative(self, path):
        """``path`` relative to the output root (POSIX separators)."""
        return Path(os.path.relpath(path, self.root)).as_posix()


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
    seen, unique = {}, []
    for base in bases:
        seen[base] = seen.get(base, 0) + 1
        unique.append(base if seen[base] == 1 else f"{base}_{seen[base]}")
    return unique


def _folder_files(folder):
    from ..io import READABLE_EXTENSIONS, find_recordings

    files = find_recordings(folder)
    if not files:
        raise click.ClickException(
            f"No EEG file found in the folder {folder} (looked for "
            f"{', '.join(READABLE_EXTENSIONS)}; a BIDS dataset needs a "
            "dataset_description.json at its root)."
        )
    return [(path, path.relative_to(folder).as_posix()) for path in files]


def _bids_recordings(path, deriv, filters):
    from .. import bids

    try:
        found = bids.find_recordings(path, **filters, verbose=False)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    recordings = []
    for bids_path in found:
        first = bids.derivative_path(bids_path, deriv, "x", ".x")
        stem = str(first).removesuffix("_desc-eegfm_x.x")
        name = Path(bids_path.fpath).relative_to(path).as_posix()
        recordings.append(
            Recording(str(bids_path.fpath), stem, str(deriv), name, bids_path)
        )
    return recordings


def _bids_out(path, out, n_roots):
    from .. import bids

    if out is None:
        return bids.derivatives_root(path)
    if n_roots > 1:
        return Path(out) / path.resolve().name
    return Path(out)


def collect(paths, out, filters, example):
    """Recordings and BIDS roots of the PATH arguments; output folders checked."""
    recordings, bids_roots = resolve_inputs(paths, out, filters, example)
    for root in sorted({rec.root for rec in recordings} | set(map(str, bids_roots))):
        check_writable(root)
    return recordings, bids_roots


def resolve_inputs(paths, out, filters, example=False):
    """Turn PATH arguments (and ``--example``) into recordings.

    Returns
    -------
    recordings : list of Recording
    bids_roots : dict
        Derivative root -> source BIDS root, for dataset_description.json.
    """
    from .. import bids

    if not paths and not example:
        raise click.UsageError("Give at least one PATH (or --example).")
    paths = [Path(p) for p in paths]
    roots = [p for p in paths if bids.is_bids_root(p)]
    recordings, bids_roots, plain = [], {}, []
    for path in paths:
        if path in roots:
            deriv = _bids_out(path, out, len(roots))
            bids_roots[deriv] = path
            recordings += _bids_recordings(path, deriv, filters)
        elif path.is_dir() and not path.name.lower().endswith(".mff"):
            plain += _folder_files(path)
        else:
            plain.append((path, path.name))
    groups = [(plain, Path(DEFAULT_OUT) if out is None else Path(out))]
    if example:
        groups.append(([(EXAMPLE_FILE, EXAMPLE_FILE.name)], out or example_output()))
    for files, root in groups:
        bases = _unique_bases([f for f, _ in files])
        for (path, name), base in zip(files, bases):
            recordings.append(Recording(str(path), str(root / base), str(root), name))
    return recordings, bids_roots


def write_problem(folder):
    """Create ``folder`` and try writing a file in it: the reason it fails, or None."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".mne-eegfm-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        return err.strerror or str(err)
    return None


def check_writable(folder):
    """Create ``folder`` and check that files can be written in it."""
    reason = write_problem(folder)
    if reason is not None:
        raise click.ClickException(
            f"Cannot write to the output folder {Path(folder)}: {reason}. "
            "Choose a writable folder with --out."
        )


def model_spec(model, default):
    """``(spec, label)``: what to load (registry name or absolute file path) and
    how to name it in written files (the name, or the file name: no paths)."""
    if model is None:
        return default, default
    for suffix in ("", ".safetensors", ".json"):
        if Path(model + suffix).is_file():
            return str(Path(model).resolve()), Path(model).name
    return model, model


def load_or_fail(load, spec):
    """``load(spec)``, with a command-line error naming the model if it fails."""
    try:
        return load(spec)
    except (OSError, ValueError) as err:
        message = f"Could not load the model {spec!r}: {err}"
        raise click.ClickException(message) from None


def echo_table(header, rows):
    """Print a left-aligned text table."""
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    for row in [header, *rows]:
        click.echo("  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip())


def _check_n_jobs(ctx, param, value):
    if value == 0:
        raise click.BadParameter("use a positive number or -1 (all cores)")
    return value


def _check_precision(ctx, param, value):
    """Refuse a precision the machine cannot run, before any work (exit 1)."""
    if value == "float32":  # the default never needs torch at start-up
        return value
    from ..models.precision import resolve_precision
    from ..utils import resolve_device

    try:
        resolve_precision(value, resolve_device("auto"))
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    return value


def precision_option(func):
    """The ``--precision`` option (predict, embed, fit)."""
    return click.option(
        "--precision",
        type=click.Choice(["float32", "bfloat16", "auto"]),
        default="float32",
        show_default=True,
        callback=_check_precision,
        help="Numerical precision of the model: bfloat16 needs a CPU with AMX "
        "or AVX512-BF16 (or a GPU with bfloat16); auto picks it only there.",
    )(func)


def _check_window(ctx, param, value):
    if value is not None and not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a window length in seconds")
    return value


def recording_options(func):
    """Options shared by predict and embed."""
    options = [
        click.option(
            "--out",
            type=click.Path(file_okay=False, path_type=Path),
            help="Output folder. Default: <BIDS root>/derivatives/mne-eegfm for a "
            f"BIDS dataset, ./{DEFAULT_OUT} for files, a temporary folder "
            "for --example.",
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
            callback=_check_window,
            help=window_help(),
        ),
        click.option(
            "--overlap",
            type=click.FloatRange(0, 1, max_open=True),
            default=0.0,
            show_default=True,
            help="Fraction of overlap between consecutive windows (memory does "
            "not grow with it).",
        ),
        click.option(
            "--n-jobs",
            type=int,
            default=1,
            callback=_check_n_jobs,
            show_default=True,
            help="Recordings processed in parallel (processes; -1 = all cores; "
            "never more than the recordings to compute or the cores).",
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
    return precision_option(func)


def echo_cv(summary, n_splits, n_subjects):
    """Print cross-validation metrics (mean ± sd over folds, and pooled)."""
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
    echo_table(["level", "metric", "mean ± sd", "pooled", "n"], rows)


def _cv_row(level, name, metric, summary):
    res = summary[level]
    return [
        f"per {level}",
        name,
        f"{res['mean'][metric]:.3f} ± {res['std'][metric]:.3f}",
        f"{res['pooled'][metric]:.3f}",
        res["n"],
    ]
