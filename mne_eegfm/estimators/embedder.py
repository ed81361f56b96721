"""The frozen-encoder transformer :class:`EEGFMEmbedder`."""

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from .._docs import fill_doc
from ..inference import with_window
from ..utils import resolve_device
from ._backend import check_backend, onnx_runner
from ._inputs import check_common_params, log_level, stream, validate_X
from ._models import RANDOM_INIT_SEED, build_model, freeze

_POOLINGS = ("mean", None)


def _model_call(est, net):
    """``fn(x, positions)`` giving the embedder's output with its backend."""
    if est.pooling == "mean":
        if est.backend == "onnx":
            return onnx_runner(est, net, "embed")
        return net.embed
    encode = onnx_runner(est, net, "encode") if est.backend == "onnx" else net.encode

    def fn(x, positions):
        return encode(x, positions).transpose(1, 2)

    return fn


@fill_doc
class EEGFMEmbedder(TransformerMixin, BaseEstimator):
    """Embed EEG windows with a frozen foundation-model encoder.

    ``transform`` applies the model's input contract (resampling, filtering,
    windowing, normalisation) to a copy of the input and returns one embedding
    per window. ``fit`` learns nothing, so the embedder can go first in a
    :class:`~sklearn.pipeline.Pipeline`, e.g. before
    :class:`~sklearn.linear_model.LogisticRegression`.

    Parameters
    ----------
    %(model)s
    %(weights)s
    pooling : "mean" | None
        ``"mean"`` averages the patch tokens: output (n_windows, D). ``None``
        keeps them: output (n_windows, D, n_patches), the last axis being time,
        as :class:`mne.decoding.SlidingEstimator` expects.
    %(windowing)s
    %(array_info)s
    %(on_missing)s
    %(batch_size)s
    %(estimator_runtime)s

    Attributes
    ----------
    n_features_in_ : int
        n_channels * n_times of the arrays seen in fit (array input only).

    See Also
    --------
    mne_eegfm.embed : The same as a function returning onsets and skipped windows.

    Notes
    -----
    Arrays are read as MNE does: volts, shape (n_epochs, n_channels, n_times),
    or (n_epochs, n_channels * n_times) which is reshaped with the channel
    count given at construction. Each window is embedded independently: its
    embedding does not depend on the other windows of the batch (up to float32
    rounding, about 1e-6). A Raw goes through :func:`mne_eegfm.inference.run_model`
    chunk by chunk, so memory is bounded by the batch and the chunk.
    """

    def __init__(
        self,
        model=None,
        weights=None,
        pooling="mean",
        window_s=None,
        overlap=0.0,
        info=None,
        ch_names=None,
        sfreq=None,
        on_missing="raise",
        batch_size=32,
        device="auto",
        precision="float32",
        model_kwargs=None,
        backend="torch",
        verbose=None,
    ):
        self.model = model
        self.weights = weights
        self.pooling = pooling
        self.window_s = window_s
        self.overlap = overlap
        self.info = info
        self.ch_names = ch_names
        self.sfreq = sfreq
        self.on_missing = on_missing
        self.batch_size = batch_size
        self.device = device
        self.precision = precision
        self.model_kwargs = model_kwargs
        self.backend = backend
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.three_d_array = True
        return tags

    def __getstate__(self):
        state = dict(super().__getstate__())
        # The frozen model is reloaded from its source when needed.
        state.pop("_model", None)
        state.pop("_model_key", None)
        state.pop("_onnx", None)
        return state

    def _check_params(self):
        check_common_params(self)
        check_backend(self.backend)
        if self.pooling not in _POOLINGS:
            raise ValueError(f"pooling must be 'mean' or None, got {self.pooling!r}")

    def _get_model(self):
        """Return ``(model, contract)``, loading them once per configuration."""
        device = resolve_device(self.device)
        key = (
            str(self.model),
            str(self.weights),
            repr(self.model_kwargs),
            str(device),
        )
        if getattr(self, "_model_key", None) != key:
            net, contract = build_model(
                self.model,
                self.weights,
                n_outputs=None,
                head=None,
                model_kwargs=self.model_kwargs,
                seed=RANDOM_INIT_SEED,
            )
            self._model = (freeze(net).to(device), contract)
            self._model_key = key
        return self._model

    def fit(self, X, y=None):
        """Check the parameters and load the model; nothing is learned.

        Parameters
        ----------
        X : mne.Epochs | mne.io.Raw | list | ndarray
            The data (only validated for arrays).
        y : None
            Ignored.

        Returns
        -------
        self : EEGFMEmbedder
            The embedder.
        """
        self._check_params()
        validate_X(self, X, reset=True)
        with log_level(self.verbose):
            self._get_model()
        return self

    @fill_doc
    def transform(self, X):
        """Embed each window of X.

        Parameters
        ----------
        %(X)s

        Returns
        -------
        X_new : ndarray, shape (n_windows, D) or (n_windows, D, n_patches)
            Embeddings (float64), in the order of the input windows.
        """
        outputs, _ = self._outputs(X)
        return outputs.values.astype(np.float64)

    def _outputs(self, X):
        """Embeddings of validated X through the streaming path, with metadata."""
        self._check_params()
        X = validate_X(self, X, reset=False)
        with log_level(self.verbose):
            net, contract = self._get_model()
            fn = _model_call(self, net)

            return stream(
                self,
                fn,
                X,
                with_window(contract, self.window_s),
                device=next(net.parameters()).device,
                desc="Embedding",
            )
