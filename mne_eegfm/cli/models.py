"""``mne-eegfm models``: the available models, or the card of one."""

from pathlib import Path

import click

from ._common import echo_cv, echo_table


def _fmt_params(n):
    return f"{n / 1e6:.1f}M"


def _contract_text(contract):
    band = f"{contract.get('l_freq')}-{contract.get('h_freq')} Hz"
    notch = contract.get("notch")
    return (
        f"{contract.get('sfreq'):g} Hz, band-pass {band}"
        + (f", notch {notch} Hz" if notch else "")
        + f", {contract.get('window_s'):g}-s windows, {contract.get('units')}, "
        f"{contract.get('montage')}"
    )


@click.command()
@click.option(
    "--card",
    "card_name",
    metavar="NAME_OR_FILE",
    help="Print the model card of one model (registered name or model file).",
)
def models(card_name):
    """List the available models: size, input contract, labels, licence.

    Models marked "yes" under "here" have their weights on this machine;
    the others need the published file (see the card for where to get it).
    """
    from ..checkpoints import DEFAULT_CLASSIFIER, DEFAULT_MODEL
    from ..registry import list_models

    if card_name is not None:
        _echo_card(card_name)
        return
    entries = list_models()
    rows = [
        [
            e["name"],
            e["arch"],
            _fmt_params(e["params"]),
            "/".join(e["labels"]) if e["labels"] else "(encoder)",
            "yes" if e["available"] else "no",
            e["licence"],
        ]
        for e in entries
    ]
    echo_table(["name", "arch", "params", "labels", "here", "licence"], rows)
    click.echo("")
    contracts = {_contract_text(e["contract"]) for e in entries}
    for text in sorted(contracts):
        users = [e["name"] for e in entries if _contract_text(e["contract"]) == text]
        click.echo(f"Input contract {text}:\n  {', '.join(users)}")
    click.echo(
        f"\nDefaults: predict uses {DEFAULT_CLASSIFIER}, embed uses {DEFAULT_MODEL}. "
        "Details: mne-eegfm models --card NAME"
    )


def _card_of(name):
    """Card (a dict to print) of a registered name, a model file or an architecture."""
    from ..registry import get_entry, list_models, resolve

    listed = {entry["name"]: entry for entry in list_models()}
    if name in listed and not listed[name]["available"]:
        card = get_entry(name).card()  # the weights are elsewhere: the registry's
    else:
        resolved = _resolve(name, resolve)
        card = resolved.card
        if resolved.kind != "registry":
            shown = card.to_dict()
            shown.setdefault("contract", resolved.contract)
            shown.setdefault("name", resolved.name)
            return shown
    # The listing's fields first (size, contract, file), then the card's.
    first = {"description": card.description, "attribution": card.attribution}
    return {**listed[name], **first, **card.to_dict()}


def _resolve(name, resolve):
    try:
        return resolve(name)
    except (OSError, ValueError) as err:
        exists = any(Path(name + suffix).exists() for suffix in _SUFFIXES)
        if isinstance(err, FileNotFoundError) and not exists:
            raise click.ClickException(
                f"Unknown model {name!r}; see `mne-eegfm models` for the names."
            ) from None
        raise click.ClickException(
            f"Cannot read the model card of {name}: {err}"
        ) from None


_SUFFIXES = ("", ".json", ".safetensors")


_CARD_SKIP = ("name", "history", "weights", "weights_file")


def _echo_card(name):
    card = _card_of(name)
    title = str(card.get("name", name))
    click.echo(f"{title}\n{'=' * len(title)}")
    for key, value in card.items():
        if key in _CARD_SKIP or value in (None, "", [], {}):
            continue
        if key == "contract" and isinstance(value, dict):
            value = _contract_text(value)
        elif key == "params":
            value = f"{value:,}"
        elif key == "cross_validation":
            echo_cv(value, value["n_splits"], None)
            continue
        _echo_value(key, value, 0)


def _echo_value(key, value, depth):
    pad = "  " * depth
    if isinstance(value, dict):
        click.echo(f"{pad}{key}:")
        for sub, item in value.items():
            _echo_value(sub, item, depth + 1)
    elif isinstance(value, list | tuple):
        click.echo(f"{pad}{key}: {', '.join(map(str, value))}")
    else:
        click.echo(f"{pad}{key}: {value}")
