"""Sphinx configuration for the mne-eegfm documentation.

Build (offline, warnings are errors)::

    python3 -m sphinx -W -b html doc doc/_build/html

See ``doc/README.md`` for the options (online inventories, skipping the
tutorials).
"""

import os
import sys
from datetime import date
from pathlib import Path

from numpydoc import validate as numpydoc_validate

import mne_eegfm

DOC_DIR = Path(__file__).resolve().parent
ROOT = DOC_DIR.parent
sys.path.insert(0, str(DOC_DIR / "sphinxext"))

from benchmark_page import write_benchmark_include  # noqa: E402
from model_table import write_model_table  # noqa: E402
from offline_inventories import intersphinx_mapping as _intersphinx  # noqa: E402

# -- Project -----------------------------------------------------------------
project = "mne-eegfm"
author = "mne-eegfm developers"
copyright = f"{date.today().year}, {author}"  # noqa: A001
release = mne_eegfm.__version__
version = ".".join(release.split(".")[:2])

# -- General -----------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "sphinx_click",
    "myst_parser",
]
templates_path = ["_templates"]
source_suffix = {".rst": "restructuredtext"}
exclude_patterns = ["_build", "README.md", "auto_tutorials/*.ipynb", "**.inc"]
default_role = "py:obj"
nitpicky = False

# -- autodoc / autosummary ---------------------------------------------------
autosummary_generate = True
autodoc_typehints = "none"
autodoc_default_options = {"members": True, "inherited-members": False}
autodoc_member_order = "groupwise"

# -- numpydoc ----------------------------------------------------------------
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = True
numpydoc_xref_aliases = {
    # MNE
    "Raw": "mne.io.Raw",
    "BaseRaw": "mne.io.BaseRaw",
    "Epochs": "mne.Epochs",
    "BaseEpochs": "mne.BaseEpochs",
    "Info": "mne.Info",
    "Report": "mne.Report",
    "BIDSPath": "mne_bids.BIDSPath",
    # NumPy, pandas, PyTorch, scikit-learn
    "ndarray": "numpy.ndarray",
    "array": "numpy.ndarray",
    "DataFrame": "pandas.DataFrame",
    "Module": "torch.nn.Module",
    "Tensor": "torch.Tensor",
    "Pipeline": "sklearn.pipeline.Pipeline",
    # Python
    "path-like": ":term:`path-like <python:path-like object>`",
    "Path": "pathlib.Path",
    # ours
    "EEGFMEmbedder": "mne_eegfm.EEGFMEmbedder",
    "EEGFMClassifier": "mne_eegfm.EEGFMClassifier",
    "InputContract": "mne_eegfm.InputContract",
}
numpydoc_xref_ignore = {
    "type",
    "optional",
    "default",
    "of",
    "or",
    "shape",
    "instance",
    "like",
    "n_windows",
    "n_channels",
    "n_times",
    "n_patches",
    "n_queries",
    "n_outputs",
    "n_classes",
    "n_samples",
    "n_features",
    "B",
    "C",
    "T",
    "S",
    "D",
    "Q",
    "L",
}
# Every public docstring is validated; a failed check is a warning (an error
# with -W). Left out: checks that demand sections we do not write for every
# object (See Also, Examples, extended summary) and pure layout preferences.
numpydoc_validation_checks = {
    "all",
    "GL01",  # summary may start on the first line
    "GL02",  # closing quotes on their own line
    "ES01",  # no extended summary required
    "SA01",  # no See Also required
    "EX01",  # no Examples required (the tutorials are the examples)
    "RT02",  # "name : type" in Returns is fine
    "SS05",  # summary need not start with an infinitive verb
    "YD01",  # generators documented with Returns are fine
}
# numpydoc 1.11 raises StopIteration (and stops the build) when it looks for
# the "def" line of an object whose source has none, such as the wrappers
# that mne.utils.verbose generates; report "line unknown" instead.
_def_line = numpydoc_validate.Validator.source_file_def_line.fget


def _source_file_def_line(self):
    try:
        return _def_line(self)
    except StopIteration:
        return None


numpydoc_validate.Validator.source_file_def_line = property(_source_file_def_line)

numpydoc_validation_exclude = {
    r"\.__init__$",
    r"\.__call__$",
}


def _skip_member(app, what, name, obj, skip, options):
    """Leave out the ``set_*_request`` methods scikit-learn adds to estimators."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return skip


def _escape_click_text(app, ctx, lines):
    """Escape ``*`` in command help so ``*_predictions.tsv`` is not emphasis."""
    lines[:] = [line.replace("*", r"\*") for line in lines]


def setup(app):
    """Connect the documentation's event handlers."""
    app.connect("autodoc-skip-member", _skip_member)
    app.connect("sphinx-click-process-description", _escape_click_text)
    app.connect("sphinx-click-process-epilog", _escape_click_text)


# -- intersphinx (works offline: see sphinxext/offline_inventories.py) -------
intersphinx_mapping = _intersphinx(DOC_DIR)
intersphinx_timeout = 10

# -- sphinx-gallery ----------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "tutorials"),
    "gallery_dirs": "auto_tutorials",
    "filename_pattern": r"plot_",
    "within_subsection_order": "FileNameSortKey",
    "backreferences_dir": "generated",
    "doc_module": ("mne_eegfm",),
    "abort_on_example_error": True,
    "download_all_examples": False,
    "show_memory": False,
    "min_reported_time": 1,
    "remove_config_comments": True,
    "capture_repr": (),
    "plot_gallery": os.environ.get("MNE_EEGFM_DOC_PLOT", "True"),
}

# -- HTML --------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"mne-eegfm {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc", "sourcelink"],
}
html_context = {"default_mode": "light"}
html_show_sourcelink = False
html_last_updated_fmt = None

# The performance page includes the benchmark tables and plots that
# benchmarks/*.py wrote; rebuild that include from whatever is there now.
write_benchmark_include(ROOT / "benchmarks", DOC_DIR / "generated")
write_model_table(DOC_DIR / "generated")
