"""Tests of the scikit-learn estimators (small random-weight models)."""

import pickle

import mne
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, GroupKFold, cross_val_score
from sklearn.pipeline import make_pipeline

from mne_eegfm import EEGFMClassifier, EEGFMEmbedder

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*randomly initialised weights:RuntimeWarning"
)

CH_NAMES = ["Fz", "C3", "Cz", "C4", "Pz", "Oz"]
SFREQ = 256.0
N_TIMES = 160  # 4 patches of 40 samples
WINDOW_S = N_TIMES / SFREQ
# A small architecture (width 2 queries x 16 = 32, one Mamba block) keeps tests fast.
TINY = dict(
    model="lumamba-tiny",
    model_kwargs={"num_queries": 2, "embed_dim": 16, "num_blocks": 1},
    batch_size=16,
    device="cpu",
)
WIDTH = 32


def _signals(rng, n_epochs, n_times=N_TIMES, shift=None):
    """Noise in volts; class 1 (if shift is given) has a 10-Hz rhythm added."""
    data = rng.standard_normal((n_epochs, len(CH_NAMES), n_times)) * 10e-6
    if shift is not None:
        t = np.arange(n_times) / SFREQ
        data[shift == 1] += 30e-6 * np.sin(2 * np.pi * 10 * t)
    return data


@pytest.fixture(scope="module")
def info():
    return mne.create_info(CH_NAMES, SFREQ, "eeg")


@pytest.fixture(scope="module")
def labelled(info):
    rng = np.random.default_rng(42)
    y = np.repeat([0, 1], 12)
    rng.shuffle(y)
    epochs = mne.EpochsArray(_signals(rng, len(y), shift=y), info, verbose=False)
    return epochs, np.where(y == 1, "alpha", "noise")


@pytest.fixture(scope="module")
def raws(info):
    rng = np.random.default_rng(1)
    return [
        mne.io.RawArray(
            rng.standard_normal((len(CH_NAMES), int(3 * SFREQ))) * 1e-5,
            info,
            verbose=False,
        )
        for _ in range(4)
    ]


def _snapshot(inst):
    return inst.get_data().copy(), inst.info.copy()


def _assert_unchanged(inst, snapshot):
    data, info = snapshot
    np.testing.assert_array_equal(inst.get_data(), data)
    assert inst.info["sfreq"] == info["sfreq"]
    assert inst.ch_names == info["ch_names"]
    assert inst.info["highpass"] == info["highpass"]
    assert inst.info["lowpass"] == info["lowpass"]
    assert inst.info["bads"] == info["bads"]


# ---------------------------------------------------------------------------
# Embedder


def test_architecture_name_warns_random_weights(labelled):
    epochs, _ = labelled
    with pytest.warns(RuntimeWarning, match="randomly initialised weights"):
        EEGFMEmbedder(**TINY).fit(epochs[:2])


