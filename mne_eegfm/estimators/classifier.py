"""The classifier :class:`EEGFMClassifier`: a task head on a foundation model."""

import numpy as np
import torch
from mne.utils import logger
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.utils import check_random_state
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d

from .._docs import fill_doc
from ..inference import with_window
from ..models.precision import precision_context
from ..results import Predictions, softmax
from ..utils import resolve_device
from ._backend import check_backend, onnx_runner
from ._checks import check_labels, fitted_contract, saved_params
from ._inputs import (
    check_common_params,
    log_level,
    materialise,
    n_units,
    stream,
    validate_X,
)
from ._models import build_model, card_dict, freeze
from ._training import FinetuneTrainer, ProbeTrainer, encoder_tokens, fit_loop

_MODES = ("linear-probe", "finetune")
# Parameters of the machine a classifier runs on, not of the model: a saved
# classifier takes them from load(), never from the file.
_MACHINE_PARAMS = ("device", "precision", "verbose")


def _check_count(est, name, minimum):
    """Raise a ValueError unless parameter ``name`` is an integer >= minimum."""
    value = getattr(est, name)
    if not isinstance(value, int | np.integer) or value < minimum:
        kind = "a positive" if minimum == 1 else "a non-negative"
        raise ValueError(f"{name} must be {kind} integer, got {value!r}")


