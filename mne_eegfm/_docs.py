"""Shared parameter descriptions, filled into docstrings with :func:`fill_doc`.

A docstring writes ``%(name)s`` on its own line inside its Parameters section;
:func:`fill_doc` replaces it with the entry of :data:`docdict`, indented like
the placeholder.
"""

docdict = {}

docdict["model"] = """
model : str | path-like | None
    A registered checkpoint (see :func:`mne_eegfm.list_models`), the path of
    a model saved with :func:`mne_eegfm.checkpoints.save_model`, or an
    architecture name (see :func:`mne_eegfm.models.list_configs`), which
    gives randomly initialised weights (with a warning) unless ``weights``
    is given. ``None`` uses the shipped pretrained model
    (``"lumamba-tiny-gb"``)."""

docdict["weights"] = """
weights : path-like | None
    A weights file to load into ``model`` (e.g. a published checkpoint you
    downloaded)."""

docdict["window_s"] = """
window_s : float | None
    Window length in seconds for Raw input (and the length Epochs are
    cropped to); ``None`` uses the model's input contract (10 s for every
    shipped model)."""

docdict["overlap"] = """
overlap : float
    Fraction of overlap between consecutive windows of a Raw, in [0, 1).
    Memory does not grow with the overlap (see :mod:`mne_eegfm.inference`)."""

docdict["array_info"] = """
info : mne.Info | None
    Channel metadata of array input (names, sampling rate, positions).
ch_names : list of str | None
    Channel names of array input, when ``info`` is not given.
sfreq : float | None
    Sampling rate of array input, when ``info`` is not given."""

docdict["contract_window"] = """
contract : InputContract
    What the model expects.
window_s : float | None
    Window length in seconds (None: ``contract.window_s``), rounded down to a
    multiple of 40 samples at ``contract.sfreq``."""

docdict["on_missing"] = """
on_missing : "raise" | "warn" | "drop"
    What to do with an EEG channel that has no known position."""

docdict["batch_size"] = """
batch_size : int
    Number of windows per forward pass."""

docdict["device"] = """
device : str
    ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``..."""

docdict["precision"] = """
precision : "float32" | "bfloat16" | "auto"
    Numerical precision of the model. ``"bfloat16"`` runs the matrix
    products in bfloat16 (scan state, exponentials, normalisation and
    losses stay float32) and is refused with a ``ValueError`` on a device
    without fast bfloat16 (CPUs need AMX or AVX512-BF16); ``"auto"`` picks
    it only where it is fast. Outputs are float32 either way.
    See :func:`mne_eegfm.models.precision.resolve_precision`."""

docdict["model_kwargs"] = """
model_kwargs : dict | None
    Options passed to :func:`mne_eegfm.models.create_model` with an
    architecture name (e.g. ``{"num_blocks": 1}``)."""

docdict["backend"] = """
backend : "torch" | "onnx"
    Where the model runs for inference: PyTorch, or onnxruntime (the model is
    exported to ONNX once per window length, in memory; needs the ``onnx``
    extra). Training (``fit`` of a classifier) always runs in PyTorch."""

docdict["verbose"] = """
verbose : bool | str | int | None
    MNE-style verbosity; ``None`` keeps the current MNE log level."""

# Groups of the entries above that always go together.
docdict["windowing"] = docdict["window_s"] + docdict["overlap"]
docdict["estimator_runtime"] = "".join(
    docdict[key]
    for key in ("device", "precision", "model_kwargs", "backend", "verbose")
)

docdict["inst"] = """
inst : Raw | Epochs | list of Raw or Epochs
    The data (never modified). A Raw is cut into windows and read chunk by
    chunk; Epochs give one window each."""

docdict["X"] = """
X : mne.Epochs | mne.io.Raw | list of Raw or Epochs | ndarray
    The data; arrays need ``info`` or ``ch_names`` and ``sfreq`` at
    construction."""


# BIDS datasets and their derivatives (mne_eegfm.bids).

docdict["bids_root"] = """
root : path-like
    The BIDS root."""

docdict["source_and_derivatives"] = """
bids_path : mne_bids.BIDSPath
    The source recording.
deriv_root : path-like
    Root of the derivative dataset."""