def test_embedder_shapes_and_pooling(labelled):
    epochs, _ = labelled
    emb = EEGFMEmbedder(**TINY)
    z = emb.fit_transform(epochs[:5])
    assert z.shape == (5, WIDTH)
    assert z.dtype == np.float64 and np.isfinite(z).all()
    tokens = emb.set_params(pooling=None).transform(epochs[:5])
    assert tokens.shape == (5, WIDTH, N_TIMES // 40)
    # Mean pooling is the mean of the patch tokens.
    np.testing.assert_allclose(tokens.mean(axis=-1), z, rtol=1e-5, atol=1e-6)


def test_embedder_is_stateless_and_seeded(labelled):
    epochs, _ = labelled
    # No fit needed; two embedders built from the same name agree.
    z1 = EEGFMEmbedder(**TINY).transform(epochs[:3])
    z2 = EEGFMEmbedder(**TINY).transform(epochs[:3])
    np.testing.assert_array_equal(z1, z2)


def test_embedding_independent_of_batch(labelled):
    epochs, _ = labelled
    emb = EEGFMEmbedder(**TINY).fit(epochs)
    together = emb.set_params(batch_size=24).transform(epochs)
    alone = np.concatenate(
        [emb.set_params(batch_size=1).transform(epochs[[i]]) for i in (0, 7, 23)]
    )
    np.testing.assert_allclose(alone, together[[0, 7, 23]], rtol=1e-4, atol=1e-5)
    odd = emb.set_params(batch_size=5).transform(epochs)
    np.testing.assert_allclose(odd, together, rtol=1e-4, atol=1e-5)


def test_array_inputs_match_epochs(labelled, info):
    epochs, _ = labelled
    data = epochs.get_data()
    ref = EEGFMEmbedder(**TINY).transform(epochs)
    from_info = EEGFMEmbedder(info=info, **TINY).transform(data)
    names = EEGFMEmbedder(ch_names=CH_NAMES, sfreq=SFREQ, **TINY)
    flat = names.fit(data.reshape(len(data), -1)).transform(data.reshape(len(data), -1))
    np.testing.assert_allclose(from_info, ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(flat, ref, rtol=1e-5, atol=1e-6)
    assert names.n_features_in_ == len(CH_NAMES) * N_TIMES
    with pytest.raises(ValueError, match="expecting 960 features"):
        names.transform(data[:, :, :80].reshape(len(data), -1))


def test_list_of_one_epoch_epochs(labelled):
    epochs, _ = labelled
    emb = EEGFMEmbedder(**TINY)
    as_list = [epochs[i] for i in range(6)]
    np.testing.assert_allclose(
        emb.transform(as_list), emb.transform(epochs[:6]), rtol=1e-5, atol=1e-6
    )


def test_raw_and_list_of_raws(raws):
    emb = EEGFMEmbedder(window_s=WINDOW_S, **TINY)
    z = emb.transform(raws[0])
    n_windows = int(3 * SFREQ) // N_TIMES
    assert z.shape == (n_windows, WIDTH)
    both = emb.transform(raws[:2])
    assert both.shape == (2 * n_windows, WIDTH)
    np.testing.assert_allclose(both[:n_windows], z, rtol=1e-5, atol=1e-6)
    half = emb.set_params(overlap=0.5).transform(raws[0])
    assert len(half) == (int(3 * SFREQ) - N_TIMES) // (N_TIMES // 2) + 1


def test_raws_with_different_montages(raws, info):
    rng = np.random.default_rng(3)
    info4 = mne.create_info(["F3", "F4", "P3", "P4"], 128.0, "eeg")
    other = mne.io.RawArray(rng.standard_normal((4, 384)) * 1e-5, info4, verbose=False)
    emb = EEGFMEmbedder(window_s=WINDOW_S, **TINY)
    z = emb.transform([raws[0], other, raws[1]])
    assert z.shape == (12, WIDTH)
    np.testing.assert_allclose(z[8:], emb.transform(raws[1]), rtol=1e-5, atol=1e-6)


def test_user_objects_unchanged(labelled, raws):
    epochs, y = labelled
    raw = raws[0]
    before = _snapshot(epochs), _snapshot(raw)
    data = epochs.get_data()
    data_copy = data.copy()
    emb = EEGFMEmbedder(window_s=WINDOW_S, ch_names=CH_NAMES, sfreq=SFREQ, **TINY)
    emb.fit(epochs).transform(epochs)
    emb.transform(raw)
    emb.transform(data)
    clf = EEGFMClassifier(
        window_s=WINDOW_S,
        max_epochs=1,
        random_state=0,
        ch_names=CH_NAMES,
        sfreq=SFREQ,
        **TINY,
    )
    clf.fit(epochs, y).predict(epochs)
    clf.predict(raw)
    clf.predict_proba(data)
    _assert_unchanged(epochs, before[0])
    _assert_unchanged(raw, before[1])
    np.testing.assert_array_equal(data, data_copy)


def test_lazy_epochs_stay_lazy(raws):
    raw = raws[0]
    events = mne.make_fixed_length_events(raw, duration=1.0)
    lazy = mne.Epochs(
        raw,
        events,
        tmin=0.0,
        tmax=(N_TIMES - 1) / SFREQ,
        baseline=None,
        preload=False,
        verbose=False,
    )
    z = EEGFMEmbedder(**TINY).transform(lazy)
    assert z.shape == (len(events), WIDTH)
    assert not lazy.preload
    clf = EEGFMClassifier(max_epochs=1, validation_fraction=0.0, **TINY)
    clf.fit(lazy, np.arange(len(events)) % 2)
    assert clf.predict(lazy).shape == (len(events),)
    assert not lazy.preload


def test_embedder_pipeline_cross_val_with_groups(labelled):
    epochs, y = labelled
    groups = np.arange(len(y)) // 4
    pipe = make_pipeline(EEGFMEmbedder(**TINY), LogisticRegression())
    scores = cross_val_score(pipe, epochs, y, groups=groups, cv=GroupKFold(3))
    assert scores.shape == (3,) and np.all((0 <= scores) & (scores <= 1))
    # The 10-Hz rhythm of class "alpha" is visible even to random weights.
    assert scores.mean() > 0.6


def test_grid_search_on_arrays(labelled, info):
    epochs, y = labelled
    pipe = make_pipeline(EEGFMEmbedder(info=info, **TINY), LogisticRegression())
    grid = GridSearchCV(pipe, {"logisticregression__C": [0.1, 10.0]}, cv=2)
    grid.fit(epochs.get_data(), y)
    assert grid.best_params_["logisticregression__C"] in (0.1, 10.0)


def test_sliding_estimator_on_patch_tokens(labelled):
    epochs, y = labelled
    tokens = EEGFMEmbedder(pooling=None, **TINY).transform(epochs)
    sliding = mne.decoding.SlidingEstimator(LogisticRegression(), scoring="accuracy")
    scores = mne.decoding.cross_val_multiscore(sliding, tokens, y, cv=2)
    assert scores.shape == (2, N_TIMES // 40)


def test_embedder_clone_params_pickle(labelled, info):
    epochs, _ = labelled
    emb = EEGFMEmbedder(info=info, pooling=None, **TINY)
    params = emb.get_params()
    assert params["pooling"] is None and params["info"] is info
    twin = clone(emb)
    assert twin.get_params()["model_kwargs"] == TINY["model_kwargs"]
    z = emb.fit(epochs[:3]).transform(epochs[:3])
    blob = pickle.dumps(emb)
    assert len(blob) < 100_000  # the frozen model is not pickled
    np.testing.assert_array_equal(pickle.loads(blob).transform(epochs[:3]), z)
    emb.set_params(pooling="mean")
    assert emb.transform(epochs[:3]).shape == (3, WIDTH)


def test_set_params_reloads_model(labelled):
    epochs, _ = labelled
    emb = EEGFMEmbedder(**TINY)
    small = emb.transform(epochs[:2])
    wider = {**TINY["model_kwargs"], "num_queries": 3}
    assert emb.set_params(model_kwargs=wider).transform(epochs[:2]).shape == (2, 48)
    assert small.shape == (2, WIDTH)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(pooling="max"), "pooling"),
        (dict(batch_size=0), "batch_size"),
        (dict(on_missing="ignore"), "on_missing"),
        (dict(overlap=1.0), "overlap"),
    ],
)
def test_embedder_bad_params(labelled, kwargs, match):
    epochs, _ = labelled
    with pytest.raises(ValueError, match=match):
        EEGFMEmbedder(**{**TINY, **kwargs}).fit(epochs[:1])


