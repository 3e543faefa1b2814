"""Render task: one :func:`cstrack.render.render_tracks` call, cached by the content it draws."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import CachePolicy

from cstrack.fsutil import sha256_file, stable_hash
from tasks.cachekeys import sequence_fingerprint

_RENDER_CODE = Path(__file__).resolve().parent.parent / "cstrack" / "render.py"


def render_cache_key(context: Any, parameters: dict[str, Any]) -> str:
    """Same frames + same result file + same options + same drawing code -> same video."""
    return stable_hash({
        "frames": sequence_fingerprint(parameters["seq_dir"], "private", reads_images=True),
        "result": sha256_file(parameters["result_path"]),
        "trail": parameters.get("trail"),
        "max_frames": parameters.get("max_frames"),
        "code": sha256_file(_RENDER_CODE),
        "name": Path(parameters["out_path"]).name,
    })


@task(name="render-video", task_run_name="render {out_path}", persist_result=True, result_serializer="json",
      cache_policy=CachePolicy.from_cache_key_fn(render_cache_key))
def render_video(seq_dir: str, result_path: str, out_path: str, trail: int = 30,
                 max_frames: int | None = None) -> dict[str, Any]:
    """Annotated MP4 (boxes, IDs, trails) of one tracked sequence; returns its path and counts."""
    from prefect.logging import get_run_logger

    from cstrack.render import render_tracks

    logger = get_run_logger()

    def progress(frame: int) -> None:
        if frame % 100 == 0:
            logger.info("rendered %d frames", frame)

    s = render_tracks(seq_dir, result_path, out_path, trail=trail, max_frames=max_frames, on_frame=progress)
    return {"path": str(s.path), "frames": s.frames, "tracks": s.tracks, "boxes": s.boxes, "seconds": s.seconds,
            "sha256": sha256_file(s.path)}
