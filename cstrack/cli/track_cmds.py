"""``cstrack track``: run the tracker over MOTChallenge folders, video files, image folders or globs,
cameras and streams.

Writes ``OUT/<name>.txt`` (MOTChallenge result format) per source and merges per-source timings
into ``OUT/timing.json``::

    {name: {"frames": n, "fps": end-to-end fps,
            "ms": {"read", "preprocess", "forward", "postprocess", "associate"},  # cstrack.timing.STAGES
            "settings": {"weights", "weights_sha256", "variant", "path", "device", "device_name",
                         "input_size", "conf_thres", "nms_thres", "tracker_preset", "frame_rate"},
            "stopped",  # MOT folders: only when --max-frames / --duration / Ctrl-C ended it early
            # sources other than MOT folders also:
            "source", "kind", "frame_rate", "stopped", "dropped", "reconnects"}}

Two ``frame_rate`` values, two meanings: ``settings.frame_rate`` is the checkpoint's (the footage
rate it was trained on, from its record: the fallback); the top-level ``frame_rate`` is the rate the
tracker used for this source (``--fps``, else the container's or stream's, else the checkpoint's).

Inference settings come from the checkpoint's record (:mod:`cstrack.model.inference_settings`);
``--size``, ``--conf``, ``--nms`` and ``--preset`` override them.  They are printed once on stderr.
"""

from __future__ import annotations

import math
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import typer

from cstrack.cli.common import check_output_dir, file_inputs, guarded, merge_timing
from cstrack.cli.model_options import (
    build,
    conf_option,
    describe_settings,
    device_option,
    effective_settings,
    model_ref,
    nms_option,
    path_option,
    resolve_ref,
    settings_record,
    size_option,
    speaks_flags,
    weights_option,
)
from cstrack.errors import ConfigError
from cstrack.signals import GracefulStop
from cstrack.timing import DEFAULT_PREFETCH

if TYPE_CHECKING:
    from cstrack.run.sequence import DetectionMode

DEFAULT_OUT = Path("results/track")


def output_path(option: Path | None, name: str, suffix: str, several: bool) -> Path | None:
    """``--save-video`` / ``--jsonl``: the file itself for one source, a folder of ``<name><suffix>`` for several."""
    if option is None:
        return None
    if several or option.is_dir():
        return option / f"{name}{suffix}"
    if option.suffix.lower() != suffix:
        raise ConfigError(f"{'--save-video' if suffix == '.mp4' else '--jsonl'}: expected a {suffix} file "
                          f"(or a folder when tracking several sources), got {option}")
    return option


