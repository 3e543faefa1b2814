"""``track-all``: select sequences -> track each on Dask (cached by content) -> evaluate -> catalog
-> tables artifact.

One Dask task per sequence, submitted longest first.  A sequence whose result exists for the same
inputs, weights, configuration and tracking code is not tracked again (:mod:`tasks.cachekeys`);
a cached record whose result file has gone or changed is tracked again.  A failing sequence fails
only its own task; the others finish, are evaluated and catalogued, and the flow then fails with
the list of failed sequences.  A lost Dask worker's task is rescheduled by Dask on another worker.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.cache_policies import CachePolicy
from prefect.logging import get_run_logger

from flows.cluster import describe, task_runner_for
from flows.params import DatasetSelection, TrackAllParams
from tasks.cachekeys import track_cache_key
from tasks.catalog import ingest_run
from tasks.data import select_sequences
from tasks.evaluate import evaluate_results
from tasks.publish import publish_tables
from tasks.results import check_cached_result
from tasks.track import track_sequence_task

CACHE_DIR = ".cache"  # under results_root: cache keys (metadata) and the small persisted records


class SequencesFailedError(RuntimeError):
    """Raised at the end of a run in which some sequences (or evaluations) failed."""


def _abs(path: str | Path) -> Path:
    return Path(path).expanduser().resolve()


def resolve_weights(weights: str | None) -> str | None:
    """Absolute checkpoint path (Dask workers have their own working directories)."""
    if weights is None or weights == "coco":
        return weights
    return str(_abs(weights))


def job_for(params: TrackAllParams, selection: DatasetSelection) -> dict[str, Any]:
    """The ``job`` argument of :func:`tasks.track.track_sequence_task` for one dataset selection."""
    m = params.model
    return {
        "mode": params.mode_of(selection),
        "uses_model": params.appearance_of(selection),
        "model": {
            "variant": m.variant, "weights": resolve_weights(m.weights), "input_size": list(m.input_size),
            "path": m.path, "conf_thres": m.conf_thres,
        },
        "tracker_preset": params.tracker_preset,
        "torch_threads": params.cluster.torch_threads,
    }


def tracking_task(results_root: Path, retries: int, refresh: bool = False) -> Any:
    """The tracking task with its cache records under ``results_root/.cache`` (shared by every
    worker that sees the results volume, and surviving a temporary Prefect home)."""
    cache = results_root / CACHE_DIR
    return track_sequence_task.with_options(
        cache_policy=CachePolicy.from_cache_key_fn(track_cache_key).configure(key_storage=str(cache / "keys")),
        result_storage=cache / "records",
        retries=retries,
        refresh_cache=refresh,
    )


def _seq_label(seq: dict[str, Any]) -> str:
    return f"{seq['dataset']}/{seq['split']}/{seq['name']}"


def _error_text(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _outcome(seq: dict[str, Any], future: Any) -> dict[str, Any]:
    """``{"seq", "status": tracked|cached|failed, "record", "error"}`` of a finished future."""
    try:
        state = future.wrapped_future.result()  # the task engine's final Prefect state
    except Exception as exc:  # the Dask side gave up (e.g. KilledWorker after repeated worker loss)
        return {"seq": seq, "status": "failed", "record": None, "error": _error_text(exc)}
    if not state.is_completed():
        exc = state.result(raise_on_failure=False)
        error = _error_text(exc) if isinstance(exc, BaseException) else f"{state.name}: {state.message}"
        return {"seq": seq, "status": "failed", "record": None, "error": error}
    status = "cached" if state.name == "Cached" else "tracked"
    return {"seq": seq, "status": status, "record": state.result(), "error": None}


def _submit(runner: Any, task: Any, seqs: Iterable[dict[str, Any]], run_dir: Path,
            jobs: dict[str, dict[str, Any]]) -> list[tuple[dict[str, Any], Any]]:
    return [
        (s, runner.submit(task, parameters={"seq": s, "out_dir": str(run_dir / s["dataset"] / s["split"]),
                                            "job": jobs[s["dataset"]]}))
        for s in seqs
    ]


def _gather(runner: Any, pairs: list[tuple[dict[str, Any], Any]], logger: Any, done_before: int,
            total: int) -> list[dict[str, Any]]:
    """Wait for every future, logging each as it finishes (completion order)."""
    from distributed import as_completed

    by_key = {f.wrapped_future.key: (s, f) for s, f in pairs}
    out = []
    k = done_before
    with runner.client.as_current():
        for dask_future in as_completed([f.wrapped_future for _, f in pairs]):
            seq, fut = by_key[dask_future.key]
            o = _outcome(seq, fut)
            k += 1
            rec = o["record"] or {}
            if o["status"] == "failed":
                logger.error("[%d/%d] %s FAILED: %s", k, total, _seq_label(seq), o["error"])
            else:
                logger.info("[%d/%d] %s %s on %s: %d frames, %.1f fps", k, total, _seq_label(seq), o["status"],
                            rec.get("worker"), rec.get("frames", 0), rec.get("fps", 0.0))
            out.append(o)
    return out


def run_sequences(runner: Any, params: TrackAllParams, seqs: list[dict[str, Any]], run_dir: Path,
                  results_root: Path, logger: Any) -> list[dict[str, Any]]:
    """Track every sequence; cached records are checked (and their result put in place) and
    re-tracked when their result file is gone or differs."""
    jobs = {d.name: job_for(params, d) for d in params.datasets}
    total = len(seqs)
    outcomes = _gather(runner, _submit(runner, tracking_task(results_root, params.retries), seqs, run_dir, jobs),
                       logger, 0, total)
    stale = []
    for o in outcomes:
        if o["status"] == "cached":
            out_dir = run_dir / o["seq"]["dataset"] / o["seq"]["split"]
            problem = check_cached_result(o["record"], str(out_dir))
            if problem:
                logger.warning("%s: cached record unusable (%s): tracking again", _seq_label(o["seq"]), problem)
                stale.append(o)
    if stale:
        redo = _gather(runner, _submit(runner, tracking_task(results_root, params.retries, refresh=True),
                               [o["seq"] for o in stale], run_dir, jobs), logger, total - len(stale), total)
        keep = [o for o in outcomes if o not in stale]
        outcomes = keep + redo
    order = {_seq_label(s): i for i, s in enumerate(seqs)}
    return sorted(outcomes, key=lambda o: order[_seq_label(o["seq"])])


def evaluate_outcomes(params: TrackAllParams, outcomes: list[dict[str, Any]], run_dir: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """One evaluation per (dataset, split) over its successfully tracked sequences that have gt."""
    presets = {d.name: d.preset for d in params.datasets}
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for o in outcomes:
        if o["status"] != "failed" and o["seq"]["has_gt"]:
            groups.setdefault((o["seq"]["dataset"], o["seq"]["split"]), []).append(o["seq"])
    evals, errors = [], []
    for (dataset, split), seqs in sorted(groups.items()):
        label = f"{dataset}/{split}"
        state = evaluate_results(
            seqs[0]["gt_root"], str(run_dir / dataset / split), sorted(s["name"] for s in seqs), presets[dataset],
            label, return_state=True,
        )
        res = state.result(raise_on_failure=False)
        if isinstance(res, BaseException):
            errors.append(f"evaluation {label}: {_error_text(res)}")
        else:
            evals.append({**res, "dataset": dataset, "split": split})
    return evals, errors


@flow(name="track-all", log_prints=True)
def track_all(params: TrackAllParams) -> dict[str, Any]:
    """Track the selected sequences on Dask, evaluate, catalogue and publish the tables."""
    from prefect.runtime import flow_run

    flow_start = time.time()
    logger = get_run_logger()
    data_root, results_root = _abs(params.data_root), _abs(params.results_root)
    run_dir = results_root / params.run_name
    seqs = select_sequences(str(data_root), [d.model_dump() for d in params.datasets])
    logger.info("%d sequences (%d frames) from %s; results in %s", len(seqs), sum(s["frames"] for s in seqs),
                data_root, run_dir)
    logger.info("running on %s", describe(params.cluster))
    with task_runner_for(params.cluster) as runner:
        outcomes = run_sequences(runner, params, seqs, run_dir, results_root, logger)

    failed = [f"{_seq_label(o['seq'])}: {o['error']}" for o in outcomes if o["status"] == "failed"]
    evals, eval_errors = evaluate_outcomes(params, outcomes, run_dir) if params.evaluate else ([], [])
    run_id = str(flow_run.id or f"local-{int(flow_start)}")
    firsts = [o["record"]["first_frame_unix"] for o in outcomes
              if o["status"] == "tracked" and o["record"].get("first_frame_unix")]
    summary: dict[str, Any] = {
        "run_id": run_id,
        "run_name": params.run_name,
        "tag": params.tag,
        "results": str(run_dir),
        "sequences": len(outcomes),
        "tracked": sum(o["status"] == "tracked" for o in outcomes),
        "cached": sum(o["status"] == "cached" for o in outcomes),
        "failed": failed + eval_errors,
        "first_frame_s": (min(firsts) - flow_start) if firsts else None,
        "workers": sorted({o["record"]["worker"] for o in outcomes if o["record"]}),
    }
    catalog = ingest_run(
        _abs(params.catalog).as_posix(), run_id, params.model_dump(mode="json"),
        [{"seq": o["seq"], "status": o["status"], "record": o["record"], "error": o["error"]} for o in outcomes],
        evals, summary,
    )
    summary["catalog"] = catalog
    summary["tables"] = publish_tables(catalog["root"], run_id, params.run_name, summary, evals,
                                       str(results_root / "tables"))
    summary["wall_s"] = time.time() - flow_start
    if summary["failed"]:
        raise SequencesFailedError(
            f"{len(summary['failed'])} failure(s) in run {params.run_name} ({len(outcomes) - len(failed)} of "
            f"{len(outcomes)} sequences succeeded and were catalogued):\n  " + "\n  ".join(summary["failed"])
        )
    logger.info("done: %d tracked, %d cached, %d sequences in %.1f s", summary["tracked"], summary["cached"],
                summary["sequences"], summary["wall_s"])
    return summary
