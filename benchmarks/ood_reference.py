"""Input statistics of the shipped encoder's training data, and a check of them.

Computes :func:`mne_eegfm.ood.reference_statistics` on the Guinea-Bissau
recordings the shipped ``lumamba-tiny-gb`` encoder was trained on (all
subjects except the card's ``holdout_subjects``), with the encoder's input
contract, and writes them to ``benchmarks/ood_reference_lumamba-tiny-gb.json``
(for the card's ``input_statistics``). It then assesses recordings the
statistics never saw and prints one row each: the held-out Guinea-Bissau
subjects (same device: should not be flagged), recordings from other devices
(EEG Motor Movement/Imagery, 64 channels at 160 Hz; EEGLAB's 32-channel sample;
and white noise at 1e-3 V on the Emotiv channels (should
be flagged).

Usage: ``python benchmarks/ood_reference.py`` (data in ``MNE_EEGFM_DATA``,
default ``../shared/data``; about 2 minutes on 2 cores).
"""

import json
import os
import sys
import time
from pathlib import Path

import mne
import numpy as np

from mne_eegfm.ood import assess, reference_statistics
from mne_eegfm.preprocessing import InputContract, read_raw

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MNE_EEGFM_DATA", ROOT.parent / "shared" / "data"))
CARD = ROOT / "mne_eegfm" / "data" / "lumamba-tiny-gb.json"
OUT = ROOT / "benchmarks" / "ood_reference_lumamba-tiny-gb.json"


def gb_recordings(subjects):
    for sub in subjects:
        path = DATA / "guinea-bissau-bids" / sub / "eeg"
        yield read_raw(next(path.glob("*_eeg.edf")), verbose="error")


def other_devices():
    """(label, Raw) of recordings from devices other than the Emotiv EPOC."""
    for folder in sorted((DATA / "eegmmidb").glob("S*")):
        path = sorted(folder.glob("*.edf"))[0]  # one run per subject
        yield f"eegmmidb {path.stem}", read_raw(path, verbose="error")
    for path in sorted((DATA / "formats" / "eegbci-S003" / "raw").glob("*.edf")):
        yield f"eegbci {path.stem}", read_raw(path, verbose="error")
    sample = DATA / "formats" / "eeglab-sample-data" / "eeglab_data.set"
    if sample.exists():
        yield "eeglab sample (32 ch)", read_raw(sample, verbose="error")


def white_noise(ch_names, seconds=60.0, sfreq=128.0):
    rng = np.random.default_rng(0)
    data = rng.standard_normal((len(ch_names), int(seconds * sfreq))) * 1e-3
    info = mne.create_info(ch_names, sfreq, "eeg")
    return mne.io.RawArray(data, info, verbose=False)


def main():
    model = json.loads(CARD.read_text())
    contract = InputContract.from_dict(model["contract"])
    held_out = set(model["card"]["pretraining"]["holdout_subjects"])
    subjects = sorted(p.name for p in (DATA / "guinea-bissau-bids").glob("sub-*"))
    train = [s for s in subjects if s not in held_out]
    t0 = time.perf_counter()
    reference = reference_statistics(gb_recordings(train), contract, verbose="error")
    took = time.perf_counter() - t0
    OUT.write_text(json.dumps(reference, indent=1) + "\n")
    print(f"reference: {len(train)} training recordings in {took:.0f} s -> {OUT.name}")
    print(json.dumps(reference["thresholds"]))
    rows = []
    for sub, raw in zip(sorted(held_out), gb_recordings(sorted(held_out))):
        rows.append(("GB held-out " + sub, assess(raw, reference, verbose="error")))
    for label, raw in other_devices():
        rows.append((label, assess(raw, reference, verbose="error")))
    noise = white_noise(next(gb_recordings(train[:1])).ch_names)
    rows.append(("white noise 1e-3 V", assess(noise, reference, verbose="error")))
    print(f"{'recording':28} {'flag':5} {'score':>6} {'montage':>8} {'ampl':>6} "
          f"{'spectr':>6}  reasons")  # fmt: skip
    for label, res in rows:
        d = res.details
        print(
            f"{label:28} {str(res.flagged):5} {res.score:6.2f} "
            f"{d['montage_overlap']:8.2f} {d.get('amplitude_ratio', 0):6.2f} "
            f"{d.get('spectrum_distance', 0):6.2f}  {'; '.join(res.reasons)}"
        )
    held = [r for label, r in rows if label.startswith("GB held-out")]
    other = [r for label, r in rows if not label.startswith("GB held-out")]
    print(
        f"flagged: GB held-out {sum(r.flagged for r in held)}/{len(held)}, "
        f"other devices and noise {sum(r.flagged for r in other)}/{len(other)}"
    )


if __name__ == "__main__":
    sys.exit(main())