def register(app: typer.Typer) -> None:
    @app.command("track")
    @guarded
    @speaks_flags
    def track(
        sources: list[str] = typer.Argument(
            ..., help="MOTChallenge sequence folders, video files, image folders or globs ('frames/*.jpg'), "
            "camera indices (0) or stream URLs (rtsp://, http:// MJPEG)", show_default=False,
        ),
        out: Path = typer.Option(DEFAULT_OUT, "--out", help="output folder for <name>.txt and timing.json"),
        detections: str = typer.Option(
            "private", "--detections",
            help="private (model boxes), public (det/det.txt boxes), gt (counted ground-truth boxes) or cached "
            "(the network's outputs cached under --results, computed first when missing); public, gt and cached "
            "need MOT folders",
        ),
        results: Path = typer.Option(Path("results"), "--results", help="--detections cached: results root "
                                     "holding detcache/"),
        variant: str | None = typer.Option(
            None, "--variant", help="model variant (default: the checkpoint's); public/gt use a model only when "
            "--variant or --weights is given",
        ),
        weights: str | None = weights_option("(weights/cstrack-n_cpu.pt)"),
        size: str | None = size_option(),
        conf: float | None = conf_option(),
        nms: float | None = nms_option(),
        model_path: str = path_option(),
        device: str = device_option(),
        batch_size: int | None = typer.Option(
            None, "--batch-size", min=1, help="MOT folders: frames per network call on the eager/fast paths "
            "(default: 8 on CUDA, 1 on the CPU; same tracks as 1, docs/gpu.md); other sources run 1 frame per call"),
        precision: str = typer.Option("fp32", "--precision", help="fp32 (the reference), fp16 (CUDA autocast; "
                                      "bf16 on the CPU) or bf16; eager/fast paths (docs/gpu.md)"),
        prefetch: int = typer.Option(DEFAULT_PREFETCH, "--prefetch", min=0, help="frames read + letterboxed ahead (0: off); offline sequences on the ONNX paths run whole frames on the frame workers (docs/cpu_speed.md)"),
        preset_name: str | None = typer.Option(None, "--preset", metavar="NAME|FILE", help="tracker preset: "
                                               "default, mot17, mot20, original, sots, or a preset file (YAML/JSON, "
                                               "e.g. a tune study's best_preset.yaml); default: the checkpoint's"),
        fps: float | None = typer.Option(None, "--fps", min=0.001, help="source frame rate (default: the "
                                         "container's or stream's, else the checkpoint's training rate, else 30)"),
        max_frames: int | None = typer.Option(None, "--max-frames", min=1, help="stop after this many frames per source"),
        duration: float | None = typer.Option(None, "--duration", min=0.001, help="stop after this many seconds per source"),
        save_video: Path | None = typer.Option(None, "--save-video", help="annotated MP4 (boxes, IDs, trails); a "
                                               "folder when tracking several sources"),
        jsonl: Path | None = typer.Option(None, "--jsonl", help="JSON lines, one per frame: frame, timestamp, "
                                          "tracks; a folder when tracking several sources"),
        queue: int = typer.Option(2, "--queue", min=1, help="live sources: frames waiting for the tracker "
                                  "(the oldest is dropped when full)"),
        reconnects: int = typer.Option(5, "--reconnects", min=0, help="live sources: reconnect attempts in a row "
                                       "(backoff 0.5 s, doubling)"),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="show a progress bar per source"),
        skip_bad_frames: bool = typer.Option(
            False, "--skip-bad-frames", help="MOT folders: track a missing, truncated or corrupt frame with no "
            "detections (counted) instead of stopping with an error naming it",
        ),
    ) -> None:
        """Track each SOURCE and write OUT/<name>.txt plus OUT/timing.json (Ctrl-C stops cleanly)."""
        from cstrack.run.sequence import DETECTION_MODES
        from cstrack.sources import classify, make_source, source_name

        if detections == "cached":
            from cstrack.cli.cached_track import track_cached_sources

            check_output_dir(out, "--out")
            track_cached_sources(sources, out, results, weights, variant, size, conf, nms, model_path, preset_name,
                                 progress)
            return
        if detections not in DETECTION_MODES:
            raise ConfigError(f"--detections: expected one of {', '.join(DETECTION_MODES)}, got {detections!r}")
        mode = cast("DetectionMode", detections)  # checked just above
        for option, value in (("--fps", fps), ("--duration", duration)):
            if value is not None and not math.isfinite(value):
                raise ConfigError(f"{option}: expected a finite number, got {value}")
        check_output_dir(out, "--out")
        kinds = [classify(s) for s in sources]
        if detections != "private":
            other = [s for s, k in zip(sources, kinds, strict=True) if k != "mot"]
            if other:
                raise ConfigError(f"--detections {detections}: needs MOTChallenge folders (det/gt), not {other[0]}")
        names = [source_name(s, k) for s, k in zip(sources, kinds, strict=True)]
        if len(set(names)) != len(names):
            raise ConfigError(f"SOURCE: two sources share a name ({names}); results would overwrite")
        several = len(sources) > 1
        videos = [output_path(save_video, n, ".mp4", several) for n in names]
        jsonls = [output_path(jsonl, n, ".jsonl", several) for n in names]

        uses_model = detections == "private" or variant is not None or weights is not None
        ref = dev = None
        if uses_model:
            ref, dev = resolve_ref(model_ref(variant, weights, model_path, device))  # fails before any work
        weights_arg = None if ref is None else ref.weights
        _check_track_paths(sources, kinds, names, out, videos, jsonls, save_video if several else None,
                           jsonl if several else None, weights_arg, preset_name)
        settings = effective_settings(weights_arg, size, conf, nms, preset_name)
        rec = settings_record(settings, None if ref is None else ref.variant, weights_arg,
                              None if ref is None else ref.path, dev)
        opened = _open_all(sources, kinds, queue, reconnects, make_source)  # validate every source first
        try:
            detector = build(ref, settings) if ref is not None else None
            single = detector  # what live sources and videos run: one frame per call
            if detector is not None:
                from cstrack.infer.batch import BatchedDetector, batching

                single = batching(detector, batch_size, precision, live=True)
                detector = batching(detector, batch_size, precision)
                if isinstance(detector, BatchedDetector):
                    typer.echo(f"batch {detector.batch_size} (MOT folders), precision {detector.effective_precision}",
                               err=True)
            typer.echo(describe_settings(rec, settings, dev), err=True)
            out.mkdir(parents=True, exist_ok=True)
            stop = threading.Event()
            with GracefulStop(stop) as signals:  # 1st SIGINT/SIGTERM: stop and write; 2nd: abort (cstrack.signals)
                for spec, source, video_out, jsonl_out in zip(sources, opened, videos, jsonls, strict=True):
                    if stop.is_set():
                        break
                    if source is None:
                        # a MOT folder runs to its end after a first signal (cstrack.signals); a second aborts
                        _track_mot(spec, out, mode, settings, detector, prefetch, progress, rec,
                                   video_out, jsonl_out, skip_bad_frames, max_frames, duration)
                        continue
                    _track_other(source, out, single, settings, rec, fps, max_frames, duration, video_out,
                                 jsonl_out, stop, prefetch, progress)
        finally:
            for source in opened:
                if source is not None:
                    source.close()
        if signals.exit_status:
            typer.echo("terminated (SIGTERM): what was tracked so far is written", err=True)
            raise typer.Exit(code=signals.exit_status)


