"""Run TrackEval's metric classes (HOTA, CLEAR, Identity, Count) on prepared sequences.

The metrics themselves are TrackEval's; this module only schedules them.  With ``workers > 1``
the (sequence, metric) jobs are split into ``workers`` groups of about equal estimated cost
(longest job first); ``workers - 1`` forked children compute their groups on the prepared data
they inherit (nothing large is pickled) while this process computes the first group, so one long
sequence's HOTA overlaps with everything else.  Where ``fork`` is unavailable the jobs run here.
Sequences are combined in sorted name order, as ``trackeval.Evaluator`` does.
"""

from __future__ import annotations

import functools
import multiprocessing
import traceback
from collections.abc import Sequence
from typing import Any

from trackeval.metrics import CLEAR, HOTA, Count, Identity

from cstrack.errors import EvaluationError
from cstrack.eval.prepare import MATCH_IOU, PreparedSequence

METRIC_NAMES: tuple[str, ...] = ("HOTA", "CLEAR", "Identity", "Count")
# Relative cost per box of each metric (measured on MOT20-01: HOTA 0.13 s, CLEAR 0.03 s,
# Identity 0.01 s); only used to balance the worker groups.
_WEIGHT = {"HOTA": 13.0, "CLEAR": 3.0, "Identity": 1.0, "Count": 0.01}

SeqResult = dict[str, dict[str, Any]]  # metric name -> TrackEval result dict
Job = tuple[int, str]  # (index of the prepared sequence, metric name)


@functools.cache
def metric(name: str) -> Any:
    """The TrackEval metric object called ``name`` (IoU threshold 0.5, as on the server)."""
    classes = {"HOTA": HOTA, "CLEAR": CLEAR, "Identity": Identity, "Count": Count}
    if name not in classes:
        raise KeyError(name)
    cls = classes[name]
    if cls in (HOTA, Count):  # no configuration (HOTA sweeps its own alpha thresholds)
        return cls()
    return cls({"THRESHOLD": MATCH_IOU, "PRINT_CONFIG": False})


def eval_metric(name: str, seq: PreparedSequence) -> dict[str, Any]:
    return metric(name).eval_sequence(seq.data)


def split_jobs(costs: Sequence[float], groups: int) -> list[list[int]]:
    """Greedy longest-processing-time partition of job indices into ``groups`` lists."""
    loads = [0.0] * groups
    out: list[list[int]] = [[] for _ in range(groups)]
    for j in sorted(range(len(costs)), key=lambda k: (-costs[k], k)):
        g = min(range(groups), key=lambda k: (loads[k], k))
        out[g].append(j)
        loads[g] += costs[j]
    return out


def _run_group(prepared: Sequence[PreparedSequence], jobs: Sequence[Job]) -> list[tuple[int, str, Any]]:
    return [(i, m, eval_metric(m, prepared[i])) for i, m in jobs]


def _child(prepared: Sequence[PreparedSequence], jobs: Sequence[Job], conn: Any) -> None:
    try:
        conn.send(("ok", _run_group(prepared, jobs)))
    except BaseException:
        conn.send(("error", traceback.format_exc()))
    finally:
        conn.close()


def _can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def run_metrics(prepared: Sequence[PreparedSequence], workers: int = 1) -> dict[str, SeqResult]:
    """``{sequence: {metric: result}}`` for every prepared sequence, using up to ``workers``
    processes (this one included)."""
    jobs: list[Job] = [(i, m) for i in range(len(prepared)) for m in METRIC_NAMES]
    groups = min(max(1, workers), len(jobs)) if _can_fork() else 1
    parts = split_jobs([_WEIGHT[m] * (1 + prepared[i].cost) for i, m in jobs], groups)
    ctx = multiprocessing.get_context("fork") if groups > 1 else None
    children = []
    for part in parts[1:]:
        assert ctx is not None
        recv, send = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_child, args=(prepared, [jobs[k] for k in part], send), daemon=True)
        proc.start()
        send.close()
        children.append((proc, recv))
    results = _run_group(prepared, [jobs[k] for k in parts[0]])
    for proc, recv in children:
        try:
            status, payload = recv.recv()
        except EOFError:
            status, payload = "error", f"worker process {proc.pid} died (exit code {proc.exitcode})"
        finally:
            recv.close()
            proc.join()
        if status != "ok":
            raise EvaluationError(f"metric worker failed:\n{payload}")
        results.extend(payload)
    out: dict[str, SeqResult] = {p.name: {} for p in prepared}
    for i, m, res in sorted(results, key=lambda r: (r[0], METRIC_NAMES.index(r[1]))):
        out[prepared[i].name][m] = res
    return out


def combine(per_sequence: dict[str, SeqResult]) -> SeqResult:
    """TrackEval's ``combine_sequences`` for every metric, sequences in sorted order."""
    names = sorted(per_sequence)
    return {
        m: metric(m).combine_sequences({s: per_sequence[s][m] for s in names}) for m in METRIC_NAMES
    }
