"""Nightly statistics: paired bootstrap confidence intervals over sequences.

With a handful of sequences a metric move of half a point is often noise.  For each metric the
per-sequence deltas (current - previous, paired by sequence) are resampled with replacement
(:func:`paired_bootstrap`: seeded, 10,000 resamples); a regression is called only when the whole
interval lies below zero **and** the mean drop exceeds the threshold.  Frame rates are first divided
by the CPU calibration of their run (:mod:`cstrack.calibrate`, catalog table ``cpu_calibration``)
and compared as relative changes, since nights run on different machines.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

OK, WARN, FAIL = "ok", "warn", "fail"
RESAMPLES = 10_000
LEVEL = 0.95
SEED = 0
COMBINED = "COMBINED"


def paired_bootstrap(deltas: Any, resamples: int = RESAMPLES, seed: int = SEED,
                     level: float = LEVEL) -> tuple[float, float, float]:
    """``(mean, low, high)``: the mean of ``deltas`` and its percentile bootstrap interval
    (sequences resampled with replacement, ``resamples`` times, ``level`` coverage)."""
    d = np.asarray(deltas, dtype=np.float64)
    if d.size == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, d.size, size=(resamples, d.size))
    means = d[idx].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return float(d.mean()), float(lo), float(hi)


def status(mean: float, high: float, warn: float, fail: float) -> str:
    """Regression only when the interval excludes zero on the bad side (``high < 0``) and the mean
    drop exceeds the threshold."""
    if not np.isfinite(high) or high >= 0:
        return OK
    drop = -mean
    if drop > fail:
        return FAIL
    if drop > warn:
        return WARN
    return OK


def sequence_deltas(metrics: pd.DataFrame, pairs: Mapping[str, str], metric_names: list[str], runs: pd.DataFrame,
                    gflops: Mapping[str, float] | None = None) -> pd.DataFrame:
    """One row per (current run, sequence) present in both runs, ``COMBINED`` excluded:
    ``dataset, sequence, run_id, previous_run_id`` and for each metric ``<m>_prev, <m>_cur, <m>_delta``;
    ``fps_rel`` = relative change of fps, normalised by each run's GFLOP/s when both runs have one
    (``fps_normalised`` says whether it was)."""
    info = runs.set_index("run_id")
    gflops = gflops or {}
    rows: list[dict[str, Any]] = []
    for cur_id, prev_id in sorted(pairs.items()):
        cur = metrics[metrics["run_id"] == cur_id].set_index("sequence")
        prev = metrics[metrics["run_id"] == prev_id].set_index("sequence")
        for seq in [s for s in cur.index if s in prev.index and s != COMBINED]:
            r: dict[str, Any] = {"dataset": info.loc[cur_id, "dataset"], "sequence": seq, "run_id": cur_id,
                                 "previous_run_id": prev_id}
            for m in metric_names:
                a, b = float(prev.loc[seq, m]), float(cur.loc[seq, m])
                r[f"{m}_prev"], r[f"{m}_cur"], r[f"{m}_delta"] = a, b, b - a
            fa, fb = prev.loc[seq].get("fps"), cur.loc[seq].get("fps")
            norm = cur_id in gflops and prev_id in gflops
            if fa is not None and fb is not None and pd.notna(fa) and pd.notna(fb) and float(fa) > 0:
                ka, kb = (gflops[prev_id], gflops[cur_id]) if norm else (1.0, 1.0)
                r["fps_prev"], r["fps_cur"] = float(fa), float(fb)
                r["fps_rel"] = (float(fb) / kb) / (float(fa) / ka) - 1.0
                r["fps_normalised"] = norm
            rows.append(r)
    return pd.DataFrame(rows)


def summarise(deltas: pd.DataFrame, thresholds: Mapping[str, Any], resamples: int = RESAMPLES,
              seed: int = SEED, level: float = LEVEL) -> list[dict[str, Any]]:
    """One row per metric (and ``fps``): ``metric, n, delta, low, high, status, note``.  Metric
    deltas are absolute (fractions), the fps delta relative (0.1 = 10 % faster)."""
    out: list[dict[str, Any]] = []
    if deltas.empty:
        return out
    for m in thresholds["metrics"]:
        d = deltas[f"{m}_delta"].to_numpy(dtype=float)
        mean, lo, hi = paired_bootstrap(d, resamples, seed, level)
        st = status(mean, hi, thresholds["metric_warn"], thresholds["metric_fail"])
        out.append({"metric": m, "n": int(d.size), "delta": mean, "low": lo, "high": hi, "status": st,
                    "note": _note(mean, lo, hi, st, thresholds["metric_warn"])})
    if "fps_rel" in deltas:
        f = deltas.dropna(subset=["fps_rel"])
        if not f.empty:
            mean, lo, hi = paired_bootstrap(f["fps_rel"].to_numpy(float), resamples, seed, level)
            st = status(mean, hi, thresholds["fps_warn"], thresholds["fps_fail"])
            note = _note(mean, lo, hi, st, thresholds["fps_warn"])
            if not bool(f["fps_normalised"].all()):
                note = (note + "; " if note else "") + "not normalised (a run has no CPU calibration)"
            out.append({"metric": "fps", "n": len(f), "delta": mean, "low": lo, "high": hi, "status": st,
                        "note": note})
    return out


def _note(mean: float, lo: float, hi: float, st: str, warn: float) -> str:
    if st == OK and -mean > warn and lo <= 0 <= hi:
        return "drop within noise (interval includes 0)"
    return ""


def worst(summary: list[dict[str, Any]]) -> str:
    states = {r["status"] for r in summary}
    return FAIL if FAIL in states else WARN if WARN in states else OK
