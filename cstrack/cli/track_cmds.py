"""``cstrack track``: run the tracker over MOTChallenge sequence folders.

Writes ``OUT/<sequence>.txt`` (MOTChallenge result format) per sequence and merges per-sequence
timings into ``OUT/timing.json``::

    {sequence: {"frames": n, "fps": end-to-end fps,
                "ms": {"decode", "preprocess", "forward", "postprocess", "associate"}}}
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from cstrack.cli.common import guarded, parse_size
from cstrack.errors import ConfigError

DEFAULT_VARIANT = "cstrack-l"


def merge_timing(path: Path, runs: dict[str, dict[str, Any]]) -> Path:
    """Merge ``runs`` ({sequence: record}) into the JSON file at ``path`` atomically.

    Entries of other sequences already in the file are kept; an unreadable file is replaced
    (with a warning on stderr).
    """
    from cstrack.fsutil import atomic_write_json

    data: dict[str, Any] = {}
    if path.is_file():
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(loaded, dict):
                data = loaded
            else:
                raise ValueError("not a JSON object")
        except (ValueError, UnicodeDecodeError) as exc:
            print(f"warning: replacing unreadable {path} ({exc})", file=sys.stderr)
    data.update(runs)
    return atomic_write_json(path, data)


def register(app: typer.Typer) -> None:
    @app.command("track")
    @guarded
    def track(
        seq_dirs: list[Path] = typer.Argument(..., help="MOTChallenge sequence folders (with seqinfo.ini)"),
        out: Path = typer.Option(..., "--out", help="output folder for <sequence>.txt and timing.json"),
        detections: str = typer.Option(
            "private", "--detections",
            help="private (model boxes), public (det/det.txt boxes) or gt (counted ground-truth boxes)",
        ),
        variant: str | None = typer.Option(
            None, "--variant",
            help=f"model variant (default {DEFAULT_VARIANT} in private mode); public/gt use a model only "
            "when --variant or --weights is given",
        ),
        weights: str | None = typer.Option(
            None, "--weights", help="checkpoint path, or 'coco' (cstrack-n); none = random init (private mode)"
        ),
        size: str = typer.Option("1088x608", "--size", help="network input WxH (multiples of 32)"),
        model_path: str = typer.Option(
            "eager", "--path", help="model path: eager, fast (folded channels-last torch), onnx or int8 (ONNX Runtime)"
        ),
        prefetch: int = typer.Option(2, "--prefetch", min=0, help="frames decoded + letterboxed ahead in a thread (0: off)"),
        preset_name: str = typer.Option("default", "--preset", help="tracker preset: default, mot17, mot20, original"),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="show a progress bar per sequence"),
        skip_bad_frames: bool = typer.Option(
            False, "--skip-bad-frames",
            help="track a missing, truncated or corrupt frame with no detections (counted) instead of stopping",
        ),
    ) -> None:
        """Track each SEQ_DIR and write OUT/<sequence>.txt plus OUT/timing.json."""
        from tqdm import tqdm

        from cstrack.data.mot import Sequence
        from cstrack.runner import DETECTION_MODES, prefetched_frames, track_sequence
        from cstrack.tracker import preset

        if detections not in DETECTION_MODES:
            raise ConfigError(f"--detections: expected one of {', '.join(DETECTION_MODES)}, got {detections!r}")
        config = preset(preset_name)
        input_size = parse_size(size)
        names = [p.name for p in seq_dirs]
        if len(set(names)) != len(names):
            raise ConfigError(f"SEQ_DIR: two sequences share a folder name ({names}); results would overwrite")
        seqs = [Sequence.open(p) for p in seq_dirs]  # validate every folder before any work

        detector = None
        if detections == "private" or variant is not None or weights is not None:
            from cstrack.model.detector import build_detector

            weights_arg: str | Path | None = None
            if weights is not None:
                weights_arg = weights if weights == "coco" else Path(weights)
            detector = build_detector(variant or DEFAULT_VARIANT, weights_arg, input_size, path=model_path)

        out.mkdir(parents=True, exist_ok=True)
        for seq in seqs:
            with tqdm(
                total=seq.info.seq_length, desc=seq.root.name, unit="frame", disable=not progress,
                file=sys.stderr, leave=False,
            ) as bar:
                run = track_sequence(seq.root, out, detections, config, detector, progress=bar.update,  # type: ignore[arg-type]
                                     frame_reader=prefetched_frames(prefetch, skip_bad_frames))
            merge_timing(out / "timing.json", {run.sequence: run.timing_record()})
            typer.echo(
                f"{run.sequence}: {run.frames} frames, {run.fps:.1f} fps, {run.num_tracks} tracks, "
                f"{run.num_boxes} boxes -> {run.result_path}"
            )
            if run.bad_frames:
                shown = ", ".join(map(str, run.bad_frames[:20])) + (" ..." if len(run.bad_frames) > 20 else "")
                typer.echo(f"{run.sequence}: skipped {len(run.bad_frames)} bad frame(s) (no detections): {shown}")
