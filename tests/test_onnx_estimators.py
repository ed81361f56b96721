"""The estimators' ONNX backend gives the torch backend's outputs (1e-4)."""

import pickle

import mne
import numpy as np
import pytest
from _helpers import TINY_ESTIMATOR
from sklearn.base import clone

from mne_eegfm import EEGFMClassifier, EEGFMEmbedder

pytest.importorskip("onnxruntime")

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*randomly initialised weights:RuntimeWarning"
)

TINY = dict(TINY_ESTIMATOR, batch_size=4)


@pytest.fixture(scope="module")
def epochs():
    rng = np.random.default_rng(0)
    info = mne.create_info(["Fz", "C3", "Cz", "C4", "Pz"], 256.0, "eeg")
    data = rng.standard_normal((6, 5, 160)) * 1e-5
    return mne.EpochsArray(data, info, verbose=False)


def test_embedder_onnx_matches_torch(epochs):
    emb = EEGFMEmbedder(**TINY, backend="onnx")
    assert clone(emb).get_params()["backend"] == "onnx"
    got = emb.fit_transform(epochs)
    want = clone(emb).set_params(backend="torch").fit_transform(epochs)
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    tokens = emb.set_params(pooling=None).transform(epochs)
    want = EEGFMEmbedder(**TINY, pooling=None).fit_transform(epochs)
    assert tokens.shape == want.shape == (6, 32, 4)
    np.testing.assert_allclose(tokens, want, atol=1e-4, rtol=0)
    again = pickle.loads(pickle.dumps(emb))  # the onnxruntime session is dropped
    np.testing.assert_allclose(again.transform(epochs), tokens, atol=1e-6)


def test_classifier_trains_in_torch_predicts_in_onnx(epochs):
    y = np.array(["a", "b"] * 3)
    clf = EEGFMClassifier(**TINY, mode="finetune", max_epochs=1, random_state=0)
    clf.set_params(backend="onnx", validation_fraction=0.0).fit(epochs, y)
    got = clf.predict_proba(epochs)
    want = clone(clf).set_params(backend="torch").fit(epochs, y).predict_proba(epochs)
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    assert (clf.predict(epochs) == clf.classes_[got.argmax(1)]).all()


def test_unknown_backend(epochs):
    with pytest.raises(ValueError, match="backend must be 'torch' or 'onnx'"):
        EEGFMEmbedder(**TINY, backend="tensorrt").fit(epochs)
