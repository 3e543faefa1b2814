"""``tune``: cache the network outputs (one Dask task per sequence) -> seeded TPE study whose trials
are scored as Dask tasks over the caches -> leakage-guarded validation -> preset file, report,
plot, catalog rows and a markdown artifact.  Same library as ``cstrack tune``
(:mod:`cstrack.tune.pipeline`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow
from prefect.logging import get_run_logger

from cstrack.errors import ConfigError
from flows.cluster import declared_resources, describe, needs_gpu, placed, placement, task_runner_for
from flows.dispatch import abs_path, resolve_weights
from flows.inference import job_model
from flows.params import TuneParams
from tasks.publish import artifact_key, publish_markdown
from tasks.tune import ensure_cache_task, job_dict, score_task


@flow(name="tune", log_prints=True)
def tune(params: TuneParams) -> dict[str, Any]:
    """Run (or continue) the study ``params.study``; returns the ``--json`` summary plus files."""
    from catalog.record import tune_trials_writer
    from cstrack.tune.pipeline import build_jobs, check_names, finish, study_dir
    from cstrack.tune.study import StudyConfig, run_study

    logger = get_run_logger()
    results = abs_path(params.results_root)
    model = job_model(params.model, resolve_weights(params.model.weights))
    if model.precision != "fp32":
        raise ConfigError("tune replays cached fp32 network outputs", "model.precision")
    settings = model.settings  # the checkpoint's own, with the model's overrides
    tracker_preset = params.tracker_preset or settings.tracker_preset  # the baseline: the checkpoint's own settings
    cfg = StudyConfig(params.study, params.trials, tracker_preset, params.objective, params.seed, params.batch,
                      baseline_conf=settings.conf_thres)
    seqs = [str(abs_path(s)) for s in [*params.sequences, *params.val]]
    check_names(seqs)
    sdir = study_dir(results, params.study)
    logger.info("study %s on %s", params.study, describe(params.cluster))
    with task_runner_for(params.cluster) as runner:
        declared = declared_resources(runner.client)
        with placed(placement(needs_gpu(model.device, "cached"), declared)):  # the model fills the caches
            futures = [runner.submit(ensure_cache_task, parameters={"seq_dir": s, "results_root": str(results),
                                                                     "model": model}) for s in seqs]
        caches = list(zip(seqs, [f.result() for f in futures], strict=True))
        n = len(params.sequences)
        tune_job, val_job, protocol = build_jobs(caches[:n], caches[n:], sdir, tracker_preset,
                                                 params.objective, params.eval_preset)

        def mapper(fn: Any, jobs: Any, trial_params: Any, tags: Any) -> list[dict[str, Any]]:
            with placed(placement(False, declared)):  # a trial replays cached outputs: no model, no GPU
                futs = [runner.submit(score_task, parameters={"job": job_dict(j), "params": dict(p), "tag": t})
                        for j, p, t in zip(jobs, trial_params, tags, strict=True)]
            return [f.result() for f in futs]

        result = run_study(cfg, tune_job, val_job, sdir, mapper, logger.info)
    files = finish(result, sdir, tune_trials_writer(abs_path(params.catalog_root) if params.catalog_root else results))
    md = Path(files["report"]).read_text(encoding="utf-8")
    publish_markdown(artifact_key("tune", params.study), md,
                     f"tune {params.study}: {len(result.trials)} trials, best vs default on the val windows")
    logger.info("val %s: best %.4f, baseline %.4f (%s)%s", params.objective, result.val_score,
                result.default_val_score, protocol, "" if result.beats_baseline else ": not better, no preset written")
    return {**result.to_json(), "protocol": protocol, "files": files}
