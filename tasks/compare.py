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


def load_gflops(catalog_root: str, run_ids: Sequence[str]) -> dict[str, float]:
    """``{run_id: GFLOP/s}`` from the ``cpu_calibration`` table (runs without one are left out)."""
    from catalog import store

    if not run_ids:
        return {}
    cal = store.load("cpu_calibration", filters={"run_id": list(run_ids)}, root=catalog_root)
    return {str(r): float(g) for r, g in zip(cal["run_id"], cal["gflops"], strict=True)}


@task(name="calibrate-cpu")
def calibrate_cpu(catalog_root: str, run_ids: list[str]) -> float:
    """Measure the fixed GEMM (:func:`cstrack.calibrate.gemm_gflops`) now and record it for ``run_ids``."""
    import socket

    from catalog import store
    from cstrack.calibrate import GEMM_N, gemm_gflops

    g = gemm_gflops()
    threads = _blas_threads()
    rows = [{"run_id": r, "gflops": g, "gemm_n": GEMM_N, "threads": threads, "host": socket.gethostname(),
             "measured_at": store.utc_now()} for r in run_ids]
    if rows:
        store.write("cpu_calibration", rows, catalog_root)
    return g


def _blas_threads() -> int | None:
    try:
        from threadpoolctl import threadpool_info

        return max((int(i["num_threads"]) for i in threadpool_info() if i.get("user_api") == "blas"), default=None)
    except ImportError:
        return None


@task(name="compare-nightly")
def compare_with_previous(catalog_root: str, run_ids: list[str], thresholds: dict[str, Any],
                          tag: str = "nightly") -> dict[str, Any]:
    """Load the catalog and compare ``run_ids`` with their previous ``tag`` runs.

    Returns ``{"pairs": {run: previous or None}, "rows": [...], "summary": [...], "sequences": [...],
    "worst": ok|warn|fail}``: ``rows`` are the raw per-sequence deltas with fixed-threshold flags,
    ``summary`` each metric's mean delta with its paired bootstrap interval (:mod:`catalog.stats`),
    ``sequences`` the per-sequence delta table; ``worst`` comes from ``summary`` (a regression is
    called only when the interval excludes zero and the drop exceeds the threshold).
    """
    from catalog import store
    from catalog.stats import sequence_deltas, summarise
    from catalog.stats import worst as worst_of

    runs = store.load("runs", root=catalog_root)
    pairs = previous_runs(runs, run_ids, tag)
    found = {k: v for k, v in pairs.items() if v is not None}
    ids = sorted({*found, *found.values()})
    metrics = store.load("sequence_metrics", filters={"run_id": ids}, root=catalog_root) if ids else None
    rows = compare_runs(metrics, found, thresholds, runs) if ids else []
    summary: list[dict[str, Any]] = []
    seq_rows: list[dict[str, Any]] = []
    if ids:
        timed = {k: v for k, v in found.items() if "fps_modes" not in thresholds
                 or runs.set_index("run_id").loc[k].get("detection_mode") in thresholds["fps_modes"]}
        deltas = sequence_deltas(metrics, found, list(thresholds["metrics"]), runs, load_gflops(catalog_root, ids))
        if not deltas.empty:
            deltas.loc[~deltas["run_id"].isin(list(timed)), [c for c in ("fps_rel",) if c in deltas]] = None
        summary = summarise(deltas, thresholds)
        seq_rows = deltas.to_dict("records")
    return {"pairs": pairs, "rows": rows, "summary": summary, "sequences": seq_rows, "worst": worst_of(summary)}
