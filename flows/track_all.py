"""``track-all``: select sequences -> track each on Dask (cached by content) -> evaluate -> catalog
-> tables artifact.  Sequences without ground truth (e.g. video clips) are catalogued with their
counts, track lengths and fps instead of metrics.

One Dask task per sequence, submitted longest first; with ``shard_frames`` the sequences shorter
than that go in shards of at least that many frames, one task each (:mod:`tasks.shard`: caching,
retries, failure isolation and catalog rows stay per sequence).  Each sequence with ground truth
is scored on a worker as soon as it is tracked; the flow combines the scores per (dataset, split)
exactly as the server would (:mod:`cstrack.eval.scores`) and records them.  A sequence whose result exists for the same
inputs, weights, configuration and tracking code is not tracked again (:mod:`tasks.cachekeys`);
a cached record whose result file has gone or changed is tracked again.  A failing sequence fails
only its own task; the others finish, are evaluated and catalogued, and the flow then fails with
the list of failed sequences.  A lost Dask worker's task is rescheduled by Dask on another worker.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.logging import get_run_logger
from prefect_dask import DaskTaskRunner

from cstrack.storage import Location
from flows.cluster import describe, task_runner_for
from flows.detector_copies import Copies, collapse, write_copies
from flows.dispatch import CACHE_DIR, Dispatched, abs_root, run_sequences
from flows.params import TrackAllParams
from flows.recording import FlowRun, evaluate_outcomes, record_unevaluated, run_markdown
from tasks.data import select_sequences
from tasks.publish import artifact_key, publish_markdown
from tasks.records import SequenceRef
from tasks.report import build_report_task

__all__ = ["CACHE_DIR", "SequencesFailedError", "track_all"]


class SequencesFailedError(RuntimeError):
    """Raised at the end of a run in which some sequences (or evaluations) failed; ``summary`` is
    what the run did (the successful sequences are evaluated and catalogued)."""

    def __init__(self, message: str, summary: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.summary = summary or {}


def _evaluation_summary(dispatched: Dispatched, combine_record_s: float) -> dict[str, Any]:
    """Where the evaluation ran and what it cost: per-sequence scoring on the workers (summed
    seconds), combination and catalog write in the flow."""
    scored = [s for s in dispatched.scores.values() if s.score is not None]
    return {"where": "per sequence on the Dask workers as each finished; combined in the flow",
            "sequences_scored": len(scored), "workers_s": round(sum(s.seconds for s in scored), 3),
            "workers": sorted({s.worker for s in scored}), "combine_and_record_s": round(combine_record_s, 3)}


@flow(name="track-all", log_prints=True)
def track_all(params: TrackAllParams) -> dict[str, Any]:
    """Track the selected sequences on Dask, evaluate, catalogue and publish the tables."""

    flow_start = time.time()
    logger = get_run_logger()
    data_root, results_root = abs_root(params.data_root), abs_root(params.results_root)  # local or s3://
    run_dir = results_root / params.run_name
    seqs, copies = collapse(select_sequences(str(data_root), params.datasets), params.datasets)
    t_selected = time.time()
    logger.info("%d sequences (%d frames) from %s; results in %s", len(seqs), sum(s.frames for s in seqs),
                data_root, run_dir)
    logger.info("running on %s", describe(params.cluster))
    with task_runner_for(params.cluster) as runner:  # open until the tables are built (on a worker)
        return _track_evaluate_report(params, runner, seqs, copies, run_dir, results_root, flow_start, t_selected)


def _track_evaluate_report(params: TrackAllParams, runner: DaskTaskRunner, seqs: list[SequenceRef], copies: Copies,
                           run_dir: Path | Location, results_root: Path | Location, flow_start: float,
                           t_selected: float) -> dict[str, Any]:
    """The body of :func:`track_all` once the sequences are selected: track (and score) on Dask,
    evaluate and catalogue here, build the regenerated tables on a worker (their memory grows with
    the catalog: about 230 MB for a run of 1,000 sequences, docs/scale.md), publish."""
    from prefect.runtime import flow_run

    logger = get_run_logger()
    dispatched = run_sequences(runner, params, seqs, run_dir, results_root, logger)
    outcomes = dispatched.outcomes
    t_tracked = time.time()

    copied = write_copies(outcomes, run_dir, copies)  # MOT17: the other detector copies' names
    if copied:
        logger.info("wrote %d detector copies (same images): %s", len(copied), ", ".join(copied))
    failed = [f"{o.seq.label}: {o.error}" for o in outcomes if o.status == "failed"]
    flow_run_id = str(flow_run.id) if flow_run.id else None
    root = flow_run.root_flow_run_id
    flow = FlowRun(flow_run_id, str(root) if root else flow_run_id,
                   dt.datetime.fromtimestamp(flow_start, dt.UTC), dt.datetime.now(dt.UTC))
    evals, eval_errors = (evaluate_outcomes(params, outcomes, run_dir, flow_run_id, flow, dispatched.scores)
                          if params.evaluate else ([], []))
    t_evaluated = time.time()
    stats, stats_errors = (record_unevaluated(params, outcomes, run_dir, flow_run_id, flow) if params.evaluate
                           else ([], []))
    eval_errors += stats_errors
    firsts = [o.record.first_frame_unix for o in outcomes
              if o.status == "tracked" and o.record is not None and o.record.first_frame_unix]
    summary: dict[str, Any] = {
        "flow_run_id": flow_run_id,
        "run_name": params.run_name,
        "tag": params.tag,
        "results": str(run_dir),
        "catalog": str(abs_root(params.catalog)),
        "catalog_runs": [e["run_id"] for e in [*evals, *stats] if e.get("run_id")],
        "sequences": len(outcomes),
        "copies": copied,
        "tracked": sum(o.status == "tracked" for o in outcomes),
        "cached": sum(o.status == "cached" for o in outcomes),
        "failed": failed + eval_errors,
        "first_frame_s": (min(firsts) - flow_start) if firsts else None,
        "tracking_tasks": dispatched.tasks,
        "shards": dispatched.shards,
        "evaluation": _evaluation_summary(dispatched, t_evaluated - t_tracked),
        "timings": {**{k: round(v, 3) for k, v in dispatched.timings.items()},
                    "select_s": round(t_selected - flow_start, 3), "evaluate_record_s": round(t_evaluated - t_tracked, 3)},
        "workers": sorted({o.record.worker for o in outcomes if o.record is not None}),
        "metrics": [{"label": e["label"], "run_id": e.get("run_id"), "table": e["table"]} for e in evals],
        "unevaluated": stats,
        "per_sequence": [{"sequence": o.seq.label, "status": o.status,
                          "worker": o.record and o.record.worker, "frames": o.record and o.record.frames,
                          "fps": o.record and o.record.fps} for o in outcomes],
    }
    report_md = (runner.submit(build_report_task, parameters={"catalog_root": summary["catalog"],
                                                             "out_dir": str(results_root / "tables")}).result().report_md
                 if evals else "")
    summary["tables"] = str(results_root / "tables")
    md = run_markdown(params, summary, outcomes, evals, report_md)
    summary["artifact"] = publish_markdown(artifact_key("track-all", params.run_name), md,
                                           f"track-all {params.run_name}: tracking, metrics and regenerated tables")
    summary["wall_s"] = time.time() - flow_start
    if summary["failed"]:
        raise SequencesFailedError(
            f"{len(summary['failed'])} failure(s) in run {params.run_name}; {len(outcomes) - len(failed)} of "
            f"{len(outcomes)} sequences succeeded and were catalogued. Failed:\n  " + "\n  ".join(summary["failed"]),
            summary,
        )
    logger.info("done: %d tracked, %d cached, %d sequences in %.1f s", summary["tracked"], summary["cached"],
                summary["sequences"], summary["wall_s"])
    return summary
