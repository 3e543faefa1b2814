"""Nightly comparison: this run's catalog runs against the previous nightly runs of the same
(dataset, split, detection mode, tracker).

:func:`compare_runs` is pure (pandas in, rows out); :func:`compare_with_previous` is the task that
loads the catalog and calls it.  Metric drops are absolute (ratios are fractions: 0.02 = 2 points),
fps drops relative (0.15 = 15 % slower).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from prefect import task

OK, WARN, FAIL = "ok", "warn", "fail"
_KEYS = ("dataset", "split", "detection_mode", "tracker")


def previous_runs(runs: pd.DataFrame, current: Sequence[str], tag: str = "nightly") -> dict[str, str | None]:
    """For each current run id: the latest earlier run with ``tag`` and the same
    (dataset, split, detection mode, tracker), or ``None`` when there is none."""
    out: dict[str, str | None] = {}
    cur = runs[runs["run_id"].isin(list(current))]
    pool = runs[(runs["tag"] == tag) & ~runs["run_id"].isin(list(current))]
    for _, r in cur.iterrows():
        same = pool
        for k in _KEYS:
            same = same[same[k].isna()] if pd.isna(r[k]) else same[same[k] == r[k]]
        same = same[same["started_at"] < r["started_at"]]
        out[str(r["run_id"])] = None if same.empty else str(same.sort_values("started_at").iloc[-1]["run_id"])
    return out


def _status(drop: float, warn: float, fail: float) -> str:
    if drop > fail:
        return FAIL
    if drop > warn:
        return WARN
    return OK


def compare_runs(
    metrics: pd.DataFrame, pairs: Mapping[str, str], thresholds: Mapping[str, Any], runs: pd.DataFrame
) -> list[dict[str, Any]]:
    """One row per (current run, sequence, metric) present in both runs, ``COMBINED`` included:
    ``{"dataset", "split", "sequence", "metric", "previous", "current", "delta", "status",
    "run_id", "previous_run_id"}``.  ``fps`` is compared when both runs have it and the run's
    detection mode is in ``thresholds["fps_modes"]`` (default: every mode)."""
    info = runs.set_index("run_id")
    rows: list[dict[str, Any]] = []
    for cur_id, prev_id in sorted(pairs.items()):
        cur = metrics[metrics["run_id"] == cur_id].set_index("sequence")
        prev = metrics[metrics["run_id"] == prev_id].set_index("sequence")
        for seq in [s for s in cur.index if s in prev.index]:
            base = {"dataset": info.loc[cur_id, "dataset"], "split": info.loc[cur_id, "split"], "sequence": seq,
                    "run_id": cur_id, "previous_run_id": prev_id}
            for m in thresholds["metrics"]:
                a, b = float(prev.loc[seq, m]), float(cur.loc[seq, m])
                rows.append({**base, "metric": m, "previous": a, "current": b, "delta": b - a,
                             "status": _status(a - b, thresholds["metric_warn"], thresholds["metric_fail"])})
            a, b = prev.loc[seq, "fps"], cur.loc[seq, "fps"]
            timed = "fps_modes" not in thresholds or info.loc[cur_id].get("detection_mode") in thresholds["fps_modes"]
            if timed and pd.notna(a) and pd.notna(b) and float(a) > 0:
                rel = 1.0 - float(b) / float(a)
                rows.append({**base, "metric": "fps", "previous": float(a), "current": float(b),
                             "delta": float(b) - float(a),
                             "status": _status(rel, thresholds["fps_warn"], thresholds["fps_fail"])})
    return rows


@task(name="compare-nightly")
def compare_with_previous(catalog_root: str, run_ids: list[str], thresholds: dict[str, Any],
                          tag: str = "nightly") -> dict[str, Any]:
    """Load the catalog and compare ``run_ids`` with their previous ``tag`` runs.

    Returns ``{"pairs": {run: previous or None}, "rows": [...], "worst": ok|warn|fail}``.
    """
    from catalog import store

    runs = store.load("runs", root=catalog_root)
    pairs = previous_runs(runs, run_ids, tag)
    found = {k: v for k, v in pairs.items() if v is not None}
    ids = sorted({*found, *found.values()})
    metrics = store.load("sequence_metrics", filters={"run_id": ids}, root=catalog_root) if ids else None
    rows = compare_runs(metrics, found, thresholds, runs) if ids else []
    worst = FAIL if any(r["status"] == FAIL for r in rows) else WARN if any(r["status"] == WARN for r in rows) else OK
    return {"pairs": pairs, "rows": rows, "worst": worst}
