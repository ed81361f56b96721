"""Docstrings filled from the shared docdict document every parameter.

Ruff's D417 cannot see through ``%(name)s`` placeholders, so the functions that
use them are checked here, after :func:`mne_eegfm._docs.fill_doc` ran.
"""

import ast
import importlib
import inspect
import re
from pathlib import Path

import pytest

import mne_eegfm

PACKAGE = Path(mne_eegfm.__file__).parent


def _placeholder_docstrings():
    """``(module, qualname)`` of every docstring with a ``%(name)s`` placeholder."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "_docs.py":
            continue
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found += [(module, name) for name in _walk(ast.parse(path.read_text()), "")]
    return found


def _walk(node, prefix):
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.FunctionDef | ast.ClassDef):
            name = prefix + child.name
            if "%(" in (ast.get_docstring(child) or ""):
                yield name
            yield from _walk(child, name + ".")


def _resolve(module, qualname):
    obj = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


FILLED = _placeholder_docstrings()


def test_placeholders_are_found():
    names = {name for _, name in FILLED}
    assert {"EEGFMClassifier", "load_model", "iter_windows", "LuMamba"} <= names


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


@pytest.mark.parametrize("module, qualname", FILLED, ids=[q for _, q in FILLED])
def test_filled_docstring_documents_every_parameter(module, qualname):
    """No placeholder is left and every argument has an entry."""
    obj = _resolve(module, qualname)
    doc = obj.__doc__
    assert "%(" not in doc
    target = obj.__init__ if inspect.isclass(obj) else obj
    wanted = set(inspect.signature(target).parameters) - {"self"}
    assert wanted <= _documented(doc), wanted - _documented(doc)