@fill_doc
class EEGFMClassifier(ClassifierMixin, BaseEstimator):
    """Classify EEG windows with a foundation model and a trained head.

    Parameters
    ----------
    %(model)s
    %(weights)s
    mode : "linear-probe" | "finetune"
        ``"linear-probe"`` trains the head only, on the frozen encoder's patch
        tokens (computed once); ``"finetune"`` trains the whole model, the
        encoder with learning rate ``lr * encoder_lr_scale``.
    head : "query" | "mamba" | "linear"
        Type of the task head.
    %(windowing)s
    %(array_info)s
    %(on_missing)s
    max_epochs : int
        Maximum number of passes over the training windows.
    batch_size : int
        Number of windows per step.
    lr : float
        Learning rate of the head (AdamW).
    encoder_lr_scale : float
        Factor applied to ``lr`` for the encoder in ``"finetune"`` mode.
    probe_epochs : int
        ``"finetune"`` mode only: maximum number of epochs that train the head
        alone on the frozen encoder's tokens before the whole model is trained
        (linear probing then fine-tuning), so that fine-tuning starts from a
        trained head instead of a random one; 0 fine-tunes from the random head.
    weight_decay : float
        AdamW weight decay.
    class_weight : "balanced" | dict | None
        Weights of the classes in the loss: ``"balanced"`` uses
        n_samples / (n_classes * count) computed on the training windows.
    validation_fraction : float
        Fraction of the training data held out (stratified; whole recordings
        when X is a list of Raws) for early stopping; 0 disables it.
    patience : int
        Number of epochs without improvement of the validation loss before
        training stops; the best weights are kept.
    random_state : int | RandomState | None
        Seed of the head initialisation, the validation split, the batch order
        and dropout. With an int, fitting twice gives identical predictions
        (on the CPU; CUDA kernels may differ at floating-point precision).
    %(estimator_runtime)s

    Attributes
    ----------
    classes_ : ndarray, shape (n_classes,)
        The class labels.
    model_ : torch.nn.Module
        The trained model (encoder and head).
    contract_ : InputContract
        The input contract applied to the data.
    history_ : list of dict
        Per epoch: ``epoch``, ``train_loss``, ``valid_loss`` (NaN without a
        validation split) and ``stage`` (``"probe"`` for the head-only epochs
        that start fine-tuning, else the mode).
    n_epochs_ : int
        Number of epochs run.
    n_features_in_ : int
        n_channels * n_times of the arrays seen in fit (array input only);
        arrays given to predict must match it.

    Notes
    -----
    ``y`` has one label per window: per epoch for Epochs and arrays; for Raw
    input either one label per window or one label per Raw (given to all its
    windows). Predictions have one row per window.
    """

    def __init__(
        self,
        model=None,
        weights=None,
        mode="linear-probe",
        head="query",
        window_s=None,
        overlap=0.0,
        info=None,
        ch_names=None,
        sfreq=None,
        on_missing="raise",
        max_epochs=30,
        batch_size=32,
        lr=1e-3,
        encoder_lr_scale=0.1,
        probe_epochs=10,
        weight_decay=1e-2,
        class_weight="balanced",
        validation_fraction=0.2,
        patience=5,
        random_state=None,
        device="auto",
        precision="float32",
        model_kwargs=None,
        backend="torch",
        verbose=None,
    ):
        self.backend = backend
        self.batch_size = batch_size
        self.ch_names = ch_names
        self.class_weight = class_weight
        self.device = device
        self.precision = precision
        self.encoder_lr_scale = encoder_lr_scale
        self.head = head
        self.info = info
        self.lr = lr
        self.max_epochs = max_epochs
        self.mode = mode
        self.model = model
        self.model_kwargs = model_kwargs
        self.on_missing = on_missing
        self.overlap = overlap
        self.patience = patience
        self.probe_epochs = probe_epochs
        self.random_state = random_state
        self.sfreq = sfreq
        self.validation_fraction = validation_fraction
        self.verbose = verbose
        self.weight_decay = weight_decay
        self.weights = weights
        self.window_s = window_s

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        # Each window is z-scored per channel, so tabular data (the scikit-learn
        # check datasets) lose their scale and the model can score poorly on them.
        tags.classifier_tags.poor_score = True
        return tags

    def __getstate__(self):
        state = dict(super().__getstate__())
        net = state.pop("model_", None)
        state.pop("_onnx", None)
        if net is not None:
            state["_model_state"] = {
                "config": net.config,
                "tensors": {
                    key: value.detach().cpu() for key, value in net.state_dict().items()
                },
                "card": getattr(net, "card", None),
            }
        return state

    def __setstate__(self, state):
        saved = state.pop("_model_state", None)
        if saved is not None:
            from ..models import create_model

            with torch.random.fork_rng(devices=[]):
                net = create_model(**saved["config"])
            net.load_state_dict(saved["tensors"])
            if saved.get("card") is not None:
                net.card = saved["card"]
            state["model_"] = freeze(net)
        super().__setstate__(state)

    def __copy__(self):
        """A shallow copy sharing the frozen network (not rebuilt from a state)."""
        clone = type(self).__new__(type(self))
        clone.__dict__.update(self.__dict__)
        return clone

    # -- parameters ---------------------------------------------------------

    def _check_params(self):
        check_common_params(self)
        check_backend(self.backend)
        if self.mode not in _MODES:
            raise ValueError(
                f"mode must be 'linear-probe' or 'finetune', got {self.mode!r}"
            )
        for name, minimum in (("max_epochs", 1), ("patience", 1), ("probe_epochs", 0)):
            _check_count(self, name, minimum)
        if not 0 <= self.validation_fraction < 1:
            raise ValueError(
                "validation_fraction must be in [0, 1), got "
                f"{self.validation_fraction!r}"
            )
        for name in ("lr", "encoder_lr_scale", "weight_decay"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")

    def _labels(self, y, inputs):
        """Return one label per window."""
        if len(y) == inputs.n_windows:
            return y
        if inputs.is_raw and len(y) == inputs.n_items:
            return y[inputs.item]
        unit = "Raw" if inputs.is_raw else "epoch"
        raise ValueError(
            f"y has {len(y)} labels but X has {inputs.n_windows} windows"
            + (f" from {inputs.n_items} {unit} object(s)" if inputs.is_raw else "")
            + ": give one label per window"
            + (" or one label per Raw." if inputs.is_raw else ".")
        )

    def _class_weights(self, y_index):
        if self.class_weight is None:
            return None
        classes = np.arange(len(self.classes_))
        if isinstance(self.class_weight, str):
            if self.class_weight != "balanced":
                raise ValueError(
                    "class_weight must be 'balanced', a dict or None, got "
                    f"{self.class_weight!r}"
                )
            present = np.unique(y_index)
            weights = np.ones(len(classes))
            weights[present] = compute_class_weight(
                "balanced", classes=present, y=y_index
            )
        else:
            unknown = set(self.class_weight) - set(self.classes_.tolist())
            if unknown:
                raise ValueError(f"class_weight has unknown classes {sorted(unknown)}")
            weights = np.array(
                [float(self.class_weight.get(c, 1.0)) for c in self.classes_.tolist()]
            )
        return torch.as_tensor(weights, dtype=torch.float32)

    def _split(self, groups, y_index, seed):
        """Return (train, valid) window indices; valid is empty without a split."""
        everything = np.arange(len(y_index))
        if self.validation_fraction == 0:
            return everything, everything[:0]
        n_splits = max(2, int(round(1 / self.validation_fraction)))
        per_class = [len(np.unique(groups[y_index == c])) for c in np.unique(y_index)]
        if min(per_class) < n_splits:
            logger.info(
                f"Too few recordings/epochs per class ({min(per_class)}) for a "
                f"{self.validation_fraction:.0%} validation split: training "
                f"{self.max_epochs} epochs without early stopping."
            )
            return everything, everything[:0]
        cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        train, valid = next(cv.split(everything, y_index, groups))
        return train, valid

    # -- fitting ------------------------------------------------------------

    def _seed(self):
        return int(check_random_state(self.random_state).randint(2**31 - 1))

    def _initial_model(self, n_classes, seed=None):
        """The untrained model and its contract, as fit starts from them."""
        return build_model(
            self.model,
            self.weights,
            n_outputs=n_classes,
            head=self.head,
            model_kwargs=self.model_kwargs,
            seed=self._seed() if seed is None else seed,
        )

    def fit(self, X, y):
        """Train the head (or the whole model) on labelled windows.

        Parameters
        ----------
        X : mne.Epochs | mne.io.Raw | list of Raw or Epochs | ndarray
            Training data; arrays need ``info`` or ``ch_names`` and ``sfreq``
            at construction.
        y : array-like, shape (n_windows,) or (n_raws,)
            Labels (any hashable type, e.g. strings): one per epoch / window,
            or one per Raw.

        Returns
        -------
        self : EEGFMClassifier
            The fitted classifier.
        """
        self._check_params()
        X = validate_X(self, X, reset=True)
        y = column_or_1d(y, warn=True)
        if y.dtype.kind in "fc":
            y = check_array(y, ensure_2d=False, dtype=None, input_name="y")
        check_classification_targets(y)
        count = n_units(X)
        if count is not None and count != len(y):
            raise ValueError(
                f"X has {count} samples but y has {len(y)} labels; they must match."
            )
        classes = np.unique(y)
        if len(classes) < 2:
            raise ValueError(
                "EEGFMClassifier needs at least 2 classes in y; got only one class: "
                f"{classes.tolist()}."
            )
        seed = self._seed()
        with log_level(self.verbose):
            net, contract = self._initial_model(len(classes), seed)
            contract = with_window(contract, self.window_s)
            self.model_ = net.to(resolve_device(self.device))
            tokens, inputs, lengths = self._training_inputs(X, contract)
            y = self._labels(y, inputs)
            self.classes_ = classes
            y_index = np.searchsorted(classes, y)
            self.contract_ = fitted_contract(contract, lengths, self.window_s)
            self._train(inputs, tokens, y_index, seed)
        return self

    def _training_inputs(self, X, contract):
        """Encoder tokens (linear probe) or windows in memory (fine-tuning)."""
        if self.mode == "finetune":
            inputs = materialise(self, X, contract)
            lengths = [w.data.shape[-1] / w.sfreq for w in inputs.windows]
            return None, inputs, lengths
        net = self.model_
        outputs, inputs = stream(
            self,
            net.encode,
            X,
            contract,
            device=next(net.parameters()).device,
            desc="Encoding",
        )
        return outputs.values, inputs, outputs.durations

    def _train(self, inputs, tokens, y_index, seed):
        train, valid = self._split(inputs.item, y_index, seed)
        weights = self._class_weights(y_index[train])
        net = self.model_
        device = next(net.parameters()).device
        loss_fn = torch.nn.CrossEntropyLoss(
            weight=None if weights is None else weights.to(device)
        )

        def fit(trainer, max_epochs=self.max_epochs, stage=self.mode):
            optimizer = torch.optim.AdamW(
                trainer.param_groups(self.lr, self.encoder_lr_scale),
                weight_decay=self.weight_decay,
            )
            history = fit_loop(
                trainer, optimizer, loss_fn, y_index, (train, valid), seed=seed,
                stopping=(max_epochs, self.patience),
            )  # fmt: skip
            return [{**row, "stage": stage} for row in history]

        with torch.random.fork_rng(
            devices=[device.index or 0] if device.type == "cuda" else []
        ):
            torch.manual_seed(seed)
            with precision_context(self.precision, device):
                self.history_ = self._stages(inputs, tokens, device, fit)
        self.n_epochs_ = len(self.history_)
        freeze(net)

    def _stages(self, inputs, tokens, device, fit):
        """Train the head on tokens, then (fine-tuning) the whole model."""
        if self.mode == "linear-probe":
            return fit(ProbeTrainer(self.model_, tokens, self.batch_size, device))
        finetune = FinetuneTrainer(self.model_, inputs, self.batch_size, device)
        history = []
        if self.probe_epochs:
            tokens = encoder_tokens(finetune, inputs.n_windows)
            probe = ProbeTrainer(self.model_, tokens, self.batch_size, device)
            history = fit(probe, self.probe_epochs, "probe")
        return history + fit(finetune, self.max_epochs, "finetune")

    # -- prediction ---------------------------------------------------------

    def _outputs(self, X, accumulate=None, window_s=None, profile=False):
        """Logits of X through the streaming path, with metadata.

        ``accumulate="attention"`` also sums the channel-unification attention
        over the windows of each input; ``window_s`` replaces the window length
        of ``contract_`` (warning when it differs); ``profile=True`` gathers
        each input's :class:`~mne_eegfm.ood.InputProfile`.
        """
        check_is_fitted(self)
        self._check_params()
        X = validate_X(self, X, reset=False)
        if window_s is not None:
            window_s = self.contract_.check_window(window_s)
        with log_level(self.verbose):
            device = resolve_device(self.device)
            net = self.model_.to(device).eval()
            extra = None
            if accumulate == "attention":

                def extra(x, positions):
                    return net.channel_attention(x, positions).sum(0)

            return stream(
                self,
                onnx_runner(self, net, "forward") if self.backend == "onnx" else net,
                X,
                with_window(self.contract_, window_s),
                device=device,
                desc="Predicting",
                accumulate=extra,
                profile=profile,
            )

    def _logits(self, X):
        outputs, _ = self._outputs(X)
        return outputs.values.astype(np.float64)

    @fill_doc
    def predict_proba(self, X):
        """Class probabilities of each window.

        Parameters
        ----------
        %(X)s

        Returns
        -------
        proba : ndarray, shape (n_windows, n_classes)
            Probabilities, columns in the order of ``classes_``.
        """
        logits = self._logits(X)
        return softmax(logits)

    @fill_doc
    def decision_function(self, X):
        """Confidence scores of each window.

        Parameters
        ----------
        %(X)s

        Returns
        -------
        scores : ndarray, shape (n_windows,) or (n_windows, n_classes)
            For two classes, the logit of ``classes_[1]`` minus that of
            ``classes_[0]`` (positive favours ``classes_[1]``); otherwise the
            logits.
        """
        logits = self._logits(X)
        if logits.shape[1] == 2:
            return logits[:, 1] - logits[:, 0]
        return logits

    @fill_doc
    def predict(self, X):
        """Predict the class of each window.

        Parameters
        ----------
        %(X)s

        Returns
        -------
        y_pred : ndarray, shape (n_windows,)
            Predicted labels.
        """
        logits = self._logits(X)
        return self.classes_[np.argmax(logits, axis=1)]

    @fill_doc
    def predict_windows(self, X):
        """Predict each window and say where it lies in the recording.

        Parameters
        ----------
        %(X)s

        Returns
        -------
        table : pandas.DataFrame
            One row per window with columns ``recording`` (index of the source
            object in X), ``onset`` and ``duration`` (seconds from the start of
            the recording), ``label`` and one ``proba_<class>`` per class.
        """
        outputs, _ = self._outputs(X)
        return Predictions.from_outputs(outputs, self.classes_, None).to_dataframe()

    # -- files --------------------------------------------------------------

    def save(self, path):
        """Save the fitted classifier as safetensors plus a JSON sidecar.

        Parameters
        ----------
        path : path-like
            Destination stem; ``PATH.safetensors`` and ``PATH.json`` are written.

        Returns
        -------
        path : pathlib.Path
            The ``.safetensors`` file written.
        """
        from ..checkpoints import save_model

        check_is_fitted(self)
        card = card_dict(self.model_)
        card["labels"] = self.classes_.tolist()
        card["estimator"] = self._saved_params()
        if hasattr(self, "n_features_in_"):
            card["n_features_in"] = int(self.n_features_in_)
        card["history"] = self.history_
        return save_model(self.model_, path, contract=self.contract_, card=card)

    def _saved_params(self):
        params = self.get_params()
        params.pop("model")
        params.pop("weights")
        info = params.pop("info")
        if info is not None:
            params["ch_names"] = list(info["ch_names"])
            params["sfreq"] = float(info["sfreq"])
        if isinstance(params["class_weight"], dict):
            params["class_weight"] = [[k, v] for k, v in params["class_weight"].items()]
        if not isinstance(params["random_state"], int | type(None)):
            params["random_state"] = None
        return params

    @classmethod
    @fill_doc
    def load(cls, path, *, device="auto", precision="float32", verbose=None):
        """Load a classifier written by :meth:`save` (or a shipped classifier).

        Parameters
        ----------
        path : path-like | str
            The saved file (``.safetensors``, ``.json`` or their stem), or the
            name of a registered classifier checkpoint.
        device : str
            Device for prediction.
        precision : "float32" | "bfloat16" | "auto"
            Precision for prediction (see the class parameter ``precision``).
        %(verbose)s

        Returns
        -------
        clf : EEGFMClassifier
            A fitted classifier.
        """
        from ..checkpoints import load_model

        with log_level(verbose):
            net = load_model(path)
        card = card_dict(net)
        labels = check_labels(card.get("labels"), path)
        params = saved_params(card, cls._get_param_names(), path)
        clf = cls(
            model=str(path),
            device=device,
            precision=precision,
            verbose=verbose,
            **{k: v for k, v in params.items() if k not in _MACHINE_PARAMS},
        )
        clf.classes_ = np.asarray(labels)
        clf.model_ = freeze(net)
        clf.contract_ = net.contract
        clf.history_ = list(card.get("history") or [])
        clf.n_epochs_ = len(clf.history_)
        if "n_features_in" in card:
            clf.n_features_in_ = int(card["n_features_in"])
        return clf