def _check_track_paths(sources: list[str], kinds: list[str], names: list[str], out: Path,
                       videos: list[Path | None], jsonls: list[Path | None], video_dir: Path | None,
                       jsonl_dir: Path | None, weights: str | Path | None, preset_name: str | None) -> None:
    """The output rule (:mod:`cstrack.pathrules`) over everything ``track`` reads and writes, and the
    output folders' writability: refused before any source is opened."""
    import glob

    from cstrack.pathrules import Input, Output, check_paths

    inputs = file_inputs(weights, preset_name)
    for spec, kind in zip(sources, kinds, strict=True):
        if kind in ("mot", "images", "video"):
            inputs.append(Input(Path(spec), "SOURCE"))
        elif kind == "glob":
            inputs += [Input(Path(m), "SOURCE") for m in sorted(glob.glob(spec))]
    outputs: list[Output | None] = [Output(out, "--out")]
    outputs += [Output(out / f"{n}.txt", "--out") for n in names] + [Output(out / "timing.json", "--out")]
    outputs += [Output(v, "--save-video") if v is not None else None for v in videos]
    outputs += [Output(j, "--jsonl") if j is not None else None for j in jsonls]
    outputs += [Output(video_dir, "--save-video") if video_dir is not None else None,
                Output(jsonl_dir, "--jsonl") if jsonl_dir is not None else None]
    check_paths(outputs, inputs)
    for option, files in (("--save-video", videos), ("--jsonl", jsonls)):
        for folder in sorted({f.parent for f in files if f is not None}):
            check_output_dir(folder, option)


def _open_all(sources: list[str], kinds: list[str], queue: int, reconnects: int, make_source: Any) -> list[Any]:
    """Every non-MOT source opened (``None`` for MOT folders, checked by :class:`Sequence.open`); on
    a failure the ones already opened are closed before the error propagates."""
    from cstrack.data.mot import Sequence

    opened: list[Any] = []
    try:
        for spec, kind in zip(sources, kinds, strict=True):
            if kind == "mot":
                Sequence.open(spec)
                opened.append(None)
                continue
            src = make_source(spec, kind, queue_size=queue, reconnects=reconnects)
            src.open()
            if src.live:  # reachable; it connects again when its turn comes (frames buffered meanwhile are stale)
                src.close()
            opened.append(src)
    except BaseException:
        for src in opened:
            if src is not None:
                src.close()
        raise
    return opened


