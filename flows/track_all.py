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
from tasks.catalog import evaluate_task
from tasks.data import select_sequences
from tasks.publish import artifact_key, metrics_markdown, publish_markdown, tracking_markdown
from tasks.report import build_report_task
from tasks.results import check_cached_result
from tasks.track import track_sequence_task

CACHE_DIR = ".cache"  # under results_root: cache keys (metadata) and the small persisted records


class SequencesFailedError(RuntimeError):
    """Raised at the end of a run in which some sequences (or evaluations) failed; ``summary`` is
    what the run did (the successful sequences are evaluated and catalogued)."""

    def __init__(self, message: str, summary: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.summary = summary or {}


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


def catalog_config(params: TrackAllParams, selection: DatasetSelection) -> dict[str, Any]:
    """What the catalog records as the run's config (its hash labels the run in the reports)."""
    import dataclasses

    from cstrack.tracker import preset

    m = params.model
    return {
        "model": {"variant": m.variant, "input_size": list(m.input_size), "path": m.path, "conf_thres": m.conf_thres,
                  "weights": m.weights if m.weights in (None, "coco") else Path(m.weights).name},
        "detection": {"mode": params.mode_of(selection), "appearance": params.appearance_of(selection)},
        "tracker": {"preset": params.tracker_preset, **dataclasses.asdict(preset(params.tracker_preset))},
    }


def _run_info(params: TrackAllParams, selection: DatasetSelection, split: str, records: list[dict[str, Any]],
              results_dir: Path, flow_run_id: str | None) -> dict[str, Any]:
    """The catalog ``RunInfo`` fields of one (dataset, split) group of tracked sequences."""
    from tasks.cachekeys import weights_fingerprint

    config = catalog_config(params, selection)
    job = job_for(params, selection)
    weights = weights_fingerprint(job["model"]["weights"]) if job["uses_model"] else None
    content = {"records": sorted((r["sequence"], r["result_sha256"], r["started"], r["worker"]) for r in records),
               "config": config, "preset": selection.preset}
    tracker = params.model.variant
    from tasks.catalog import catalog_run_id

    return {
        "run_id": catalog_run_id(tracker, selection.name, split, content),
        "dataset": selection.name, "tracker": tracker, "source": "cstrack",
        "label": params.label or tracker, "tag": params.tag, "split": split, "variant": params.model.variant,
        "detection_mode": params.mode_of(selection), "eval_preset": selection.preset, "config": config,
        "weights_sha256": weights.split(":", 1)[-1] if weights else None, "flow_run_id": flow_run_id,
        "results_uri": str(results_dir), "started_at": min(r["started"] for r in records),
        "ended_at": max(r["finished"] for r in records),
    }


def evaluate_outcomes(params: TrackAllParams, outcomes: list[dict[str, Any]], run_dir: Path,
                      flow_run_id: str | None) -> tuple[list[dict[str, Any]], list[str]]:
    """Per (dataset, split): evaluate the successfully tracked sequences that have gt and record
    them in the catalog as one run."""
    selections = {d.name: d for d in params.datasets}
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for o in outcomes:
        if o["status"] != "failed" and o["seq"]["has_gt"]:
            groups.setdefault((o["seq"]["dataset"], o["seq"]["split"]), []).append(o)
    catalog_root = str(_abs(params.catalog))
    evals, errors = [], []
    for (dataset, split), group in sorted(groups.items()):
        label = f"{dataset}/{split}"
        results_dir = run_dir / dataset / split
        run = _run_info(params, selections[dataset], split, [o["record"] for o in group], results_dir, flow_run_id)
        state = evaluate_task(
            group[0]["seq"]["gt_root"], str(results_dir), sorted(o["seq"]["name"] for o in group),
            selections[dataset].preset, label, catalog_root, run, return_state=True,
        )
        res = state.result(raise_on_failure=False)
        if isinstance(res, BaseException):
            errors.append(f"evaluation {label}: {_error_text(res)}")
        else:
            evals.append({**res, "dataset": dataset, "split": split})
    return evals, errors


def run_markdown(params: TrackAllParams, summary: dict[str, Any], outcomes: list[dict[str, Any]],
                 evals: list[dict[str, Any]], report_md: str) -> str:
    head = (f"# track-all `{params.run_name}` ({params.tag})\n\n"
            f"{summary['sequences']} sequences: {summary['tracked']} tracked, {summary['cached']} cached, "
            f"{len(summary['failed'])} failed; workers: {', '.join(summary['workers']) or '-'}; "
            f"results: `{summary['results']}`")
    parts = [head, "## Tracking", tracking_markdown(outcomes)]
    if evals:
        parts += ["## Metrics of this run", metrics_markdown(evals)]
    if summary["failed"]:
        parts += ["## Failures", "\n".join(f"- {f}" for f in summary["failed"])]
    if report_md:
        parts += ["## Regenerated tables (whole catalog)", report_md.replace("# CSTrack results", "").strip()]
    return "\n\n".join(parts) + "\n"


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
    flow_run_id = str(flow_run.id) if flow_run.id else None
    evals, eval_errors = evaluate_outcomes(params, outcomes, run_dir, flow_run_id) if params.evaluate else ([], [])
    firsts = [o["record"]["first_frame_unix"] for o in outcomes
              if o["status"] == "tracked" and o["record"].get("first_frame_unix")]
    summary: dict[str, Any] = {
        "flow_run_id": flow_run_id,
        "run_name": params.run_name,
        "tag": params.tag,
        "results": str(run_dir),
        "catalog": str(_abs(params.catalog)),
        "catalog_runs": [e["run_id"] for e in evals if e.get("run_id")],
        "sequences": len(outcomes),
        "tracked": sum(o["status"] == "tracked" for o in outcomes),
        "cached": sum(o["status"] == "cached" for o in outcomes),
        "failed": failed + eval_errors,
        "first_frame_s": (min(firsts) - flow_start) if firsts else None,
        "workers": sorted({str(o["record"]["worker"]) for o in outcomes if o["record"]}),
        "metrics": [{"label": e["label"], "run_id": e.get("run_id"), "table": e["table"]} for e in evals],
        "per_sequence": [{"sequence": _seq_label(o["seq"]), "status": o["status"],
                          "worker": (o["record"] or {}).get("worker"), "frames": (o["record"] or {}).get("frames"),
                          "fps": (o["record"] or {}).get("fps")} for o in outcomes],
    }
    report = build_report_task(summary["catalog"], str(results_root / "tables")) if evals else {"report_md": ""}
    summary["tables"] = str(results_root / "tables")
    md = run_markdown(params, summary, outcomes, evals, str(report["report_md"]))
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
