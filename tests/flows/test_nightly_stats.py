"""Nightly statistics: paired bootstrap intervals, regression only when the interval excludes zero,
fps normalised by the CPU calibration; hand-made catalogs where the answer is known."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from catalog import store
from catalog.stats import FAIL, OK, WARN, paired_bootstrap, sequence_deltas, summarise
from cstrack.calibrate import gemm_gflops
from cstrack.eval.result import FLOAT_FIELDS, METRIC_FIELDS
from flows.nightly import comparison_markdown
from tasks.compare import compare_with_previous

T0 = dt.datetime(2026, 1, 1, 2, 0, tzinfo=dt.UTC)
TH = {"metric_warn": 0.005, "metric_fail": 0.02, "fps_warn": 0.15, "fps_fail": 0.40, "metrics": ["MOTA", "IDF1"]}
SEQS = ["S1", "S2", "S3", "S4", "S5"]


def test_bootstrap_by_hand() -> None:
    # constant deltas: every resample has the same mean, so the interval is that point
    assert paired_bootstrap([-0.03] * 5) == pytest.approx((-0.03, -0.03, -0.03))
    # two sequences {0, 1}: a resample's mean is 0 (p 1/4), 0.5 (p 1/2) or 1 (p 1/4); the 2.5 % and
    # 97.5 % quantiles are therefore 0 and 1
    mean, lo, hi = paired_bootstrap([0.0, 1.0])
    assert (mean, lo, hi) == (0.5, 0.0, 1.0)
    # {1, 2, 3, 4}: the mean's bootstrap sd is sqrt(1.25 / 4) = 0.559; the interval is about +-1.96 sd
    mean, lo, hi = paired_bootstrap([1, 2, 3, 4])
    assert mean == 2.5 and lo == pytest.approx(2.5 - 1.96 * 0.559, abs=0.15) and hi == pytest.approx(
        2.5 + 1.96 * 0.559, abs=0.15)
    assert paired_bootstrap([1, 2, 3, 4], seed=0) == paired_bootstrap([1, 2, 3, 4], seed=0)  # seeded


def _frames(prev: dict[str, tuple[float, float, float]], cur: dict[str, tuple[float, float, float]]
            ) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = [("p", s, *v) for s, v in prev.items()] + [("c", s, *v) for s, v in cur.items()]
    metrics = pd.DataFrame(rows, columns=["run_id", "sequence", "MOTA", "IDF1", "fps"])
    runs = pd.DataFrame([("p", "mot17", "private"), ("c", "mot17", "private")],
                        columns=["run_id", "dataset", "detection_mode"])
    return metrics, runs


def _status(prev: dict, cur: dict, gflops: dict | None = None) -> dict[str, tuple[str, float]]:
    m, r = _frames(prev, cur)
    d = sequence_deltas(m, {"c": "p"}, ["MOTA", "IDF1"], r, gflops)
    return {row["metric"]: (row["status"], row["delta"]) for row in summarise(d, TH)}


def test_consistent_drop_fails_noisy_drop_does_not() -> None:
    prev = {s: (0.60, 0.70, 10.0) for s in SEQS}
    # MOTA -0.03 on every sequence: interval [-0.03, -0.03] excludes 0 and 0.03 > fail 0.02
    # IDF1 swings +-0.1 around a mean of -0.004: large per-sequence moves, interval includes 0
    idf1 = [0.60, 0.79, 0.62, 0.77, 0.70]
    cur = {s: (0.57, i, 10.0) for s, i in zip(SEQS, idf1, strict=True)}
    got = _status(prev, cur)
    assert got["MOTA"] == (FAIL, pytest.approx(-0.03))
    assert got["IDF1"][0] == OK and got["IDF1"][1] == pytest.approx(-0.004)
    assert got["fps"] == (OK, pytest.approx(0.0))


def test_small_consistent_drop_warns() -> None:
    prev = {s: (0.60, 0.70, 10.0) for s in SEQS}
    cur = {s: (0.592, 0.70, 10.0) for s in SEQS}  # -0.008 everywhere: warn 0.005 < 0.008 < fail 0.02
    assert _status(prev, cur)["MOTA"][0] == WARN


def test_fps_normalised_by_the_calibration() -> None:
    prev = {s: (0.6, 0.7, 10.0) for s in SEQS}
    cur = {s: (0.6, 0.7, 5.0) for s in SEQS}  # half the fps ...
    assert _status(prev, cur)["fps"] == (FAIL, pytest.approx(-0.5))
    # ... on a machine half as fast: no change after normalising
    assert _status(prev, cur, {"p": 100.0, "c": 50.0})["fps"] == (OK, pytest.approx(0.0))


def test_gemm_calibration_is_a_positive_rate() -> None:
    g = gemm_gflops(n=128, repeats=2)
    assert np.isfinite(g) and g > 0.1


def _full(table: str, rec: dict) -> dict:
    from catalog.schemas import TABLES

    return {**{f.name: None for f in TABLES[table]}, **rec}


def _write_catalog(root: Path) -> None:
    runs = []
    for rid, day in (("n1", 0), ("n2", 1)):
        runs.append(_full("runs", {"run_id": rid, "tag": "nightly", "source": "cstrack", "tracker": "cstrack-n", "config_json": "{}",
                     "config_hash": "h", "dataset": "mot17", "split": "train", "detection_mode": "private",
                     "started_at": T0 + dt.timedelta(days=day)}))
    store.write("runs", runs, root)
    rows = []
    for rid, mota, fps in (("n1", 0.60, 10.0), ("n2", 0.55, 6.0)):
        for s in [*SEQS, "COMBINED"]:
            rec = {k: (0.5 if k in FLOAT_FIELDS else 1) for k in METRIC_FIELDS}
            rows.append(_full("sequence_metrics", {**rec, "run_id": rid, "sequence": s, "MOTA": mota, "IDF1": 0.7,
                                                   "fps": fps}))
    store.write("sequence_metrics", rows, root)
    store.write("cpu_calibration", [_full("cpu_calibration", {"run_id": "n1", "gflops": 100.0, "gemm_n": 512}),
                                    _full("cpu_calibration", {"run_id": "n2", "gflops": 60.0, "gemm_n": 512})], root)


def test_nightly_comparison_from_a_catalog(tmp_path: Path) -> None:
    _write_catalog(tmp_path)
    cmp = compare_with_previous.fn(str(tmp_path), ["n2"], TH)
    assert cmp["pairs"] == {"n2": "n1"} and cmp["worst"] == FAIL
    summary = {r["metric"]: r for r in cmp["summary"]}
    assert summary["MOTA"]["status"] == FAIL and summary["MOTA"]["n"] == 5  # COMBINED is not a sample
    assert summary["IDF1"]["status"] == OK
    # 6 fps on 60 GFLOP/s is 10 fps on 100: no fps change after normalising
    assert summary["fps"]["delta"] == pytest.approx(0.0) and summary["fps"]["status"] == OK
    assert len(cmp["sequences"]) == 5
    md = comparison_markdown(cmp, TH, {"tracked": 5})
    assert "95 % interval" in md and "[-0.0500, -0.0500]" in md and "Per-sequence deltas" in md
