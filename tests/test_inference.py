"""The one streaming path: bounded chunks, skipped windows, API = estimators = CLI."""

import mne
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import mne_eegfm
from mne_eegfm import EEGFMClassifier, EEGFMEmbedder
from mne_eegfm.cli import main
from mne_eegfm.inference import _chunks
from mne_eegfm.preprocessing import InputContract


def test_chunks_bounded_whatever_the_overlap(make_raw):
    """A chunk never holds more windows than a chunk without overlap would."""
    raw = make_raw(duration=60.0)
    contract = InputContract(window_s=1.25)
    for overlap, expected in ((0.0, 48), (0.99, 5014)):
        sizes = [len(w) for w in _chunks(raw, contract, overlap, "raise", 32)]
        assert sum(sizes) == expected
        assert max(sizes) <= 600 / 1.25


def _with_bad(raw, onset, duration, description="BAD_artefact"):
    raw = raw.copy()
    raw.set_annotations(mne.Annotations([onset], [duration], [description]))
    return raw


def test_predict_api_skipped_windows_and_estimator(make_raw, tiny_model):
    raw = _with_bad(make_raw(duration=40.0), 12.0, 3.0)
    result = mne_eegfm.predict(raw, model=tiny_model)
    assert isinstance(result, mne_eegfm.Predictions)
    # 8 windows of 5 s; the one covering 10-15 s overlaps the annotation
    np.testing.assert_allclose(result.onsets, [0, 5, 15, 20, 25, 30, 35])
    np.testing.assert_allclose(result.durations, 5.0)
    assert result.n_skipped == 1
    row = result.skipped.iloc[0]
    assert (
        row["onset"] == 10.0
        and row["reason"] == "overlaps the annotation 'BAD_artefact'"
    )
    np.testing.assert_allclose(result.proba.sum(axis=1), 1.0)
    clf = EEGFMClassifier.load(tiny_model)
    pd.testing.assert_frame_equal(result.to_dataframe(), clf.predict_windows(raw))
    summary = result.summary()
    assert summary["n_windows"] == 7 and summary["n_skipped"] == 1


def test_embed_api_matches_transform(make_raw, make_epochs, tiny_model):
    raw = make_raw(duration=31.0)
    result = mne_eegfm.embed(raw, model=tiny_model, overlap=0.5)
    emb = EEGFMEmbedder(model=tiny_model, overlap=0.5).transform(raw)
    np.testing.assert_array_equal(result.embeddings, emb.astype(np.float32))
    np.testing.assert_allclose(np.diff(result.onsets), 2.5)
    assert result.n_skipped == 0 and result.ch_names == [["Fz", "Cz", "Pz", "O1"]]
    epochs = make_epochs(n_epochs=3)
    assert mne_eegfm.embed([epochs, raw], model=tiny_model).pooled().shape == (2, 32)
    with pytest.raises(TypeError, match="use EEGFMEmbedder"):
        mne_eegfm.embed(np.zeros((2, 4, 1280)), model=tiny_model)


def test_every_window_bad_is_a_clear_error(make_raw, tiny_model, tmp_path):
    raw = _with_bad(make_raw(duration=20.0), 0.0, 20.0)
    with pytest.raises(ValueError, match="No windows to process.*BAD annotations"):
        mne_eegfm.predict(raw, model=tiny_model)
    fname = tmp_path / "all_bad_raw.fif"
    raw.save(fname)
    result = CliRunner().invoke(
        main, ["predict", str(fname), "--model", tiny_model, "--out", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert "No windows to process" in result.output
    assert "4 window(s) left out" in result.output


def test_estimators_and_cli_identical(make_raw, tiny_model, tmp_path):
    """The estimators, the functions and the command line share one path."""
    raw = make_raw(duration=62.0, seed=3)
    fname = tmp_path / "rec_raw.fif"
    raw.save(fname)
    out = tmp_path / "out"
    args = [str(fname), "--model", tiny_model, "--out", str(out), "--overlap", "0.5"]
    for command in ("predict", "embed"):
        result = CliRunner().invoke(main, [command, *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
    raw = mne.io.read_raw_fif(fname, verbose=False)
    table = pd.read_csv(out / "rec_raw_desc-eegfm_predictions.tsv", sep="\t")
    expected = EEGFMClassifier.load(tiny_model, verbose=False).set_params(overlap=0.5)
    expected = expected.predict_windows(raw).drop(columns="recording")
    pd.testing.assert_frame_equal(table, expected, check_exact=True)
    emb = EEGFMEmbedder(model=tiny_model, overlap=0.5).transform(raw)
    with np.load(out / "rec_raw_desc-eegfm_embeddings.npz") as data:
        np.testing.assert_array_equal(data["embeddings"], emb.astype(np.float32))
