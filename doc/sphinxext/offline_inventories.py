"""Intersphinx inventories that work without a network connection.

Sphinx's intersphinx extension downloads ``objects.inv`` from each project's
documentation site. The machines this documentation is built on are offline,
and a failed download is a warning (an error under ``sphinx-build -W``). So for
each project we use, in this order:

1. the live inventory, when ``MNE_EEGFM_DOC_ONLINE=1`` is set;
2. a real inventory saved as ``doc/_inventories/<project>.inv`` (download it
   once with ``curl -o doc/_inventories/mne.inv https://mne.tools/stable/objects.inv``);
3. otherwise a minimal inventory written here, listing only the external names
   our documentation links to, with their real addresses on each project's site.

Links therefore point to the right pages in every mode; only names missing from
the minimal lists render as plain text.
"""

import os
import zlib

# project -> (base URL, version, {name: (role, page relative to the base URL)})
# Every "$" in a page is replaced by the object's name.
_PROJECTS = {
    "python": (
        "https://docs.python.org/3/",
        "3",
        {
            "str": ("py:class", "library/stdtypes.html#str"),
            "int": ("py:class", "library/functions.html#int"),
            "float": ("py:class", "library/functions.html#float"),
            "bool": ("py:class", "library/functions.html#bool"),
            "dict": ("py:class", "library/stdtypes.html#dict"),
            "list": ("py:class", "library/stdtypes.html#list"),
            "tuple": ("py:class", "library/stdtypes.html#tuple"),
            "None": ("py:data", "library/constants.html#None"),
            "True": ("py:data", "library/constants.html#True"),
            "False": ("py:data", "library/constants.html#False"),
            "ValueError": ("py:exception", "library/exceptions.html#ValueError"),
            "TypeError": ("py:exception", "library/exceptions.html#TypeError"),
            "RuntimeError": ("py:exception", "library/exceptions.html#RuntimeError"),
            "FileNotFoundError": (
                "py:exception",
                "library/exceptions.html#FileNotFoundError",
            ),
            "OSError": ("py:exception", "library/exceptions.html#OSError"),
            "RuntimeWarning": (
                "py:exception",
                "library/exceptions.html#RuntimeWarning",
            ),
            "os.PathLike": ("py:class", "library/os.html#os.PathLike"),
            "pathlib.Path": ("py:class", "library/pathlib.html#pathlib.Path"),
            "collections.abc.Iterator": (
                "py:class",
                "library/collections.abc.html#collections.abc.Iterator",
            ),
            "dataclasses.dataclass": (
                "py:function",
                "library/dataclasses.html#dataclasses.dataclass",
            ),
            "path-like object": ("std:term", "glossary.html#term-path-like-object"),
            "iterator": ("std:term", "glossary.html#term-iterator"),
            "iterable": ("std:term", "glossary.html#term-iterable"),
            # Labels used by MNE's shared docstring for ``verbose``.
            "bltin-boolean-values": (
                "std:label",
                "library/stdtypes.html#bltin-boolean-values",
            ),
        },
    ),
    "numpy": (
        "https://numpy.org/doc/stable/",
        "stable",
        {
            "numpy.ndarray": ("py:class", "reference/generated/$.html#$"),
            "numpy.float32": ("py:attribute", "reference/arrays.scalars.html#$"),
            "numpy.float64": ("py:attribute", "reference/arrays.scalars.html#$"),
            "numpy.random.Generator": (
                "py:class",
                "reference/random/generator.html#$",
            ),
            "numpy.memmap": ("py:class", "reference/generated/$.html#$"),
            "array_like": ("std:term", "glossary.html#term-array_like"),
        },
    ),
    "scipy": (
        "https://docs.scipy.org/doc/scipy/",
        "stable",
        {
            "scipy.signal.resample_poly": (
                "py:function",
                "reference/generated/$.html#$",
            ),
        },
    ),
    "pandas": (
        "https://pandas.pydata.org/docs/",
        "stable",
        {
            "pandas.DataFrame": ("py:class", "reference/api/$.html#$"),
            "pandas.read_csv": ("py:function", "reference/api/$.html#$"),
        },
    ),
    "mne": (
        "https://mne.tools/stable/",
        "stable",
        {
            name: (role, "generated/$.html#$")
            for name, role in {
                "mne.io.Raw": "py:class",
                "mne.io.BaseRaw": "py:class",
                "mne.io.RawArray": "py:class",
                "mne.io.read_raw": "py:function",
                "mne.io.read_raw_edf": "py:function",
                "mne.Epochs": "py:class",
                "mne.BaseEpochs": "py:class",
                "mne.EpochsArray": "py:class",
                "mne.Evoked": "py:class",
                "mne.Info": "py:class",
                "mne.Annotations": "py:class",
                "mne.Report": "py:class",
                "mne.create_info": "py:function",
                "mne.make_fixed_length_epochs": "py:function",
                "mne.pick_types": "py:function",
                "mne.channels.DigMontage": "py:class",
                "mne.channels.make_standard_montage": "py:function",
                "mne.decoding.SlidingEstimator": "py:class",
                "mne.decoding.Scaler": "py:class",
                "mne.viz.plot_topomap": "py:function",
                "mne.utils.verbose": "py:function",
                "mne.utils.logger": "py:data",
                "mne.set_log_level": "py:function",
                "mne.sys_info": "py:function",
            }.items()
        }
        | {
            "tut-logging": (
                "std:label",
                "auto_tutorials/intro/50_configure_mne.html#tut-logging",
            )
        },
    ),
    "mne_bids": (
        "https://mne.tools/mne-bids/stable/",
        "stable",
        {
            "mne_bids.BIDSPath": ("py:class", "generated/$.html#$"),
            "mne_bids.read_raw_bids": ("py:function", "generated/$.html#$"),
            "mne_bids.write_raw_bids": ("py:function", "generated/$.html#$"),
            "mne_bids.find_matching_paths": ("py:function", "generated/$.html#$"),
        },
    ),
    "sklearn": (
        "https://scikit-learn.org/stable/",
        "stable",
        {
            name: (role, "modules/generated/$.html#$")
            for name, role in {
                "sklearn.base.BaseEstimator": "py:class",
                "sklearn.base.TransformerMixin": "py:class",
                "sklearn.base.ClassifierMixin": "py:class",
                "sklearn.base.clone": "py:function",
                "sklearn.pipeline.Pipeline": "py:class",
                "sklearn.pipeline.make_pipeline": "py:function",
                "sklearn.linear_model.LogisticRegression": "py:class",
                "sklearn.model_selection.cross_val_score": "py:function",
                "sklearn.model_selection.cross_validate": "py:function",
                "sklearn.model_selection.cross_val_predict": "py:function",
                "sklearn.model_selection.GroupKFold": "py:class",
                "sklearn.model_selection.StratifiedKFold": "py:class",
                "sklearn.model_selection.StratifiedGroupKFold": "py:class",
                "sklearn.model_selection.GridSearchCV": "py:class",
                "sklearn.metrics.balanced_accuracy_score": "py:function",
                "sklearn.metrics.roc_auc_score": "py:function",
                "sklearn.preprocessing.StandardScaler": "py:class",
            }.items()
        },
    ),
    "torch": (
        "https://docs.pytorch.org/docs/stable/",
        "stable",
        {
            "torch.nn.Module": ("py:class", "generated/$.html#$"),
            "torch.nn.MultiheadAttention": ("py:class", "generated/$.html#$"),
            "torch.nn.Module.state_dict": (
                "py:method",
                "generated/torch.nn.Module.html#$",
            ),
            "torch.nn.Module.load_state_dict": (
                "py:method",
                "generated/torch.nn.Module.html#$",
            ),
            "torch.Tensor": ("py:class", "tensors.html#$"),
            "torch.device": ("py:class", "tensor_attributes.html#$"),
            "torch.dtype": ("py:class", "tensor_attributes.html#$"),
            "torch.load": ("py:function", "generated/$.html#$"),
            "torch.optim.AdamW": ("py:class", "generated/$.html#$"),
            "torch.nn.parallel.DistributedDataParallel": (
                "py:class",
                "generated/$.html#$",
            ),
            "torch.compile": ("py:function", "generated/$.html#$"),
        },
    ),
}


