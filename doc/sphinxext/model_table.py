"""Write the table of registered checkpoints for ``models.rst``.

The table is built at each documentation build from
:func:`mne_eegfm.list_models`, so it always matches the registry.
"""

from pathlib import Path


def _band(contract):
    low, high = contract.get("l_freq"), contract.get("h_freq")
    if low is None and high is None:
        return "none"
    return f"{low or 0:g}–{high:g} Hz" if high else f"> {low:g} Hz"


def _row(model):
    contract = model["contract"]
    labels = ", ".join(model["labels"]) if model["labels"] else "— (encoder)"
    cells = [
        f"``{model['name']}``",
        f"``{model['arch']}``",
        f"{model['params'] / 1e6:.2f} M",
        str(contract.get("montage", "")),
        f"{contract['sfreq']:g} Hz, {_band(contract)}, "
        f"{contract['window_s']:g} s, {contract['units']}",
        labels,
        model["licence"],
        f"``{model['file']}``",
    ]
    lines = [f"   * - {cells[0]}"] + [f"     - {cell}" for cell in cells[1:]]
    return "\n".join(lines)


def write_model_table(out_dir):
    """Write ``model_table.rst.inc`` (a list-table of the registry) to ``out_dir``.

    Parameters
    ----------
    out_dir : pathlib.Path
        Folder of the generated include files.
    """
    from mne_eegfm import list_models

    header = [
        ".. list-table::",
        "   :header-rows: 1",
        "   :class: model-table",
        "",
        "   * - Name",
        "     - Architecture",
        "     - Parameters",
        "     - Montage",
        "     - Contract (rate, band, window, units)",
        "     - Labels",
        "     - Licence",
        "     - File",
    ]
    body = [_row(model) for model in list_models()]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    text = "\n".join(header + body) + "\n"
    (out_dir / "model_table.rst.inc").write_text(text, encoding="utf-8")
