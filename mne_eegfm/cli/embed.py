"""``mne-eegfm embed``: embeddings of every window, and an index of recordings."""

import json
import sys
from functools import lru_cache
from pathlib import Path

import click

from .. import __version__
from . import _runner
from ._common import (
    DEFAULT_MODEL,
    echo_table,
    load_or_fail,
    recording_options,
)

EMB_FILES = (("embeddings", ".json"), ("embeddings", ".npz"))


@lru_cache(maxsize=4)
def load_embedder(spec, digest=None):
    """An embedder with its encoder loaded (cached per process and file digest)."""
    from ..estimators import EEGFMEmbedder

    embedder = EEGFMEmbedder(model=spec, on_missing="warn", verbose=False)
    embedder._get_model()
    return embedder


def _load(spec, digest=None):
    return load_or_fail(lambda s: load_embedder(s, digest)._get_model()[0], spec)


def embed_one(rec, options):
    """Embed one recording and write its outputs (run in a worker)."""
    import numpy as np

    from ..api import embed
    from ..bids import write_text
    from ..io import atomic_path, file_fingerprint, read_recording

    fingerprint = file_fingerprint(rec.source)
    raw = read_recording(rec.source if rec.bids_path is None else rec.bids_path)
    result = embed(
        raw,
        load_embedder(options["spec"], options["settings"]["weights_sha256"]),
        window_s=options["window"],
        overlap=options["overlap"],
        on_missing="warn",
        precision=options["precision"],
    )
    pooled = result.embeddings.mean(axis=0)
    npz = rec.output(*EMB_FILES[1])
    settings = options["settings"]
    with atomic_path(npz) as tmp:
        np.savez(
            tmp,
            embeddings=result.embeddings,
            pooled=pooled,
            onsets=result.onsets,
            durations=result.durations,
            n_skipped=np.array(result.n_skipped),
            source=np.array(rec.name),
            ch_names=np.array(result.ch_names[0]),
            model=np.array(settings["model"]),
            settings=np.array(json.dumps(settings, sort_keys=True)),
        )
    summary = {"n_windows": result.n_windows, "n_skipped": result.n_skipped}
    files = {"embeddings": rec.relative(npz)}
    meta = {
        "Sources": [rec.name],
        "MneEegfm": {
            "status": _runner.COMPLETE,
            "version": __version__,
            "settings": settings,
            "input": fingerprint,
            "model": settings["model"],
            "summary": summary,
            "files": files,
        },
    }
    write_text(
        rec.output(*EMB_FILES[0]), json.dumps(meta, indent=2, ensure_ascii=False) + "\n"
    )
    return {"status": "ok", **summary, "pooled": pooled, "files": files}


def _pooled(res):
    """The pooled embedding of a result (read back for recordings up to date)."""
    import numpy as np

    if "pooled" in res:
        return res.pop("pooled")
    if "files" not in res:
        return None
    with np.load(Path(res["root"]) / res["files"]["embeddings"]) as data:
        return data["pooled"]


def _finish(results):
    import numpy as np

    dim = None
    for res in results:
        pooled = _pooled(res)
        if pooled is not None:
            dim = len(pooled)
            res.update({f"emb_{i}": float(v) for i, v in enumerate(pooled)})
        if "files" in res:
            res["file"] = res["files"]["embeddings"]
    columns = ["source", "status", "file", "n_windows", "n_skipped", "error"]
    columns += [f"emb_{i}" for i in range(dim or 0)]
    for res in results:
        res.update({c: res.get(c, np.nan) for c in columns[6:]})
    rows = [
        [r["name"], r["status"], r.get("n_windows", "-"), r.get("n_skipped", "-")]
        for r in results
    ]
    echo_table(["recording", "status", "windows", "skipped"], rows)
    errors = []
    for fname, subset in _runner.summary_files(results, "embeddings.tsv").items():
        error = _runner.write_summary(fname, subset, columns)
        if error:
            errors.append(error)
        else:
            click.echo(f"Index (one row per recording, pooled embedding): {fname}")
    sys.exit(_runner.report_failures(results, errors))


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@recording_options
def embed(**params):
    """Embed each window of each recording with a pretrained encoder.

    PATH is as for `mne-eegfm predict` (files, folders, BIDS roots). The default
    encoder is the shipped lumamba-tiny-gb.

    \b
    Outputs per recording (*_desc-eegfm_embeddings.npz, read with
    numpy.load(..., allow_pickle=False)):
      embeddings (n_windows, D) float32, pooled (D,) mean over windows,
      onsets and durations (s), n_skipped, source, ch_names, model, settings;
    *_desc-eegfm_embeddings.json records how they were computed, and
    embeddings.tsv (pandas.read_csv(..., sep="\\t")) has one row per
    recording: source, file, windows, and the pooled embedding (emb_0...).
    """
    plan = _runner.plan(params, DEFAULT_MODEL, EMB_FILES, precision=params["precision"])
    if plan.todo:
        from ..api import model_name

        net = _load(plan.spec, plan.options["settings"]["weights_sha256"])
        click.echo(
            f"mne-eegfm {__version__}: embedding {len(plan.recordings)} "
            f"recording(s) with {model_name(net, plan.label)} ({net.embed_dim}-d)",
            err=True,
        )
    results = _runner.run(embed_one, plan, params["n_jobs"], "embed")
    _finish(results)
