"""Evaluation speed: ``cstrack.eval.evaluate`` against TrackEval's own script path, same files.

Both evaluate every set of ``shared/data/eval-golden`` (TUD-Campus + TUD-Stadtmitte as MOT15,
MOT20-01 as MOT20) in the same process, interleaved, after one untimed warm-up of each:

- ``ours``: ``evaluate(gt_root, results, preset=..., workers=W)`` (validation, server
  preprocessing, TrackEval's HOTA/CLEAR/Identity/Count metric classes, combination);
- ``trackeval_script``: what TrackEval's ``scripts/run_mot_challenge.py`` does with its defaults
  (``Evaluator`` + ``MotChallenge2DBox``, metrics HOTA CLEAR Identity, summary/detailed files and
  curve plots written to a temporary output folder, stdout captured);
- ``trackeval_parallel``: the same with TrackEval's ``USE_PARALLEL=True`` on W cores;
- ``trackeval_lean``: the same with nothing written or plotted (metrics only), serial.

Every run's numbers are asserted identical (exact float equality) to ours for every sequence
and the combination.  Wall times: median and min over ``--repeats``.  The "cold" section runs each
path once in a fresh interpreter (imports included).

Usage::

    .venv/bin/python bench/eval_speed.py [--repeats 7] [--workers 2] [--out bench/out/eval_speed.json]

Target (issue 5): ours >= 1.8x faster than TrackEval's script path on 2 cores, identical numbers.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import contextlib  # noqa: E402
import io  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import trackeval  # noqa: E402

from cstrack.eval import COMBINED, evaluate  # noqa: E402
from cstrack.eval.result import summarize  # noqa: E402
from cstrack.fsutil import atomic_write_json  # noqa: E402
from cstrack.paths import shared_data  # noqa: E402
from cstrack.provenance import collect  # noqa: E402

GOLDEN = shared_data() / "eval-golden"
# (set folder, tracker, TrackEval benchmark, our preset)
SETS = (("tud", "motmetrics-test", "MOT15", "mot15"), ("mot20", "MPNTrack", "MOT20", "mot20"))


def run_ours(workers: int) -> dict[str, dict[str, Any]]:
    out = {}
    for name, tracker, _, preset in SETS:
        res = evaluate(GOLDEN / name / "gt", GOLDEN / name / "trackers" / tracker / "data", preset=preset,
                       workers=workers)
        out[name] = {row["sequence"]: {k: v for k, v in row.items() if k != "sequence"} for row in res.rows()}
    return out


def run_trackeval(outputs: bool, parallel: int, out_dir: str) -> dict[str, dict[str, Any]]:
    """TrackEval as ``scripts/run_mot_challenge.py`` drives it (config built the same way)."""
    out = {}
    for name, tracker, benchmark, _ in SETS:
        eval_config = trackeval.Evaluator.get_default_eval_config()
        eval_config["DISPLAY_LESS_PROGRESS"] = False  # as the script sets it
        eval_config["LOG_ON_ERROR"] = None  # the default writes into site-packages
        if parallel > 1:
            eval_config.update(USE_PARALLEL=True, NUM_PARALLEL_CORES=parallel)
            # A serial Evaluator leaves TrackEval's module-level timing switch on, which breaks its
            # parallel path (IndexError in _timing.wrap); a fresh script process starts with it off.
            trackeval._timing.DO_TIMING = False
        if not outputs:
            eval_config.update(OUTPUT_SUMMARY=False, OUTPUT_DETAILED=False, PLOT_CURVES=False,
                               PRINT_RESULTS=False)
        dataset_config = trackeval.datasets.MotChallenge2DBox.get_default_dataset_config()
        dataset_config.update(
            GT_FOLDER=str(GOLDEN / name / "gt"), TRACKERS_FOLDER=str(GOLDEN / name / "trackers"),
            OUTPUT_FOLDER=out_dir, TRACKERS_TO_EVAL=[tracker], BENCHMARK=benchmark, SPLIT_TO_EVAL="train",
            SKIP_SPLIT_FOL=True, SEQMAP_FILE=str(GOLDEN / name / "gt" / "seqmap.txt"),
        )
        metrics_config = {"METRICS": ["HOTA", "CLEAR", "Identity"], "THRESHOLD": 0.5}
        evaluator = trackeval.Evaluator(eval_config)
        dataset_list = [trackeval.datasets.MotChallenge2DBox(dataset_config)]
        metrics_list = [m(metrics_config) for m in (trackeval.metrics.HOTA, trackeval.metrics.CLEAR,
                                                    trackeval.metrics.Identity)]
        res, msg = evaluator.evaluate(dataset_list, metrics_list)
        if msg["MotChallenge2DBox"][tracker] != "Success":
            raise RuntimeError(msg)
        seqs = res["MotChallenge2DBox"][tracker]
        frames = dataset_list[0].seq_lengths
        rows = {}
        for seq, per_cls in seqs.items():
            key = COMBINED if seq == "COMBINED_SEQ" else seq
            n = sum(frames.values()) if key == COMBINED else frames[seq]
            rows[key] = summarize(per_cls["pedestrian"], n)
        out[name] = rows
    return out


def assert_identical(ours: dict, theirs: dict, label: str) -> int:
    checked = 0
    for name in ours:
        assert set(ours[name]) == set(theirs[name]), (label, name)
        for seq, row in ours[name].items():
            for key, value in row.items():
                other = theirs[name][seq][key]
                if value != other:
                    raise AssertionError(f"{label}: {name}/{seq}/{key}: ours {value!r} != trackeval {other!r}")
                checked += 1
    return checked


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    sink = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(sink):
        value = fn()
    return time.perf_counter() - t0, value


def cold(path: str, workers: int) -> float:
    """Wall time of one run of ``path`` in a fresh interpreter (imports included)."""
    here = str(Path(__file__).parent)
    code = (
        f"import sys, tempfile; sys.path.insert(0, {here!r}); import eval_speed as b; "
        "d = tempfile.mkdtemp(); "
        f"b.run_ours({workers}) if {path!r} == 'ours' else b.run_trackeval(True, 1, d)"
    )
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cold-repeats", type=int, default=3, help="fresh-interpreter runs per path (0: skip)")
    ap.add_argument("--out", type=Path, default=Path("bench/out/eval_speed.json"))
    args = ap.parse_args()

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        paths: dict[str, Callable[[], Any]] = {
            "ours": lambda: run_ours(args.workers),
            "trackeval_script": lambda: run_trackeval(True, 1, tmp),
            "trackeval_parallel": lambda: run_trackeval(True, args.workers, tmp),
            "trackeval_lean": lambda: run_trackeval(False, 1, tmp),
        }
        times: dict[str, list[float]] = {k: [] for k in paths}
        _, reference = timed(paths["ours"])  # warm-up (imports, caches) of every path
        checked = {k: assert_identical(reference, timed(fn)[1], k) for k, fn in paths.items() if k != "ours"}
        for _ in range(args.repeats):
            for key, fn in paths.items():
                dt, value = timed(fn)
                assert_identical(reference, value, key)
                times[key].append(dt)
    cold_times: dict[str, list[float]] = {"ours": [], "trackeval_script": []}
    for _ in range(args.cold_repeats):
        for key in cold_times:
            cold_times[key].append(cold(key, args.workers))
    load_after = os.getloadavg()

    def stats(xs: list[float]) -> dict[str, Any]:  # JSON: seconds and the runs
        return {"median_s": statistics.median(xs), "min_s": min(xs), "runs_s": xs}

    warm = {k: stats(v) for k, v in times.items()}
    ours_med = warm["ours"]["median_s"]
    report = {
        "what": "wall time to evaluate eval-golden (TUD-Campus, TUD-Stadtmitte as MOT15; MOT20-01 as MOT20)",
        "workers": args.workers,
        "repeats": args.repeats,
        "warm": warm,
        "speedup_vs": {k: warm[k]["median_s"] / ours_med for k in warm if k != "ours"},
        "speedup_min_vs": {k: warm[k]["min_s"] / warm["ours"]["min_s"] for k in warm if k != "ours"},
        "cold": {k: stats(v) for k, v in cold_times.items() if v},
        "identical_values_checked": checked,
        "target": "ours >= 1.8x faster than trackeval_script on 2 cores",
        "target_met": warm["trackeval_script"]["median_s"] / ours_med >= 1.8,
        "loadavg_before": load_before,
        "loadavg_after": load_after,
        "provenance": collect().to_dict(),
    }
    if report["cold"]:
        report["cold_speedup"] = report["cold"]["trackeval_script"]["median_s"] / report["cold"]["ours"]["median_s"]
    atomic_write_json(args.out, report)
    for k, v in warm.items():
        print(f"{k:<20} median {v['median_s'] * 1000:8.1f} ms   min {v['min_s'] * 1000:8.1f} ms")
    for k, v in report["speedup_vs"].items():
        print(f"speedup vs {k:<20} {v:5.2f}x (median)   {report['speedup_min_vs'][k]:5.2f}x (min)")
    if report["cold"]:
        print(f"cold (fresh interpreter): ours {report['cold']['ours']['median_s']:.2f} s, "
              f"trackeval script {report['cold']['trackeval_script']['median_s']:.2f} s "
              f"-> {report['cold_speedup']:.2f}x")
    print(f"identical values checked: {checked}; load average {load_before} -> {load_after}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
