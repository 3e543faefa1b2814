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


def job_dict(job: EvalJob) -> dict[str, Any]:
    return asdict(job)


def job_from(data: dict[str, Any]) -> EvalJob:
    return EvalJob(**{**data, "segments": tuple(Segment(**s) for s in data["segments"])})


@task(name="detection-cache", task_run_name="cache {seq_dir}", cache_policy=NO_CACHE, retries=1)
def ensure_cache_task(seq_dir: str, results_root: str, model: dict[str, Any]) -> str:
    """The cache file of ``seq_dir`` (computed when missing); ``model``: variant, weights,
    input_size, path, nms_thres."""
    from cstrack.detcache import DEFAULT_SCORE_FLOOR, CacheSpec, ensure_cache, weights_sha256

    w, h = model["input_size"]
    spec = CacheSpec(weights_sha256(model["weights"]), model["variant"], (int(w), int(h)), model["path"],
                     DEFAULT_SCORE_FLOOR, float(model["nms_thres"]))

    def detector() -> Any:
        from pathlib import Path

        from cstrack.model.detector import build_detector
        from cstrack.model.postprocess import PostprocessConfig

        weights = model["weights"] if model["weights"] == "coco" else Path(model["weights"])
        return build_detector(model["variant"], weights, (int(w), int(h)), path=model["path"],
                              post=PostprocessConfig(conf_thres=DEFAULT_SCORE_FLOOR, nms_thres=spec.nms_thres))

    return str(ensure_cache(seq_dir, results_root, spec, detector))


@task(name="tune-trial", task_run_name="score {tag}", cache_policy=NO_CACHE)
def score_task(job: dict[str, Any], params: dict[str, Any], tag: str) -> dict[str, Any]:
    """:func:`cstrack.tune.evaluate.score` of ``params`` on the windows of ``job``."""
    from cstrack.tune.evaluate import score

    return score(job_from(job), params, tag)
