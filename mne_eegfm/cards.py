"""Model cards: the typed record of what a model is, where it came from and its terms.

A card is stored in a model file's JSON sidecar (key ``"card"``) and attached to a
loaded model as ``model.card``. :class:`ModelCard` is also a read-only mapping over
:meth:`ModelCard.to_dict`, so ``card["licence"]`` and ``card.get("labels")`` work.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field, fields

# Field name -> accepted types (None is accepted by every field).
_TYPES = {
    "name": (str,),
    "arch": (str,),
    "licence": (str,),
    "source": (str,),
    "attribution": (str,),
    "description": (str,),
    "disclaimer": (str,),
    "labels": (list,),
    "contract": (dict,),
    "weights_file": (str,),
    "weights_sha256": (str,),
    "sidecar_sha256": (str,),
    "derived_from": (str,),
    "encoder": (str,),
    "encoder_card": (dict,),
    "command": (str,),
    "objective": (dict,),
    "pretraining": (dict,),
    "training_data": (dict,),
    "cross_validation": (dict,),
    "evaluation": (dict,),
    "data_licences": (dict,),
    "estimator": (dict,),
    "history": (list,),
    "n_features_in": (int,),
    "input_statistics": (dict,),
    "extra": (dict,),
}


@dataclass
class ModelCard(Mapping):
    """What a model is, where its weights come from and on which terms.

    Every field is optional (``None``). :meth:`to_dict` leaves out ``None`` fields
    and an empty ``extra``; :meth:`from_dict` refuses unknown keys and wrong types.

    Parameters
    ----------
    name : str | None
        Model name (registry name or file stem).
    arch : str | None
        Architecture configuration name (see :func:`mne_eegfm.models.list_configs`).
    licence : str | None
        Licence of the weights.
    source : str | None
        Where the weights come from.
    attribution : str | None
        Attribution text (authors, data sets, citation).
    description : str | None
        What the model does.
    disclaimer : str | None
        Limits of use (e.g. "not a diagnostic device").
    labels : list | None
        Class names (str or numbers) of the task head; ``None`` for an encoder.
    contract : dict | None
        Fields of :class:`mne_eegfm.InputContract` (filled when a model is loaded).
    weights_file : str | None
        File name (never a path) of the weights the model was loaded from.
    weights_sha256 : str | None
        SHA-256 of that weights file: what identifies the weights.
    sidecar_sha256 : str | None
        SHA-256 of the JSON sidecar's content (config, contract, card) the model
        was loaded with; with ``weights_sha256`` it identifies the model.
    derived_from : str | None
        Name of the model these weights were fine-tuned or converted from.
    encoder : str | None
        Name of the encoder a classifier was trained on.
    encoder_card : dict | None
        That encoder's card.
    command : str | None
        Command line that made the model.
    objective : dict | None
        Pretraining objective settings.
    pretraining : dict | None
        Pretraining data (data set names, relative paths) and settings.
    training_data : dict | None
        Data a task head was trained on.
    cross_validation : dict | None
        Cross-validated scores of a task model.
    evaluation : dict | None
        Other evaluation results.
    data_licences : dict | None
        Licence of each data set used.
    estimator : dict | None
        Parameters of the scikit-learn estimator that saved the model.
    history : list | None
        Training history (one dict per epoch).
    n_features_in : int | None
        Number of input channels seen in ``fit``.
    input_statistics : dict | None
        Reference statistics of the training inputs, for out-of-distribution
        checks.
    extra : dict
        Anything else.
    """

    name: str | None = None
    arch: str | None = None
    licence: str | None = None
    source: str | None = None
    attribution: str | None = None
    description: str | None = None
    disclaimer: str | None = None
    labels: list | None = None
    contract: dict | None = None
    weights_file: str | None = None
    weights_sha256: str | None = None
    sidecar_sha256: str | None = None
    derived_from: str | None = None
    encoder: str | None = None
    encoder_card: dict | None = None
    command: str | None = None
    objective: dict | None = None
    pretraining: dict | None = None
    training_data: dict | None = None
    cross_validation: dict | None = None
    evaluation: dict | None = None
    data_licences: dict | None = None
    estimator: dict | None = None
    history: list | None = None
    n_features_in: int | None = None
    input_statistics: dict | None = None
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if isinstance(self.labels, tuple):
            self.labels = list(self.labels)
        _check_types(self.__dict__, "ModelCard")

    def to_dict(self):
        """Return the card as a JSON-serialisable dict (``None`` fields left out).

        Returns
        -------
        card : dict
            The card.
        """
        out = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if value is not None and not (item.name == "extra" and not value):
                out[item.name] = value
        return out

    @classmethod
    def from_dict(cls, card, *, where="model card"):
        """Build a card from a dict, refusing unknown keys and wrong types.

        Parameters
        ----------
        card : dict | ModelCard | None
            The card (``None`` gives an empty card).
        where : str
            What the card comes from (e.g. a file name), used in error messages.

        Returns
        -------
        card : ModelCard
            The card.
        """
        if card is None:
            return cls()
        if isinstance(card, ModelCard):
            return cls(**card.__dict__)
        values = json_object(
            card,
            f"The model card of {where}",
            known=_TYPES,
            unknown_message=f"Unknown model card key(s) in {where}: {{}}. "
            "Put other information under 'extra'.",
        )
        if isinstance(values.get("labels"), tuple):
            values["labels"] = list(values["labels"])
        _check_types(values, where)
        if values.get("extra") is None:
            values.pop("extra", None)
        return cls(**values)

    def __getitem__(self, key):
        return self.to_dict()[key]

    def __iter__(self):
        return iter(self.to_dict())

    def __len__(self):
        return len(self.to_dict())


def json_object(value, what, known=None, unknown_message=None):
    """A copy of ``value`` after checking it is a JSON object of known keys.

    Parameters
    ----------
    value : object
        The parsed JSON value.
    what : str
        How error messages name it (e.g. ``"The model card of f.json"``).
    known : collection of str | None
        The keys allowed (None: any).
    unknown_message : str | None
        Message for unknown keys; ``{}`` receives them, comma-separated.

    Returns
    -------
    value : dict
        A shallow copy.
    """
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be a JSON object, got {type(value).__name__}.")
    known = value if known is None else known
    unknown = sorted(str(key) for key in value if key not in known)
    if unknown:
        message = unknown_message or f"{what} has unknown key(s): {{}}."
        raise ValueError(message.format(", ".join(unknown)))
    return dict(value)


def _check_types(values, where):
    for key, value in values.items():
        types = _TYPES[key]
        is_bool = isinstance(value, bool) and bool not in types
        wrong = value is not None and (not isinstance(value, types) or is_bool)
        if wrong:
            expected = " or ".join(t.__name__ for t in types)
            raise ValueError(
                f"Model card key {key!r} in {where} must be {expected} or null, got "
                f"{type(value).__name__}."
            )
    labels = values.get("labels")
    if labels is not None and not all(
        isinstance(label, (str, int, float)) for label in labels
    ):
        raise ValueError(
            f"Model card key 'labels' in {where} must be a list of class names "
            "(str or numbers)."
        )
