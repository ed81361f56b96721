"""An EEGFMClassifier pipeline in MOABB's evaluations, on its offline FakeDataset."""

import pytest
from sklearn.pipeline import make_pipeline

from mne_eegfm import EEGFMClassifier

moabb = pytest.importorskip("moabb")

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*randomly initialised weights:RuntimeWarning"),
    # FakeDataset's 128 Hz is below the contract's low-pass; epochs are cropped
    pytest.mark.filterwarnings("ignore:.*low-pass is lowered:RuntimeWarning"),
    pytest.mark.filterwarnings("ignore:.*centre-cropped:RuntimeWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning:moabb"),
]


@pytest.fixture
def setup(tmp_path, monkeypatch):
    from moabb.datasets.fake import FakeDataset
    from moabb.paradigms import LeftRightImagery

    monkeypatch.setenv("MNE_DATA", str(tmp_path))
    monkeypatch.setenv("MOABB_RESULTS", str(tmp_path))
    dataset = FakeDataset(
        event_list=("left_hand", "right_hand"),
        n_subjects=2,
        n_sessions=1,
        n_runs=1,
        n_events=10,
        duration=50,
        channels=("Fz", "C3", "Cz", "C4", "Pz"),
        sfreq=128,
        seed=0,
    )
    paradigm = LeftRightImagery(fmin=1, fmax=40, tmin=0.0, tmax=2.5)
    # What a MOABB user writes: a dict of named scikit-learn pipelines.
    pipelines = {
        "EEGFM": make_pipeline(
            EEGFMClassifier(
                model="lumamba-tiny",
                model_kwargs={"num_queries": 2, "embed_dim": 16, "num_blocks": 1},
                window_s=1.25,
                max_epochs=2,
                batch_size=16,
                device="cpu",
                random_state=0,
            )
        )
    }
    return dataset, paradigm, pipelines


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param("WithinSessionEvaluation", marks=pytest.mark.slow),  # 4 fits
        "CrossSubjectEvaluation",
    ],
)
def test_moabb_evaluation(kind, setup, tmp_path):
    from moabb import evaluations

    dataset, paradigm, pipelines = setup
    options = {"n_splits": 2} if kind == "WithinSessionEvaluation" else {}
    evaluation = getattr(evaluations, kind)(
        paradigm=paradigm,
        datasets=[dataset],
        overwrite=True,
        hdf5_path=str(tmp_path),
        return_epochs=True,  # the estimator reads channel names and positions
        **options,
    )
    results = evaluation.process(pipelines)
    assert set(results["pipeline"]) == {"EEGFM"}
    assert sorted(results["subject"].astype(str)) == ["1", "2"]
    assert results["score"].between(0, 1).all()