# Model internals: arguments shared by the methods of one family.

docdict["unified_patching"] = """
embedding : "luna" | "multibranch"
    Temporal patch embedding.
patch_size : int
    Samples per patch.
dropout : float
    Dropout of the channel unification (training only)."""

docdict["unified_inputs"] = """
x : torch.Tensor, shape (B, C, T)
    Normalised signals.
positions : torch.Tensor, shape (B, C, 3) | (C, 3)
    Electrode positions in metres."""

docdict["unified_outputs"] = """
n_outputs : int | None
    Outputs of the classification head; None builds the pretraining layout
    (reconstruction decoder and channel-name embedding, no head).
head : "query" | "mamba" | "linear" | None
    Head type (default "query" when ``n_outputs`` is given)."""

docdict["attention_size"] = """
dim : int
    Width.
num_heads : int
    Heads."""

docdict["temporal_encode"] = """
Parameters
----------
unified : torch.Tensor, shape (B, S, D)
    Tokens unified over the electrodes, one per patch.

Returns
-------
latent : torch.Tensor, shape (B, S, D)
    The encoder output."""

docdict["femba_input"] = """
x : torch.Tensor, shape (B, 22, T)
    Normalised signals in the TCP bipolar order; T a multiple of 16.
positions : None
    Unused (accepted for compatibility with the other models).
channel_mask : torch.Tensor | None, shape (B, 22)
    Unused, but must be all True if given (no padding)."""

docdict["head_size"] = """
embed_dim : int
    Width D of the encoder output.
n_outputs : int
    Number of outputs (classes)."""

docdict["bias"] = """
bias : bool
    Whether ``in_proj`` and ``out_proj`` have biases."""

docdict["conv_bias"] = """
conv_bias : bool
    Whether the convolution has a bias."""

docdict["layer_idx"] = """
layer_idx : int | None
    Accepted for compatibility with mamba-ssm."""

docdict["factory"] = """
device, dtype : torch.device | torch.dtype | None
    Factory arguments of the parameters."""

docdict["ssm_options"] = """
inference_params : None
    Step-by-step decoding is not supported; must be None.
reverse : bool
    Run over the time-reversed sequence (output in the original
    order), as the backward half of a bidirectional block."""

docdict["scan_input"] = """
delta, du : torch.Tensor, shape (batch, length, d_inner)
    Step sizes and ``delta * u``.
At : torch.Tensor, shape (d_state, d_inner)
    Transposed state matrix diagonal.
B, C : torch.Tensor, shape (batch, length, d_state)
    Input and output projections."""

docdict["onnx_input"] = """
x : array, shape (batch, channels, n_times)
    Normalised windows.
positions : array, shape (batch, channels, 3) | (channels, 3)
    Electrode positions in metres."""

docdict["objective_batch"] = """
model : torch.nn.Module
    A model with ``pretrain_forward``, ``encode`` and ``patch_size``.
x : torch.Tensor
    ``(B, C, T)`` normalised windows.
positions : torch.Tensor
    ``(C, 3)`` or ``(B, C, 3)`` channel positions (metres).
channel_mask : torch.Tensor | None
    Bool ``(B, C)``, True for real channels."""


def _indented(text, indent):
    lines = text.strip("\n").splitlines()
    return "\n".join(indent + line if line else line for line in lines)


def fill_doc(obj):
    """Fill the ``%(name)s`` placeholders of a docstring from :data:`docdict`.

    Parameters
    ----------
    obj : callable | type
        The function or class; its ``__doc__`` is rewritten in place.

    Returns
    -------
    obj : callable | type
        The same object.
    """
    doc = obj.__doc__
    if not doc:
        return obj
    lines = []
    for line in doc.splitlines():
        stripped = line.strip()
        if stripped.startswith("%(") and stripped.endswith(")s"):
            key = stripped[2:-2]
            if key not in docdict:
                raise KeyError(f"{obj.__qualname__}: no docdict entry {key!r}")
            indent = line[: len(line) - len(line.lstrip())]
            lines.append(_indented(docdict[key], indent))
        else:
            lines.append(line)
    obj.__doc__ = "\n".join(lines)
    return obj
