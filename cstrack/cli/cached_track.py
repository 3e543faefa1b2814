"""Cached network outputs for the CLI: ``cstrack track --detections cached`` and ``cstrack tune``.

The cache of a sequence lives under ``RESULTS/detcache`` (:mod:`cstrack.run.detcache`), keyed by the
weights' sha256, variant, input size, inference path, NMS threshold, score floor and the sequence's
content; a missing cache is computed first (the network over every frame, once).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from cstrack.cli.common import parse_size
from cstrack.errors import ConfigError


def ensure_caches(seq_dirs: list[Path], results: Path, weights: str | None, variant: str | None, size: str | None,
                  model_path: str, floor: float, progress: bool, nms: float | None = None,
                  device: str = "auto") -> list[tuple[str, str]]:
    """``(sequence folder, cache file)`` per sequence, running the network where no cache exists.
    Model, input size and NMS threshold default to the checkpoint's (as ``cstrack track``)."""
    from tqdm import tqdm

    from cstrack.cli.model_options import build, model_ref, resolve_ref
    from cstrack.data.mot import Sequence
    from cstrack.model.inference_settings import settings_for_weights
    from cstrack.model.postprocess import PostprocessConfig
    from cstrack.run.detcache import CacheSpec, ensure_cache

    seqs = [Sequence.open(p) for p in seq_dirs]  # validate every folder first
    ref = model_ref(variant, weights, model_path, device)
    if ref.weights is None:
        raise ConfigError("--weights: cached detections need trained weights (a checkpoint or 'coco'), not random init")
    ref, _ = resolve_ref(ref)
    settings = settings_for_weights(ref.weights).override(input_size=parse_size(size) if size else None,
                                                          nms_thres=nms)
    spec = CacheSpec.of(ref, settings, floor)
    detector: Any = None

    def make() -> Any:
        nonlocal detector
        if detector is None:
            detector = build(ref, settings, PostprocessConfig(conf_thres=floor, nms_thres=settings.nms_thres))
        return detector

    out = []
    for seq in seqs:
        with tqdm(total=seq.info.seq_length, desc=f"cache {seq.root.name}", unit="frame", disable=not progress,
                  file=sys.stderr, leave=False) as bar:
            out.append((str(seq.root), str(ensure_cache(seq.root, results, spec, make, bar.update))))
    return out


def track_cached_sources(sources: list[str], out: Path, results: Path, weights: str | None, variant: str | None,
                         size: str | None, conf: float | None, nms: float | None, model_path: str,
                         preset_name: str | None, progress: bool, device: str = "auto") -> None:
    """``cstrack track --detections cached``: replay each MOT folder's cache through the tracker."""
    from cstrack.cli.common import merge_timing
    from cstrack.cli.model_options import effective_settings, resolve_model
    from cstrack.model.inference_settings import tracker_config
    from cstrack.run.detcache import DEFAULT_SCORE_FLOOR, track_cached

    not_mot = [s for s in sources if not (Path(s) / "seqinfo.ini").is_file()]
    if not_mot:
        raise ConfigError(f"--detections cached: needs MOTChallenge folders (seqinfo.ini), not {not_mot[0]}")
    names = [Path(s).name for s in sources]
    if len(set(names)) != len(names):
        raise ConfigError(f"SOURCE: two sources share a name ({names}); results would overwrite")
    _, weights_arg = resolve_model(variant, weights)
    settings = effective_settings(weights_arg, size, conf, nms, preset_name)
    if settings.conf_thres < DEFAULT_SCORE_FLOOR:
        raise ConfigError(f"--conf: {settings.conf_thres} is below the cache's score floor {DEFAULT_SCORE_FLOOR}")
    w, h = settings.input_size
    caches = ensure_caches([Path(s) for s in sources], results, weights, variant, f"{w}x{h}", model_path,
                           DEFAULT_SCORE_FLOOR, progress, settings.nms_thres, device)
    out.mkdir(parents=True, exist_ok=True)
    config = tracker_config(settings)
    for seq_dir, cache in caches:
        run = track_cached(seq_dir, out, cache, config, settings.conf_thres)
        merge_timing(out / "timing.json", {run.sequence: {**run.timing_record(), "cache": cache,
                                                          "settings": settings.to_dict()}})
        typer.echo(f"{run.sequence}: {run.frames} frames replayed from {Path(cache).name}, {run.fps:.0f} fps "
                   f"(tracker only), {run.num_tracks} tracks, {run.num_boxes} boxes -> {run.result_path}")