def test_array_input_needs_metadata(labelled):
    epochs, _ = labelled
    with pytest.raises(ValueError, match="channel metadata"):
        EEGFMEmbedder(**TINY).transform(epochs.get_data())
    with pytest.raises(ValueError, match="multiple of 6"):
        EEGFMEmbedder(ch_names=CH_NAMES, sfreq=SFREQ, **TINY).transform(
            np.zeros((2, 7 * 80))
        )
    with pytest.raises(ValueError, match="NaN"):
        data = epochs.get_data()
        data[0, 0, 0] = np.nan
        EEGFMEmbedder(ch_names=CH_NAMES, sfreq=SFREQ, **TINY).transform(data)


def test_default_model_is_shipped_encoder(labelled):
    from mne_eegfm.checkpoints import DATA_DIR, DEFAULT_MODEL, get_entry

    if not (DATA_DIR / get_entry(DEFAULT_MODEL).filename).is_file():
        pytest.skip("the shipped pretrained encoder is not in this checkout yet")
    epochs, _ = labelled
    z = EEGFMEmbedder(device="cpu").transform(epochs[:2])
    assert z.shape == (2, 384) and np.isfinite(z).all()


# ---------------------------------------------------------------------------
# Classifier


def _clf(**kwargs):
    params = dict(max_epochs=4, lr=3e-3, random_state=0, **TINY)
    params.update(kwargs)
    return EEGFMClassifier(**params)


