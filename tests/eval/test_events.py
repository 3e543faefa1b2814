"""motmetrics event log: cross-checked against TrackEval where both must agree."""

from __future__ import annotations

import motmetrics as mm
import pytest

from cstrack.eval import COMBINED, EVENT_TYPES, accumulate, evaluate_prepared, event_log, prepare
from cstrack.paths import shared_data

GOLDEN = shared_data() / "eval-golden"


@pytest.fixture(scope="module")
def tud():
    prepared = prepare(GOLDEN / "tud/gt", GOLDEN / "tud/trackers/motmetrics-test/data", None, "mot15")
    return prepared, evaluate_prepared(prepared)


def test_motmetrics_equals_trackeval_without_distractors(tud):
    """TUD has no distractor classes: MOTA, IDF1 and IDSW agree per sequence and overall."""
    prepared, result = tud
    accs = [accumulate(p) for p in prepared]
    names = [p.name for p in prepared]
    summary = mm.metrics.create().compute_many(
        accs, metrics=["mota", "idf1", "num_switches", "num_false_positives", "num_misses"],
        names=names, generate_overall=True,
    )
    for name, row in zip([*names, COMBINED], [*names, "OVERALL"], strict=True):
        ours = result[name]
        assert summary.loc[row, "mota"] == pytest.approx(ours["MOTA"], abs=1e-12)
        assert summary.loc[row, "idf1"] == pytest.approx(ours["IDF1"], abs=1e-12)
        assert int(summary.loc[row, "num_switches"]) == ours["IDSW"]
        assert int(summary.loc[row, "num_false_positives"]) == ours["FP"]
        assert int(summary.loc[row, "num_misses"]) == ours["FN"]
    # and the published motmetrics reference numbers (data/README.md)
    assert summary.loc["OVERALL", "mota"] == pytest.approx(0.555116, abs=1e-6)
    assert summary.loc["OVERALL", "idf1"] == pytest.approx(0.624296, abs=1e-6)


def test_event_rows_one_per_object_and_hypothesis(tud):
    prepared, result = tud
    for p in prepared:
        ev = event_log(p)
        assert list(ev.columns) == ["sequence", "frame", "event", "gt_id", "track_id", "iou"]
        assert set(ev["event"]) <= set(EVENT_TYPES)
        counts = ev["event"].value_counts()
        m = result[p.name]
        assert counts["MATCH"] + counts["SWITCH"] == m["TP"]
        assert counts["SWITCH"] == m["IDSW"] and counts["MISS"] == m["FN"] and counts["FP"] == m["FP"]
        # every kept gt box and every kept result box appears exactly once in its frame
        gt_rows = ev.dropna(subset=["gt_id"])
        assert len(gt_rows) == m["gt_dets"] and not gt_rows.duplicated(["frame", "gt_id"]).any()
        tr_rows = ev.dropna(subset=["track_id"])
        assert len(tr_rows) == m["tracker_dets"] and not tr_rows.duplicated(["frame", "track_id"]).any()
        paired = ev[ev["event"].isin(["MATCH", "SWITCH"])]
        assert (paired["iou"] >= 0.5).all() and ev.loc[~ev.index.isin(paired.index), "iou"].isna().all()


def test_event_log_uses_the_preset_preprocessing():
    """On MOT20 the log scores the same boxes as TrackEval (distractor matches removed)."""
    prepared = prepare(GOLDEN / "mot20/gt", GOLDEN / "mot20/trackers/MPNTrack/data", None, "mot20")
    ev = event_log(prepared[0])
    counts = ev["event"].value_counts()
    # EXPECTED.json: FP 391, FN 6338, IDSW 53 for MOT20-01
    assert (counts["FP"], counts["MISS"], counts["SWITCH"]) == (391, 6338, 53)
