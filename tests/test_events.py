import csv
from datetime import datetime, timezone

import mne
import numpy as np
import pytest

from mne_eegfm import events

SZCORE = [
    "onset",
    "duration",
    "eventType",
    "confidence",
    "channels",
    "dateTime",
    "recordingDuration",
]


def _read_szcore(fname):
    """Parse a TSV to the published szCORE column definition (not our code)."""
    with open(fname, encoding="utf-8", newline="") as fid:
        rows = list(csv.DictReader(fid, delimiter="\t"))
    assert list(rows[0])[:7] == SZCORE
    out = []
    for row in rows:
        conf = row["confidence"]
        out.append(
            {
                "onset": float(row["onset"]),
                "duration": float(row["duration"]),
                "eventType": row["eventType"],
                "confidence": None if conf == "n/a" else float(conf),
                "channels": row["channels"],
                "dateTime": datetime.strptime(row["dateTime"], "%Y-%m-%d %H:%M:%S"),
                "recordingDuration": float(row["recordingDuration"]),
            }
        )
    return out


@pytest.fixture
def table():
    # 12 windows of 5 s over 0-60 s, windows 6-7 (30-40 s) skipped for BAD_
    # and a 3-s tail (60-63 s) shorter than a window
    onsets = [0, 5, 10, 15, 20, 25, 40, 45, 50, 55]
    labels = ["Control"] * 2 + ["Epilepsy"] * 3 + ["Control"] + ["Epilepsy"] * 4
    conf = [0.9, 0.7, 0.6, 0.8, 1.0, 0.55, 0.7, 0.7, 0.9, 0.9]
    return events.window_events(
        onsets,
        5.0,
        labels,
        conf,
        recording_duration=63.0,
        skipped=[(30.0, 10.0, "BAD_muscle")],
        background="Control",
        meas_date=datetime(2020, 9, 13, 12, 26, 40, tzinfo=timezone.utc),
    )


def test_window_events_merge(table, tmp_path):
    fname = tmp_path / "sub-01_task-rest_desc-eegfm_events.tsv"
    events.write_events(fname, table)
    rows = _read_szcore(fname)
    got = [(r["onset"], r["duration"], r["eventType"]) for r in rows]
    assert got == [
        (0.0, 10.0, "bckg"),
        (10.0, 15.0, "Epilepsy"),
        (25.0, 5.0, "bckg"),
        (30.0, 10.0, "not_evaluated"),
        (40.0, 20.0, "Epilepsy"),
        (60.0, 3.0, "not_evaluated"),
    ]
    confidence = [r["confidence"] for r in rows]
    assert confidence[:3] == pytest.approx([0.8, 0.8, 0.55])
    assert confidence[3] is None and confidence[4] == pytest.approx(0.8)
    assert {r["dateTime"] for r in rows} == {datetime(2020, 9, 13, 12, 26, 40)}
    assert {r["recordingDuration"] for r in rows} == {63.0}
    assert table["reason"].tolist()[3::2] == ["BAD_muscle", events.NO_WINDOW]
    assert [p.name for p in tmp_path.iterdir()] == [fname.name]  # atomic


def test_events_score_with_timescoring(table, tmp_path):
    from timescoring import scoring
    from timescoring.annotations import Annotation

    fname = tmp_path / "events.tsv"
    events.write_events(fname, table)
    rows = _read_szcore(fname)
    hyp = [
        (r["onset"], r["onset"] + r["duration"])
        for r in rows
        if r["eventType"] == "Epilepsy"
    ]
    n = int(rows[0]["recordingDuration"])
    ref = Annotation([(10.0, 25.0), (40.0, 60.0)], 1, n)
    param = scoring.EventScoring.Parameters(0, 0, 0.9, 300, 0)  # strict: no merge
    score = scoring.EventScoring(ref, Annotation(hyp, 1, n), param)
    assert (score.tp, score.fp, score.refTrue) == (2, 0, 2)
    sample = scoring.SampleScoring(ref, Annotation(hyp, 1, n))
    assert sample.fp == 0 and sample.tp == 35


def test_window_events_edge_cases():
    # no window at all: the whole recording is not evaluated, never background
    table = events.window_events([], 5.0, [], [], recording_duration=12.0)
    assert table["eventType"].tolist() == ["not_evaluated"]
    assert table["duration"].tolist() == [12.0]
    assert table["dateTime"].tolist() == ["n/a"]
    # overlapping windows (50 %) merge into one event spanning their union
    table = events.window_events(
        [0, 2.5, 5], 5.0, ["a"] * 3, [0.5, 0.6, 0.7], recording_duration=10.0
    )
    assert table[["onset", "duration"]].to_numpy().tolist() == [[0, 10]]
    with pytest.raises(ValueError, match="in \\[0, 1\\], got nan"):
        events.window_events([0], 5, ["a"], [np.nan], recording_duration=5)
    with pytest.raises(ValueError, match="3 onsets, 2 labels"):
        events.window_events([0, 5, 10], 5, ["a", "b"], [1, 1], recording_duration=15)


def test_to_annotations(table):
    raw = mne.io.RawArray(np.zeros((1, 63 * 100)), mne.create_info(1, 100.0, "eeg"))
    raw.set_meas_date(datetime(2020, 9, 13, 12, 26, 40, tzinfo=timezone.utc))
    ann = events.to_annotations(table, orig_time=raw.info["meas_date"])
    raw.set_annotations(raw.annotations + ann)
    assert list(raw.annotations.description) == [
        "bckg",
        "Epilepsy",
        "bckg",
        "not_evaluated: BAD_muscle",
        "Epilepsy",
        "not_evaluated: no complete window",
    ]
    np.testing.assert_allclose(raw.annotations.onset, table["onset"])
    assert raw.annotations.extras[1]["confidence"] == pytest.approx(0.8)
    assert raw.annotations.extras[3]["confidence"] is None