# Link texts of the labels and terms above.
_DISPLAY = {"bltin-boolean-values": "Boolean Values", "tut-logging": "Logging"}


def _write_inventory(path, project, version, entries):
    """Write a Sphinx version-2 inventory (``objects.inv``) to ``path``."""
    lines = []
    for name, (role, page) in sorted(entries.items()):
        display = _DISPLAY.get(name, name) if role.startswith("std:") else "-"
        lines.append(f"{name} {role} 1 {page.replace('$', name)} {display}\n")
    header = (
        "# Sphinx inventory version 2\n"
        f"# Project: {project}\n"
        f"# Version: {version}\n"
        "# The remainder of this file is compressed using zlib.\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    body = zlib.compress("".join(lines).encode("utf-8"))
    path.write_bytes(header.encode("utf-8") + body)


def intersphinx_mapping(doc_dir):
    """Build ``intersphinx_mapping`` for the documentation in ``doc_dir``.

    Parameters
    ----------
    doc_dir : pathlib.Path
        The folder that holds ``conf.py``.

    Returns
    -------
    mapping : dict
        Project name -> (base URL, inventory location), as Sphinx expects.
    """
    online = os.environ.get("MNE_EEGFM_DOC_ONLINE", "0") == "1"
    saved_dir = doc_dir / "_inventories"
    generated_dir = doc_dir / "_build" / "offline_inventories"
    mapping = {}
    for project, (url, version, entries) in _PROJECTS.items():
        saved = saved_dir / f"{project}.inv"
        if online:
            location = None
        elif saved.is_file():
            location = str(saved)
        else:
            generated = generated_dir / f"{project}.inv"
            _write_inventory(generated, project, version, entries)
            location = str(generated)
        mapping[project] = (url, location)
    return mapping
