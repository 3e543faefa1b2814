"""The ``demo`` flow: prepare the shipped data, track it on a LocalCluster, evaluate, catalogue,
regenerate the tables and render one sequence as an annotated MP4.  Run it with ``make demo``
(:mod:`flows.demo` starts a temporary Prefect server first)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow
from prefect.cache_policies import CachePolicy
from prefect.logging import get_run_logger

from flows.params import (
    DEMO_WEIGHTS,
    ClusterSpec,
    DatasetSelection,
    DemoParams,
    ModelSpec,
    PrepareDataParams,
    TrackAllParams,
)
from flows.prepare_data import prepare_data
from flows.track_all import CACHE_DIR, track_all
from tasks.render import render_cache_key, render_video

DATASETS = ("pets09-s2l1", "mot17-mini", "synth-mini")


def demo_weights(weights: str | None) -> str:
    """The checkpoint to use: the given one, else the shipped CPU checkpoint (what ``cstrack track``
    uses without ``--weights``) when it exists, else the COCO weights (``--weights coco`` semantics)."""
    if weights:
        return weights
    return DEMO_WEIGHTS if Path(DEMO_WEIGHTS).is_file() else "coco"


def track_params(params: DemoParams) -> TrackAllParams:
    return TrackAllParams(
        data_root=params.data_root, results_root=params.results_root, run_name="demo", tag="demo",
        model=ModelSpec(variant="cstrack-n", weights=demo_weights(params.weights), input_size=params.input_size),
        cluster=ClusterSpec(local_workers=params.local_workers),
        datasets=[DatasetSelection(name="pets09-s2l1"), DatasetSelection(name="mot17-mini"),
                  # sprites are not COCO people: track them on their gt boxes (association only)
                  DatasetSelection(name="synth-mini", mode="gt")],
    )


@flow(name="demo", log_prints=True)
def demo(params: DemoParams) -> dict[str, Any]:
    logger = get_run_logger()
    prepare_data(PrepareDataParams(datasets=list(DATASETS), data_root=params.data_root))
    tp = track_params(params)
    logger.info("weights: %s", tp.model.weights)
    summary = track_all(tp)
    rows = [s for s in summary["per_sequence"] if s["sequence"].endswith(f"/{params.render}")]
    if not rows:
        raise ValueError(f"render: no tracked sequence named {params.render!r}")
    dataset, split, name = rows[0]["sequence"].split("/")
    results_root = Path(params.results_root).resolve()
    seq_dir = Path(params.data_root).resolve() / dataset / "images" / split / name
    result = Path(summary["results"]) / dataset / split / f"{name}.txt"
    out = results_root / "videos" / f"{name}.mp4"
    cache = results_root / CACHE_DIR
    task = render_video.with_options(
        cache_policy=CachePolicy.from_cache_key_fn(render_cache_key).configure(key_storage=str(cache / "keys")),
        result_storage=cache / "records", refresh_cache=not out.is_file(),
    )
    video = task(str(seq_dir), str(result), str(out), params.trail)
    logger.info("annotated video: %s (%d frames, %d tracks)", video["path"], video["frames"], video["tracks"])
    return {"track_all": summary, "video": video}
