"""``cstrack export``: write a model variant as an ONNX file (fp32, or int8 statically quantised)."""

from __future__ import annotations

from pathlib import Path

import typer

from cstrack.cli.common import check_output_file, file_inputs, guarded
from cstrack.cli.model_options import model_warnings, size_option, speaks_flags, variant_option, weights_option
from cstrack.errors import ConfigError

FORMATS = ("onnx", "onnx-int8")


def register(app: typer.Typer) -> None:
    @app.command("export")
    @guarded
    @speaks_flags
    def export(
        variant: str | None = variant_option(),
        weights: str | None = weights_option(),
        size: str | None = size_option(", fixed in the file"),
        fmt: str = typer.Option("onnx", "--format", help="onnx (fp32) or onnx-int8 (QDQ static quantisation)"),
        out: Path = typer.Option(..., "--out", help="output .onnx file"),
        calib: Path | None = typer.Option(
            None, "--calib", help="onnx-int8: folder of frames to calibrate on (default: the shipped frames)"
        ),
        seed: int = typer.Option(0, "--seed", help="seed of the random initialisation (no or partial weights)"),
    ) -> None:
        """Export VARIANT at --size: input 'images' [1,3,H,W] RGB/255, outputs 'emb' [1,H/8,W/8,D]
        and 'pred' [1,N,6] (cx, cy, w, h, obj, cls in network pixels)."""
        import tempfile

        import torch

        from cstrack.infer.onnx_export import export_onnx
        from cstrack.model.detector import load_model

        if fmt not in FORMATS:
            raise ConfigError(f"--format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
        if calib is not None and fmt != "onnx-int8":
            raise ConfigError("--calib: only used with --format onnx-int8")
        from cstrack.cli.model_options import effective_settings, resolve_model

        variant, weights_arg = resolve_model(variant, weights)
        settings = effective_settings(weights_arg, size, None, None, None)
        input_size = settings.input_size
        check_output_file(out, "--out", file_inputs(weights_arg, calib=calib))
        torch.manual_seed(seed)
        with model_warnings():
            model = load_model(variant, weights_arg)
        typer.echo(f"settings: {variant} {weights_arg or 'random init'}, {settings.describe()}", err=True)
        # the file carries the settings it is meant to run with (thresholds, preset, frame rate)
        provenance = {"weights": None if weights_arg is None else str(weights_arg),
                      "seed": seed if weights_arg in (None, "coco") else None, "inference": settings.to_dict()}
        if fmt == "onnx":
            export_onnx(model, input_size, out, provenance=provenance)
        else:
            from cstrack.infer import calibration_inputs, shipped_calibration_images
            from cstrack.infer.bench import list_images
            from cstrack.infer.quantize import quantize_int8

            files = list_images(calib) if calib is not None else shipped_calibration_images()
            with tempfile.TemporaryDirectory() as tmp:
                fp32 = export_onnx(model, input_size, Path(tmp) / "fp32.onnx", provenance=provenance)
                quantize_int8(fp32, out, calibration_inputs(files, input_size))
        typer.echo(f"{variant} {input_size[0]}x{input_size[1]} {fmt} -> {out} ({out.stat().st_size / 1e6:.1f} MB)")
