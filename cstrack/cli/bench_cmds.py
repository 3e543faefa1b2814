"""``cstrack bench-speed``: time the per-frame pipeline (read + letterbox + forward + post-process
+ track) of one model path on a folder of frames."""

from __future__ import annotations

from pathlib import Path

import typer

from cstrack.cli.common import guarded, print_json
from cstrack.cli.model_options import conf_option, nms_option, size_option, variant_option, weights_option
from cstrack.timing import DEFAULT_PREFETCH


def register(app: typer.Typer) -> None:
    @app.command("bench-speed")
    @guarded
    def bench_speed_cmd(
        variant: str | None = variant_option(),
        weights: str | None = weights_option("(a --variant other than its own: random init, fine for timing)"),
        size: str | None = size_option(),
        conf: float | None = conf_option(),
        nms: float | None = nms_option(),
        images: Path = typer.Option(..., "--images", help="folder of frames (cycled when fewer than --frames)"),
        frames: int = typer.Option(50, "--frames", min=1, help="timed frames"),
        path: str = typer.Option("auto", "--path", help="auto (the fastest proven identical to eager), eager, fast, "
                                 "onnx or int8"),
        threads: int | None = typer.Option(None, "--threads", min=1, help="torch / ONNX Runtime threads"),
        warmup: int = typer.Option(2, "--warmup", min=0, help="untimed frames first"),
        prefetch: int = typer.Option(DEFAULT_PREFETCH, "--prefetch", min=0, help="frames decoded ahead in a thread (0: none)"),
        workers: int | None = typer.Option(None, "--workers", min=1, help="frame workers running read + letterbox + "
                                           "forward of whole frames (ONNX Runtime paths; default: --threads; 1: off)"),
        fake_dets: int = typer.Option(
            0, "--fake-dets", min=0, help="synthetic detections added per frame so the tracker works (random weights)"
        ),
        forward_iters: int = typer.Option(
            0, "--forward-iters", min=0, help="then time the forward alone this many times (0: skip)"
        ),
        as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    ) -> None:
        """Print fps, ms per stage and the path used for VARIANT at --size on --images."""
        from cstrack.cli.model_options import effective_settings, resolve_model
        from cstrack.infer.bench import bench_speed
        from cstrack.model.detector import resolve_path
        from cstrack.timing import STAGES

        variant, weights_arg = resolve_model(variant, weights)
        settings = effective_settings(weights_arg, size, conf, nms, None)
        path = resolve_path(path)
        size = "{}x{}".format(*settings.input_size)
        typer.echo(f"settings: {variant} {weights_arg or 'random init'}, path {path}, {settings.describe()}", err=True)
        res = bench_speed(
            variant, weights_arg, settings.input_size, images, frames, path,
            threads=threads, warmup=warmup, prefetch_depth=prefetch, fake_dets=fake_dets, forward_iters=forward_iters,
            post=settings.postprocess_config(), workers=workers,
        )
        res["settings"] = {"variant": variant, "weights": None if weights_arg is None else str(weights_arg),
                           "path": path, **settings.to_dict()}
        if as_json:
            print_json(res)
            return
        typer.echo(f"{variant} {size} path={path} threads={res['threads']} prefetch={prefetch} "
                   f"workers={res['workers']}: "
                   f"{res['fps']:.2f} fps ({res['ms_per_frame']:.1f} ms/frame)")
        typer.echo("  " + "  ".join(f"{s} {res['ms'][s]:.2f}" for s in STAGES) + " ms")
        typer.echo(f"  post-processing + tracker: {100 * res['post_track_share']:.1f}% of the frame time")
        if res["forward"] is not None:
            typer.echo(f"  forward only: {res['forward']['ms_median']:.1f} ms median ({res['forward']['fps']:.2f} fps)")
