"""``mne-eegfm sys-info``: versions, compute device and SSM kernels."""

import click


@click.command("sys-info")
def sys_info():
    """Print versions, compute device and whether mamba-ssm kernels are used."""
    from ..utils import sys_info as print_sys_info

    print_sys_info()