def _track_mot(spec: str, out: Path, detections: DetectionMode, settings: Any, detector: Any, prefetch: int,
               progress: bool, rec: dict[str, Any], video_out: Path | None, jsonl_out: Path | None,
               skip_bad: bool = False, max_frames: int | None = None, duration: float | None = None,
               stop: threading.Event | None = None) -> None:
    from tqdm import tqdm

    from cstrack.data.mot import Sequence
    from cstrack.model.inference_settings import tracker_config
    from cstrack.run.frames import prefetched_frames
    from cstrack.run.sequence import track_sequence

    seq = Sequence.open(spec)
    total = seq.info.seq_length if max_frames is None else min(seq.info.seq_length, max_frames)
    with tqdm(total=total, desc=seq.root.name, unit="frame", disable=not progress, file=sys.stderr,
              leave=False) as bar:
        run = track_sequence(seq.root, out, detections, tracker_config(settings), detector,
                             progress=bar.update, frame_reader=prefetched_frames(prefetch, skip_bad),
                             max_frames=max_frames, duration=duration, stop=stop)
    merge_timing(out / "timing.json", {run.sequence: {**run.timing_record(), "settings": rec}})
    extra = ""
    if video_out is not None:
        from cstrack.render import render_tracks

        extra += f", video {render_tracks(seq.root, run.result_path, video_out).path}"
    if jsonl_out is not None:
        from cstrack.run.sinks import jsonl_from_results

        extra += f", jsonl {jsonl_from_results(run.result_path, jsonl_out, seq.info.frame_rate, run.frames)}"
    how = "" if run.stopped == "end" else f" (stopped: {run.stopped})"
    typer.echo(f"{run.sequence}: {run.frames} frames, {run.fps:.1f} fps, {run.num_tracks} tracks, "
               f"{run.num_boxes} boxes -> {run.result_path}{extra}{how}")
    if run.bad_frames:
        shown = ", ".join(map(str, run.bad_frames[:20])) + (" ..." if len(run.bad_frames) > 20 else "")
        typer.echo(f"{run.sequence}: skipped {len(run.bad_frames)} bad frame(s) (no detections): {shown}")
    if detections == "private" and run.frames and not run.num_boxes:
        w, h = settings.input_size
        typer.echo(f"warning: {run.sequence}: the detector found no box in {run.frames} frames at --size {w}x{h}; "
                   "check --size, --conf and --weights", err=True)


def _track_other(source: Any, out: Path, detector: Any, settings: Any, rec: dict[str, Any], fps: float | None,
                 max_frames: int | None, duration: float | None, video_out: Path | None, jsonl_out: Path | None,
                 stop: threading.Event, prefetch: int, progress: bool) -> None:
    from tqdm import tqdm

    from cstrack.model.inference_settings import tracker_config
    from cstrack.run.source import track_source

    rate = fps or source.fps or settings.frame_rate
    total = source.total if max_frames is None or source.total is None else min(source.total, max_frames)
    with tqdm(total=total if not source.live else max_frames, desc=source.name, unit="frame",
              disable=not progress, file=sys.stderr, leave=False) as bar:
        run = track_source(source, out, detector, tracker_config(settings), frame_rate=rate,
                           max_frames=max_frames, duration=duration, video=video_out, jsonl=jsonl_out, stop=stop,
                           prefetch=prefetch, progress=bar.update)
    if not run.frames:
        if run.error is not None:
            raise run.error
        typer.echo(f"{run.sequence}: no frame tracked, nothing written")
        return
    merge_timing(out / "timing.json", {run.sequence: {**run.timing_record(), "settings": rec}})
    extra = "".join(f", {label} {p}" for label, p in (("video", run.video_path), ("jsonl", run.jsonl_path)) if p)
    live = f", {run.dropped} dropped, {run.reconnects} reconnects" if source.live else ""
    how = "" if run.stopped in ("end", "error") else f" (stopped: {run.stopped})"
    typer.echo(f"{run.sequence}: {run.frames} frames at {run.frame_rate:g} fps source rate, {run.fps:.1f} fps "
               f"tracked{live}, {run.num_tracks} tracks, {run.num_boxes} boxes -> {run.result_path}{extra}{how}")
    if run.error is not None:
        raise run.error
