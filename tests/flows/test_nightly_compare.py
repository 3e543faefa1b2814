"""tasks.compare: previous-run selection and thresholds, with hand-computed numbers."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from tasks.compare import FAIL, OK, WARN, compare_runs, previous_runs

T0 = dt.datetime(2026, 1, 1, 2, 0, tzinfo=dt.UTC)
THRESHOLDS = {"metric_warn": 0.005, "metric_fail": 0.02, "fps_warn": 0.15, "fps_fail": 0.40, "metrics": ["MOTA", "IDF1"]}


def _runs() -> pd.DataFrame:
    rows = [
        # run_id, tag, dataset, split, mode, tracker, started
        ("n1", "nightly", "mot17-mini", "train", "private", "cstrack-n", T0),
        ("n2", "nightly", "mot17-mini", "train", "private", "cstrack-n", T0 + dt.timedelta(days=1)),
        ("adhoc", "adhoc", "mot17-mini", "train", "private", "cstrack-n", T0 + dt.timedelta(days=1, hours=5)),
        ("gt", "nightly", "mot17-mini", "train", "gt", "cstrack-n", T0 + dt.timedelta(days=1)),
        ("n3", "nightly", "mot17-mini", "train", "private", "cstrack-n", T0 + dt.timedelta(days=2)),
        ("s3", "nightly", "synth", None, "gt", "cstrack-n", T0 + dt.timedelta(days=2)),
    ]
    return pd.DataFrame(rows, columns=["run_id", "tag", "dataset", "split", "detection_mode", "tracker", "started_at"])


def test_previous_is_the_latest_earlier_nightly_of_the_same_set() -> None:
    assert previous_runs(_runs(), ["n3", "s3"]) == {"n3": "n2", "s3": None}
    assert previous_runs(_runs(), ["n2"]) == {"n2": "n1"}
    assert previous_runs(_runs(), ["n1"]) == {"n1": None}


def _metrics() -> pd.DataFrame:
    rows = [
        ("n2", "MOT17-02", 0.500, 0.600, 10.0),
        ("n2", "COMBINED", 0.450, 0.550, 10.0),
        ("n3", "MOT17-02", 0.497, 0.570, 8.0),   # MOTA -0.003 ok, IDF1 -0.03 fail, fps -20 % warn
        ("n3", "COMBINED", 0.440, 0.560, 5.0),   # MOTA -0.01 warn, IDF1 +0.01 ok, fps -50 % fail
        ("n3", "MOT17-04", 0.1, 0.1, 1.0),       # not in the previous run: not compared
    ]
    return pd.DataFrame(rows, columns=["run_id", "sequence", "MOTA", "IDF1", "fps"])


def test_deltas_and_statuses() -> None:
    rows = compare_runs(_metrics(), {"n3": "n2"}, THRESHOLDS, _runs())
    got = {(r["sequence"], r["metric"]): (round(r["delta"], 6), r["status"]) for r in rows}
    assert got == {
        ("MOT17-02", "MOTA"): (-0.003, OK),
        ("MOT17-02", "IDF1"): (-0.03, FAIL),
        ("MOT17-02", "fps"): (-2.0, WARN),
        ("COMBINED", "MOTA"): (-0.01, WARN),
        ("COMBINED", "IDF1"): (0.01, OK),
        ("COMBINED", "fps"): (-5.0, FAIL),
    }
    assert {r["previous_run_id"] for r in rows} == {"n2"} and {r["dataset"] for r in rows} == {"mot17-mini"}


def test_fps_is_compared_only_for_timed_modes() -> None:
    runs = _runs()
    runs.loc[runs["run_id"] == "n3", "detection_mode"] = "gt"
    rows = compare_runs(_metrics(), {"n3": "n2"}, {**THRESHOLDS, "fps_modes": ["private"]}, runs)
    assert {r["metric"] for r in rows} == {"MOTA", "IDF1"}
    rows = compare_runs(_metrics(), {"n3": "n2"}, {**THRESHOLDS, "fps_modes": ["private", "gt"]}, runs)
    assert "fps" in {r["metric"] for r in rows}


def test_improvements_never_warn_and_missing_fps_is_skipped() -> None:
    m = pd.DataFrame([("a", "S", 0.1, 0.1, None), ("b", "S", 0.9, 0.9, 3.0)],
                     columns=["run_id", "sequence", "MOTA", "IDF1", "fps"])
    runs = pd.DataFrame([("b", "synth", None)], columns=["run_id", "dataset", "split"])
    rows = compare_runs(m, {"b": "a"}, THRESHOLDS, runs)
    assert [(r["metric"], r["status"]) for r in rows] == [("MOTA", OK), ("IDF1", OK)]
