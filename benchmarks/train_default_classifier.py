"""Train the shipped default classifier ``lumamba-tiny-gb-epilepsy``.

Fits an :class:`mne_eegfm.EEGFMClassifier` (linear probe, linear head) on the
shipped pretrained encoder ``lumamba-tiny-gb`` to tell Epilepsy from Control in
the Guinea-Bissau dataset (van Hees et al., Zenodo 10.5281/zenodo.1252141,
CC BY 4.0; all 97 subjects), after a subject-wise cross-validation, with the
command line:

    mne-eegfm fit ../shared/data/guinea-bissau-bids --target participants:group \\
        --model lumamba-tiny-gb --head linear --cv 5 --max-windows 12 \\
        --random-state 0 \\
        --name lumamba-tiny-gb-epilepsy \\
        --out mne_eegfm/data/lumamba-tiny-gb-epilepsy --overwrite

The model card written next to the weights (``.json``) records that exact
command, the cross-validated metrics, the data and its licence, and that the
model is a research demonstration, not a diagnostic device. Run from the
repository root: ``python benchmarks/train_default_classifier.py``
(``--encoder NAME_OR_PATH`` refits on another encoder, e.g. a newly shipped
default).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_data = os.environ.get("MNE_EEGFM_DATA", "../shared/data")
    parser.add_argument("--data", default=f"{default_data}/guinea-bissau-bids")
    parser.add_argument("--cv", type=int, default=5)
    parser.add_argument("--max-windows", type=int, default=12)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--encoder",
        default="lumamba-tiny-gb",
        help="Registry name or model file of the encoder to refit on.",
    )
    args = parser.parse_args()
    script = shutil.which("mne-eegfm")
    cli = [script] if script else [sys.executable, "-m", "mne_eegfm.cli"]
    out = "mne_eegfm/data/lumamba-tiny-gb-epilepsy"
    command = ["fit", args.data, "--target", "participants:group"]
    command += ["--model", args.encoder, "--head", "linear", "--cv", str(args.cv)]
    command += ["--max-windows", str(args.max_windows), "--random-state", "0"]
    command += ["--name", "lumamba-tiny-gb-epilepsy", "--out", out, "--overwrite"]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    start = time.perf_counter()
    subprocess.run(cli + command, cwd=ROOT, env=env, check=True)
    print(f"\nTrained in {time.perf_counter() - start:.0f} s")
    card = json.loads((ROOT / f"{out}.json").read_text())["card"]
    print(json.dumps(card["cross_validation"], indent=2))
    print("Card command:", card["command"])
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            cli + ["predict", "--example", "--out", tmp], cwd=ROOT, env=env, check=True
        )


if __name__ == "__main__":
    main()
