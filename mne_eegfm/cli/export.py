"""``mne-eegfm export``: a model as an ONNX file, for onnxruntime."""

from pathlib import Path

import click

from ._common import load_or_fail, model_spec


def _load(spec):
    from ..checkpoints import load_model

    return load_model(spec)


@click.command()
@click.argument("model")
@click.option(
    "--onnx",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The .onnx file to write.",
)
@click.option(
    "--window",
    type=click.FloatRange(min=0, min_open=True),
    help="Window length in seconds fixed in the graph (default: the model's).",
)
def export(model, out, window):
    """Export MODEL (a registered name or a model file) to ONNX.

    The graph takes ``x`` (batch, channels, samples) and ``positions``
    (batch, channels, 3), any montage, and outputs ``latent`` and, for a
    classifier, ``logits``; run it with onnxruntime, or use
    ``EEGFMClassifier(backend="onnx")``.
    """
    import warnings

    from ..onnx_backend import export_onnx

    spec, _ = model_spec(model, None)
    net = load_or_fail(_load, spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on constants
        try:
            n_times = None
            if window is not None:  # rounded down to whole patches
                seconds = net.contract.check_window(window)
                n_times = int(round(seconds * float(net.contract.sfreq)))
            fname = export_onnx(net, out, n_times=n_times)
        except (OSError, ValueError) as err:
            raise click.ClickException(f"Could not export {model}: {err}") from None
    click.echo(f"Wrote {fname} ({fname.stat().st_size / 1e6:.1f} MB)")