def test_classifier_string_labels_and_outputs(labelled):
    epochs, y = labelled
    clf = _clf().fit(epochs, y)
    assert list(clf.classes_) == ["alpha", "noise"]
    proba = clf.predict_proba(epochs)
    assert proba.shape == (len(y), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    pred = clf.predict(epochs)
    assert set(pred) <= {"alpha", "noise"}
    scores = clf.decision_function(epochs)
    assert scores.shape == (len(y),)
    np.testing.assert_array_equal(pred, clf.classes_[(scores > 0).astype(int)])
    assert 1 <= clf.n_epochs_ <= 4 and len(clf.history_) == clf.n_epochs_
    assert 0 <= clf.score(epochs, y) <= 1


def test_classifier_learns_the_rhythm(labelled):
    epochs, y = labelled
    clf = _clf(max_epochs=30, validation_fraction=0.0, lr=1e-2).fit(epochs, y)
    assert clf.score(epochs, y) >= 0.8


def test_classifier_reproducible(labelled):
    epochs, y = labelled
    for mode in ("linear-probe", "finetune"):
        clf = _clf(mode=mode, random_state=7, max_epochs=2)
        p1 = clf.fit(epochs, y).predict_proba(epochs)
        p2 = clone(clf).fit(epochs, y).predict_proba(epochs)
        np.testing.assert_allclose(p1, p2, rtol=1e-6, atol=1e-7)


def test_linear_probe_freezes_encoder_finetune_does_not(labelled):
    import torch

    epochs, y = labelled
    probe = _clf(mode="linear-probe", max_epochs=2).fit(epochs, y)
    tuned = _clf(mode="finetune", max_epochs=2, validation_fraction=0.0).fit(epochs, y)
    start, _ = _clf()._initial_model(2)
    for name, value in start.state_dict().items():
        if name.startswith("classifier."):
            continue
        assert torch.equal(probe.model_.state_dict()[name], value), name
    changed = [
        name
        for name, value in start.state_dict().items()
        if not name.startswith("classifier.")
        and value.is_floating_point()
        and not torch.equal(tuned.model_.state_dict()[name], value)
    ]
    assert len(changed) > 10


def test_finetune_starts_from_a_probed_head(labelled):
    import torch

    epochs, y = labelled
    kwargs = dict(mode="finetune", max_epochs=2, validation_fraction=0.0)
    clf = _clf(probe_epochs=3, **kwargs).fit(epochs, y)
    stages = [row["stage"] for row in clf.history_]
    assert stages == ["probe"] * 3 + ["finetune"] * 2 and clf.n_epochs_ == 5
    assert all(p.requires_grad is False for p in clf.model_.parameters())
    plain = _clf(probe_epochs=0, **kwargs).fit(epochs, y)
    assert [row["stage"] for row in plain.history_] == ["finetune"] * 2
    head = "classifier."
    differs = [
        name
        for name, value in clf.model_.state_dict().items()
        if name.startswith(head)
        and not torch.equal(value, plain.model_.state_dict()[name])
    ]
    assert differs  # the probe stage moved the head before fine-tuning
    with pytest.raises(ValueError, match="probe_epochs must be a non-negative"):
        _clf(probe_epochs=-1).fit(epochs, y)


def test_classifier_early_stopping(labelled):
    epochs, y = labelled
    # Random labels: the validation loss stops improving quickly.
    rng = np.random.default_rng(0)
    noise = rng.permutation(y)
    clf = _clf(max_epochs=40, patience=2, lr=3e-2, validation_fraction=0.25)
    clf.fit(epochs, noise)
    assert clf.n_epochs_ < 40
    assert all(np.isfinite(h["valid_loss"]) for h in clf.history_)


def test_class_weight_balanced(labelled):
    epochs, y = labelled
    keep = np.r_[np.flatnonzero(y == "alpha")[:3], np.flatnonzero(y == "noise")]
    clf = _clf(validation_fraction=0.0, class_weight="balanced")
    clf.fit(epochs[keep], y[keep])
    weights = clf._class_weights(np.searchsorted(clf.classes_, y[keep]))
    np.testing.assert_allclose(weights.numpy(), [15 / 6, 15 / 24], rtol=1e-6)
    with pytest.raises(ValueError, match="unknown classes"):
        _clf(class_weight={"beta": 2.0}).fit(epochs, y)


def test_classifier_raw_labels_and_windows(raws):
    clf = _clf(window_s=WINDOW_S, validation_fraction=0.0)
    clf.fit(raws, ["a", "b", "a", "b"])
    n_windows = int(3 * SFREQ) // N_TIMES
    assert clf.predict(raws[0]).shape == (n_windows,)
    table = clf.predict_windows(raws[:2])
    assert list(table.columns) == [
        "recording",
        "onset",
        "duration",
        "label",
        "proba_a",
        "proba_b",
    ]
    assert len(table) == 2 * n_windows
    np.testing.assert_allclose(
        table["onset"][:n_windows], np.arange(n_windows) * WINDOW_S
    )
    np.testing.assert_allclose(table["duration"], WINDOW_S)
    np.testing.assert_array_equal(table["recording"], np.repeat([0, 1], n_windows))
    np.testing.assert_allclose(table[["proba_a", "proba_b"]].sum(axis=1), 1.0)
    # One label per window works too.
    clf.fit(raws[:2], np.tile(["a", "b"], n_windows))
    with pytest.raises(ValueError, match="one label per window or one label per Raw"):
        clf.fit(raws, ["a", "b"])


def test_classifier_pipeline_cross_val_on_epochs(labelled):
    epochs, y = labelled
    groups = np.arange(len(y)) // 4
    scores = cross_val_score(
        _clf(max_epochs=2), epochs, y, groups=groups, cv=GroupKFold(2)
    )
    assert scores.shape == (2,)


def test_classifier_pickle_and_clone(labelled):
    epochs, y = labelled
    clf = _clf(max_epochs=2).fit(epochs, y)
    proba = clf.predict_proba(epochs[:5])
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_allclose(again.predict_proba(epochs[:5]), proba, rtol=1e-6)
    twin = clone(clf)
    assert not hasattr(twin, "model_")
    assert twin.get_params() == clf.get_params()


def test_classifier_save_load(labelled, tmp_path):
    epochs, y = labelled
    clf = _clf(max_epochs=2, mode="finetune").fit(epochs, y)
    path = clf.save(tmp_path / "clf")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clf.json", "clf.safetensors"]
    loaded = EEGFMClassifier.load(path, device="cpu")
    np.testing.assert_array_equal(loaded.classes_, clf.classes_)
    np.testing.assert_allclose(
        loaded.predict_proba(epochs), clf.predict_proba(epochs), rtol=1e-5, atol=1e-6
    )
    assert loaded.mode == "finetune" and loaded.max_epochs == 2


def test_save_load_integer_labels(labelled, tmp_path):
    epochs, y = labelled
    y_int = (y == "alpha").astype(int) + 3
    clf = _clf(max_epochs=1).fit(epochs, y_int)
    loaded = EEGFMClassifier.load(clf.save(tmp_path / "int"))
    np.testing.assert_array_equal(loaded.predict(epochs[:4]), clf.predict(epochs[:4]))
    assert loaded.classes_.dtype.kind == "i"


def test_classifier_errors(labelled):
    epochs, y = labelled
    with pytest.raises(ValueError, match="24 samples but y has 23"):
        _clf().fit(epochs, y[:-1])
    with pytest.raises(ValueError, match="only one class"):
        _clf().fit(epochs, np.full(len(y), "noise"))
    with pytest.raises(ValueError, match="mode"):
        _clf(mode="full").fit(epochs, y)
    with pytest.raises(ValueError, match="validation_fraction"):
        _clf(validation_fraction=1.0).fit(epochs, y)
    for name, bad in (("max_epochs", 0), ("patience", 2.5)):
        with pytest.raises(ValueError, match=f"{name} must be a positive integer"):
            _clf(**{name: bad}).fit(epochs, y)
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        _clf().predict(epochs)
