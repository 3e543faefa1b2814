"""``cstrack bench-speed``: time the per-frame pipeline (read + letterbox + forward + post-process
+ track) of one model path on a folder of frames."""

from __future__ import annotations

from pathlib import Path

import typer

from cstrack.cli.common import guarded, print_json
from cstrack.cli.model_options import (
    conf_option,
    device_option,
    model_warnings,
    nms_option,
    path_option,
    size_option,
    speaks_flags,
    variant_option,
    weights_option,
)
from cstrack.timing import DEFAULT_PREFETCH


def register(app: typer.Typer) -> None:
    @app.command("bench-speed")
    @guarded
    @speaks_flags
    def bench_speed_cmd(
        variant: str | None = variant_option(),
        weights: str | None = weights_option("(a --variant other than its own: random init, fine for timing)"),
        size: str | None = size_option(),
        conf: float | None = conf_option(),
        nms: float | None = nms_option(),
        images: Path = typer.Option(..., "--images", help="folder of frames (cycled when fewer than --frames)"),
        frames: int = typer.Option(50, "--frames", min=1, help="timed frames"),
        path: str = path_option(),
        device: str = device_option(),
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
        from cstrack.cli.model_options import effective_settings, model_ref, resolve_ref
        from cstrack.infer.bench import bench_speed
        from cstrack.timing import STAGES

        ref, dev = resolve_ref(model_ref(variant, weights, path, device))
        variant, weights_arg, path = ref.variant, ref.weights, ref.path
        settings = effective_settings(weights_arg, size, conf, nms, None)
        size = "{}x{}".format(*settings.input_size)
        note = f" [{dev.note}]" if dev.note else ""
        typer.echo(f"settings: {variant} {weights_arg or 'random init'}, path {path}, {dev.describe()}{note}, "
                   f"{settings.describe()}", err=True)
        with model_warnings():
            res = bench_speed(
                variant, weights_arg, settings.input_size, images, frames, path,
                threads=threads, warmup=warmup, prefetch_depth=prefetch, fake_dets=fake_dets,
                forward_iters=forward_iters, post=settings.postprocess_config(), workers=workers, device=ref.device,
            )
        res["settings"] = {"variant": variant, "weights": weights_arg, "path": path, "device": dev.spec,
                           "device_name": dev.name, **settings.to_dict()}
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
