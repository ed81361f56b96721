"""The ``precision`` parameter through estimators, API, load_model and the CLI.

bfloat16 capability is simulated (the CPU flag lookup is monkeypatched), so
these tests check correctness, not speed (see benchmarks/throughput.py).
"""

import numpy as np
import pytest
from _helpers import TINY_ESTIMATOR
from click.testing import CliRunner

import mne_eegfm
from mne_eegfm import EEGFMClassifier, EEGFMEmbedder
from mne_eegfm.checkpoints import load_model
from mne_eegfm.cli import main
from mne_eegfm.models import precision

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*randomly initialised weights:RuntimeWarning"
)
TINY = dict(TINY_ESTIMATOR, batch_size=8)


def _relative_error(a, b):
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    return np.linalg.norm(a - b, axis=1) / np.linalg.norm(b, axis=1)


def test_embedder_float32_unchanged_and_auto(make_epochs, no_bf16_cpu):
    epochs = make_epochs(n_epochs=3)
    ref = EEGFMEmbedder(**TINY).transform(epochs)
    auto = EEGFMEmbedder(precision="auto", **TINY).transform(epochs)
    np.testing.assert_array_equal(auto, ref)  # auto is float32 without bf16


def test_embedder_bfloat16_close(make_epochs, bf16_cpu):
    epochs = make_epochs(n_epochs=3)
    ref = EEGFMEmbedder(**TINY).transform(epochs)
    emb = EEGFMEmbedder(precision="bfloat16", **TINY)
    low = emb.transform(epochs)
    assert low.dtype == np.float64 and np.isfinite(low).all()
    assert not np.array_equal(low, ref)  # bfloat16 did run
    assert _relative_error(low, ref).max() < 2e-2
    tokens = EEGFMEmbedder(precision="bfloat16", pooling=None, **TINY)
    assert _relative_error(tokens.transform(epochs), emb.set_params(pooling=None)
                           .set_params(precision="float32").transform(epochs)
                           ).max() < 2e-2  # fmt: skip


def test_unsupported_precision_errors(make_epochs, tiny_model, no_bf16_cpu):
    epochs = make_epochs(n_epochs=2)
    with pytest.raises(ValueError, match="CPU .* neither AMX-BF16"):
        EEGFMEmbedder(precision="bfloat16", **TINY).fit(epochs)
    with pytest.raises(ValueError, match="precision must be one of"):
        EEGFMEmbedder(precision="float16", **TINY).transform(epochs)
    with pytest.raises(ValueError, match="neither AMX-BF16"):
        load_model(tiny_model, precision="bfloat16")
    clf = EEGFMClassifier(precision="bfloat16", max_epochs=1, **TINY)
    assert clf.get_params()["precision"] == "bfloat16"  # stored, not checked
    with pytest.raises(ValueError, match="neither AMX-BF16"):
        clf.fit(epochs, [0, 1])


def test_classifier_and_api_bfloat16(make_epochs, make_raw, tiny_model, bf16_cpu):
    epochs = make_epochs(n_epochs=6)
    y = np.array([0, 1] * 3)
    clf = EEGFMClassifier(
        precision="bfloat16", max_epochs=1, validation_fraction=0, random_state=0,
        **TINY,
    )  # fmt: skip
    proba = clf.fit(epochs, y).predict_proba(epochs)
    assert np.isfinite(proba).all() and np.allclose(proba.sum(1), 1)
    net = load_model(tiny_model, precision="bfloat16")
    assert net.precision == "bfloat16"
    raw = make_raw(duration=25.0)
    ref = mne_eegfm.predict(raw, tiny_model, device="cpu")
    low = mne_eegfm.predict(raw, tiny_model, device="cpu", precision="bfloat16")
    assert np.abs(low.proba - ref.proba).max() < 0.02


def test_cli_precision(make_raw, tiny_model, tmp_path, bf16_cpu, monkeypatch):
    fname = tmp_path / "rec_raw.fif"
    make_raw(duration=25.0).save(fname)
    tables = {}
    for value in ("float32", "bfloat16"):
        out = tmp_path / value
        args = ["predict", str(fname), "--model", tiny_model, "--out", str(out),
                "--precision", value]  # fmt: skip
        result = CliRunner().invoke(main, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        tsv = next(out.glob("*_predictions.tsv"))
        tables[value] = np.loadtxt(tsv, skiprows=1, usecols=(3, 4), delimiter="\t")
    assert np.abs(tables["bfloat16"] - tables["float32"]).max() < 0.02
    monkeypatch.setattr(precision, "cpu_bf16_feature", lambda: None)
    args = ["embed", str(fname), "--out", str(tmp_path / "e"), "--precision",
            "bfloat16"]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "CPU" in lines[0] and "bfloat16" in lines[0]


def test_sys_info_names_bf16(capsys, no_bf16_cpu):
    mne_eegfm.sys_info()
    line = [x for x in capsys.readouterr().out.splitlines() if "bfloat16:" in x]
    assert len(line) == 1 and "no:" in line[0] and "CPU" in line[0]


def test_precision_in_docs():
    for obj in (EEGFMEmbedder, EEGFMClassifier, mne_eegfm.embed, load_model):
        assert 'precision : "float32" | "bfloat16" | "auto"' in obj.__doc__
