"""Tasks of the ``tune`` flow: one sequence's network-output cache, one trial's score.

Arguments are plain JSON values (a scoring job travels as :func:`job_dict`), so they persist and
reach Dask workers cheaply; each task calls one library function.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from cstrack.tune.evaluate import EvalJob, Segment
from tasks.records import JobModel


def job_dict(job: EvalJob) -> dict[str, Any]:
    return asdict(job)


def job_from(data: dict[str, Any]) -> EvalJob:
    return EvalJob(**{**data, "segments": tuple(Segment(**s) for s in data["segments"])})


@task(name="detection-cache", task_run_name="cache {seq_dir}", cache_policy=NO_CACHE, retries=1)
def ensure_cache_task(seq_dir: str, results_root: str, model: JobModel) -> str:
    """The cache file of ``seq_dir`` (computed when missing) for the resolved ``model``
    (:func:`flows.inference.job_model`: its input size and NMS threshold; the score floor replaces
    the detection threshold)."""
    from cstrack.model.postprocess import PostprocessConfig
    from cstrack.run.detcache import DEFAULT_SCORE_FLOOR, CacheSpec, ensure_cache

    spec = CacheSpec.of(model.ref, model.settings, DEFAULT_SCORE_FLOOR)

    def detector() -> Any:
        from tasks.track import build_model_detector

        return build_model_detector(model, PostprocessConfig(conf_thres=DEFAULT_SCORE_FLOOR, nms_thres=spec.nms_thres))

    return str(ensure_cache(seq_dir, results_root, spec, detector))


@task(name="tune-trial", task_run_name="score {tag}", cache_policy=NO_CACHE)
def score_task(job: dict[str, Any], params: dict[str, Any], tag: str) -> dict[str, Any]:
    """:func:`cstrack.tune.evaluate.score` of ``params`` on the windows of ``job``."""
    from cstrack.tune.evaluate import score

    return score(job_from(job), params, tag)
