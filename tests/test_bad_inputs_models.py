"""Second bad-input round (#15, phase 2): model files, estimators and the API.

Each case named in the module docstring of tests/test_bad_inputs.py; a tiny
random classifier keeps these fast.
"""

import errno
import json
import warnings
from pathlib import Path

import mne
import numpy as np
import pytest
from _helpers import noise_raw

import mne_eegfm
from mne_eegfm import EEGFMClassifier, EEGFMEmbedder
from mne_eegfm.checkpoints import sidecar_paths

TINY = {"num_queries": 2, "embed_dim": 16, "num_blocks": 1}
pytestmark = pytest.mark.filterwarnings(
    "ignore:'lumamba-tiny' is an architecture name:RuntimeWarning"
)


def _classifier(**kw):
    return EEGFMClassifier(
        model="lumamba-tiny", model_kwargs=TINY, max_epochs=1,
        validation_fraction=0, device="cpu", random_state=0, verbose=False, **kw,
    )  # fmt: skip


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A classifier fitted on 5-s epochs, and its file."""
    rng = np.random.default_rng(0)
    info = mne.create_info(["Fz", "Cz", "Pz", "O1"], 256.0, "eeg")
    epochs = mne.EpochsArray(rng.standard_normal((4, 4, 1280)) * 2e-5, info)
    clf = _classifier().fit(epochs, ["a", "b"] * 2)
    path = clf.save(tmp_path_factory.mktemp("model") / "five")
    return clf, path


def _raw(seconds=20.0, sfreq=256.0, seed=1):
    return noise_raw(["Fz", "Cz", "Pz", "O1"], sfreq, seconds, seed)


def _edit_sidecar(path, tmp_path, edit):
    """A copy of a model file with its JSON sidecar edited (digest dropped)."""
    tensors, sidecar = sidecar_paths(path)
    meta = json.loads(sidecar.read_text())
    meta.pop("sidecar_sha256", None)
    edit(meta)
    out = tmp_path / "edited"
    (tmp_path / "edited.safetensors").write_bytes(tensors.read_bytes())
    (tmp_path / "edited.json").write_text(json.dumps(meta))
    return out


def test_duplicate_labels_in_a_classifier_file_raise(fitted, tmp_path):
    def edit(meta):
        meta["card"]["labels"] = ["a", "a"]

    with pytest.raises(ValueError, match=r"labels \['a', 'a'\] repeat \['a'\]"):
        EEGFMClassifier.load(_edit_sidecar(fitted[1], tmp_path, edit))


def test_classifier_fitted_on_5s_epochs_predicts_5s_windows(fitted):
    clf, path = fitted
    assert clf.contract_.window_s == pytest.approx(5.0)
    table = clf.predict_windows(_raw(20.0))
    assert np.allclose(table["duration"], 5.0) and len(table) == 4
    table = EEGFMClassifier.load(path).predict_windows(_raw(20.0))
    assert np.allclose(table["duration"], 5.0)


def test_requested_window_differing_from_the_fitted_one_warns(fitted):
    with pytest.warns(RuntimeWarning, match=r"Windows of 10 s .* expects 5-s"):
        result = mne_eegfm.predict(_raw(20.0), fitted[0], window_s=10.0)
    assert np.allclose(result.durations, 10.0)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_window_in_predict_raises(fitted, bad):
    with pytest.raises(ValueError, match="window"):
        mne_eegfm.predict(_raw(20.0), fitted[0], window_s=bad)


def test_flat_epochs_warn_naming_them_and_stay_finite(fitted):
    rng = np.random.default_rng(2)
    data = rng.standard_normal((3, 4, 1280)) * 2e-5
    data[1] = 1e-6  # every channel constant
    epochs = mne.EpochsArray(data, _raw().info)
    with pytest.warns(RuntimeWarning, match=r"1 of 3 epochs are flat.*indices 1"):
        proba = fitted[0].predict_proba(epochs)
    assert proba.shape == (3, 2) and np.isfinite(proba).all()


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda m: m["card"].update(estimator={"evil": 1}), "evil"),
        (lambda m: m["card"].update(estimator="max_epochs=1"), "estimator"),
        (lambda m: m.update(config="lumamba-tiny"), "config"),
        (lambda m: m["config"].update(num_blocks=100000), "num_blocks"),
        (lambda m: m["config"].update(embed_dim=200000), "embed_dim"),
    ],
    ids=["estimator-key", "estimator-string", "config-string", "blocks", "dim"],
)
def test_crafted_model_json_is_refused_naming_the_key(fitted, tmp_path, edit, match):
    with pytest.raises(ValueError, match=match):
        EEGFMClassifier.load(_edit_sidecar(fitted[1], tmp_path, edit))


def test_empty_model_name_is_refused():
    with pytest.raises((ValueError, FileNotFoundError), match="''|empty"):
        EEGFMClassifier.load("")


def test_all_windows_bad_says_no_windows(fitted):
    raw = _raw(20.0)
    raw.set_annotations(mne.Annotations([0], [20.0], ["BAD_all"]))
    for call in (
        lambda: fitted[0].predict_proba(raw),
        lambda: mne_eegfm.predict(raw, fitted[0]),
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            with pytest.raises(ValueError, match="No windows"):
                call()


@pytest.mark.parametrize(
    "X, name",
    [([], "list"), ("sub-01_eeg.edf", "str"), (None, "Evoked")],
    ids=["empty-list", "path", "evoked"],
)
def test_x_of_the_wrong_type_is_named(fitted, X, name):
    if X is None:
        X = mne.EvokedArray(np.zeros((4, 1280)), _raw().info)
    for call in (
        fitted[0].predict,
        EEGFMEmbedder(
            model="lumamba-tiny", model_kwargs=TINY, device="cpu"
        ).fit_transform,
        lambda X: mne_eegfm.predict(X, fitted[0]),
    ):
        with pytest.raises((TypeError, ValueError), match=name):
            call(X)


def test_disk_full_when_saving_a_classifier_names_the_file(
    fitted, tmp_path, monkeypatch
):
    import mne_eegfm.checkpoints as checkpoints

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoints, "save_file", full)
    with pytest.raises(OSError, match="No space left"):
        fitted[0].save(tmp_path / "clf")
    assert list(Path(tmp_path).iterdir()) == []
