"""Docstrings filled from the shared docdict document every parameter.

Ruff's D417 cannot see through ``%(name)s`` placeholders, so the functions that
use them are checked here, after :func:`mne_eegfm._docs.fill_doc` ran.
"""

import inspect
import re

import pytest

from mne_eegfm import bids, onnx_backend
from mne_eegfm.models import femba, frontend, heads, lumamba, luna, mamba, mamba2, scan
from mne_eegfm.pretrain import objectives

FILLED = [
    femba.FEMBA.encode,
    femba.FEMBA.embed,
    femba.FEMBA.forward,
    femba.FEMBA.channel_attention,
    frontend.ChannelUnifiedModel.unify,
    frontend.ChannelUnifiedModel.pretrain_forward,
    lumamba.LuMamba,
    luna.LUNA,
    luna.LUNA.temporal_encode,
    lumamba.LuMamba.temporal_encode,
    luna.RotaryAttention,
    luna.RotaryBlock,
    heads.QueryHead,
    heads.MambaHead,
    heads.LinearHead,
    mamba.Mamba.forward,
    mamba2.Mamba2.forward,
    scan.scan_loop,
    scan.scan_segments,
    onnx_backend.OnnxModel.embed,
    onnx_backend.OnnxModel.forward,
    objectives.PretrainObjective.reconstruction_terms,
    objectives.PretrainObjective.lejepa_terms,
    objectives.PretrainObjective.__call__,
    bids.validate_bids_root,
    bids.read_participants,
    bids.subject_labels,
    bids.derivative_path,
    bids.output_path,
]


def _documented(doc):
    section = doc.split("Parameters\n")[1].split("\n\n")[0]
    names = set()
    for line in section.splitlines()[1:]:
        match = re.match(r"^\s{4,8}(\w[\w, ]*?) :", line)
        if match and len(line) - len(line.lstrip()) == _indent(section):
            names.update(name.strip() for name in match.group(1).split(","))
    return names


def _indent(section):
    first = section.splitlines()[1]
    return len(first) - len(first.lstrip())


@pytest.mark.parametrize("obj", FILLED, ids=lambda obj: obj.__qualname__)
def test_filled_docstring_documents_every_parameter(obj):
    """No placeholder is left and every argument has an entry."""
    doc = obj.__doc__
    assert "%(" not in doc
    target = obj.__init__ if inspect.isclass(obj) else obj
    wanted = set(inspect.signature(target).parameters) - {"self"}
    assert wanted <= _documented(doc), wanted - _documented(doc)
