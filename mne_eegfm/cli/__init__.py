"""The ``mne-eegfm`` command line: one thin module per command.

``predict``, ``embed``, ``fit``, ``export``, ``models`` and ``sys-info`` live
in modules of the same name; ``pretrain`` (in
:mod:`mne_eegfm.pretrain.command`) is imported only when used. ``_runner``
resumes, runs recordings in parallel and reports failures; ``_common`` holds
inputs, outputs and shared options. Heavy modules (torch, MNE, pandas) are
imported inside the commands so that ``mne-eegfm --help`` and
``import mne_eegfm.cli`` stay fast.
"""

import click

from .. import __version__
from ._common import EXAMPLE_FILE
from .embed import embed
from .export import export
from .fit import fit
from .models import models
from .predict import predict
from .sys_info import sys_info

__all__ = ["EXAMPLE_FILE", "main"]


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


for _command in (predict, embed, fit, export, models, sys_info):
    main.add_command(_command)
