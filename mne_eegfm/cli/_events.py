"""The szCORE events file ``predict`` writes next to the per-window table."""

EVENTS_FILE = ("events", ".tsv")


def model_sha256(card):
    """SHA-256 of the model's weights file as its loaded card gives it."""
    if isinstance(card, dict):
        return card.get("weights_sha256")
    return getattr(card, "weights_sha256", None)


def write_events_file(rec, result, raw, options, card):
    """Write ``*_desc-eegfm_events.tsv`` and its JSON sidecar; return the TSV.

    Runs of windows of one predicted class are merged into events; windows
    left out (BAD annotations, flat signal) and parts covered by no window are
    ``not_evaluated`` rows (see :meth:`mne_eegfm.Predictions.events`).
    """
    from ..bids import provenance, source_uri, write_sidecar
    from ..events import COLUMN_DESCRIPTIONS, write_events

    background = options.get("background")
    table = result.events(0, raw=raw, background=background)
    fname = rec.output(*EVENTS_FILE)
    write_events(fname, table)
    source = rec.name if rec.bids_path is None else source_uri(rec.bids_path)
    write_sidecar(
        fname,
        sources=[source],
        provenance=provenance(options["settings"]["model"], model_sha256(card)),
        description="Events in the szCORE annotation layout: runs of windows "
        "of one predicted class (bckg: background) and the spans not evaluated.",
        columns=COLUMN_DESCRIPTIONS,
        BackgroundClasses=list(background or []),
    )
    return fname
