"""``cstrack weights``: import the original CSTrack's checkpoints, export ours under its names."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from cstrack.cli.common import check_output_file, guarded
from cstrack.errors import ConfigError
from cstrack.pathrules import Input, Output, check_paths


def _check_checkpoint_out(out: Path, *inputs: Input | None) -> None:
    """``--out`` and the record beside it (``out.json``) against the inputs and each other."""
    check_output_file(out, "--out", inputs)
    check_paths([Output(out, "--out"), Output(out.with_suffix(".json"), "--out's record")], inputs)


def register(app: typer.Typer) -> None:
    weights_app = typer.Typer(help="Checkpoints of the original CSTrack code: import and export.", no_args_is_help=True)
    app.add_typer(weights_app, name="weights")

    @weights_app.command("import")
    @guarded
    def import_cmd(
        src: Path = typer.Argument(..., help="an original checkpoint: {'model': state dict} or a pickled-module .pt"),
        out: Path = typer.Option(..., "--out", help="our tensor-only checkpoint to write (its record .json beside)"),
        arch: Path | None = typer.Option(
            None, "--arch", help="architecture JSON (ours, or the original's resolved form such as tiny_config.json)"
        ),
        variant: str | None = typer.Option(None, "--variant", help="a named variant the checkpoint must match"),
    ) -> None:
        """Import SRC without running anything from it; without --arch/--variant the architecture is
        read from the tensors' shapes."""
        from cstrack.model.architecture import load_description
        from cstrack.model.sots import import_checkpoint

        _check_checkpoint_out(out, Input(src, "SRC"), Input(arch, "--arch") if arch is not None else None)
        description = None
        if arch is not None:
            try:
                description = load_description(json.loads(arch.read_text(encoding="utf-8")))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ConfigError(f"--arch {arch}: cannot read it: {exc}") from None
            except ConfigError as exc:
                raise ConfigError(f"--arch {arch}: {exc}") from None
        record = import_checkpoint(src, out, description, variant)
        imp = record["import"]
        typer.echo(
            f"{src} ({imp['source_form']}, {imp['source_dtype']}, {imp['original_keys']} tensors) -> {out}: "
            f"{record['variant']}, sha256 {record['sha256'][:12]}, inference "
            f"{record['inference']['input_size'][0]}x{record['inference']['input_size'][1]} "
            f"preset {record['inference']['tracker_preset']}"
        )

    @weights_app.command("export-original")
    @guarded
    def export_cmd(
        weights: Path = typer.Argument(..., help="one of our checkpoints (CSTrack with the YOLOv5 v3 trunk)"),
        out: Path = typer.Option(..., "--out", help="the .pt to write: {'model': state dict under the original names}"),
    ) -> None:
        """Write WEIGHTS as a state dict the original code loads (model.load_state_dict(ckpt['model']))."""
        from cstrack.model.sots import export_original
        from cstrack.model.weights import load_weights

        check_output_file(out, "--out", [Input(weights, "WEIGHTS"), Input(weights.with_suffix(".json"), "WEIGHTS record")])
        state = export_original(load_weights(weights), out)
        typer.echo(f"{weights} -> {out}: {len(state)} tensors under the original names")
