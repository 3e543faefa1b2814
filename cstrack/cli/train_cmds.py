"""``cstrack train CONFIG.yaml [--resume]``: train a model from a YAML config (single process or
one process per device under ``torchrun``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from cstrack.cli.common import guarded, print_json


def _check_train_paths(config: Path, cfg: Any) -> None:
    """The output rule over training: the final weights (and their record) are neither the config
    nor the starting checkpoint; out_dir is not inside them."""
    from cstrack.pathrules import Input, Output, check_paths

    export = Path(cfg.export_path) if cfg.export_path else Path(cfg.out_dir) / "weights" / f"{cfg.name}.pt"
    init = Path(cfg.init.path) if cfg.init.path else None
    inputs = [Input(config, "CONFIG"), Input(init, "init.path") if init else None,
              Input(init.with_suffix(".json"), "init.path record") if init else None]
    check_paths([Output(Path(cfg.out_dir), "out_dir"), Output(export, "export_path"),
                 Output(export.with_suffix(".json"), "export_path record")], inputs)


def register(app: typer.Typer) -> None:
    @app.command("train")
    @guarded
    def train(
        config: str = typer.Argument(..., help="training config (YAML, see cstrack.train.config)"),
        resume: bool = typer.Option(False, "--resume", help="continue from the newest checkpoint in out_dir"),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="show a progress bar"),
        out_dir: str | None = typer.Option(None, "--out-dir", help="output folder (default: the config's out_dir)"),
        device: str | None = typer.Option(None, "--device", help="auto, cpu, cuda or cuda:N (default: the config's)"),
    ) -> None:
        """Train; writes per-epoch checkpoints, train_steps rows and the final EMA weights."""
        from catalog.train_steps import CatalogSteps
        from cstrack.train import Trainer, load_train_config

        overrides = {k: v for k, v in (("out_dir", out_dir), ("device", device)) if v is not None}
        cfg = load_train_config(config, **overrides)
        _check_train_paths(Path(config), cfg)
        result = Trainer(cfg, progress=progress, steps=CatalogSteps.for_training(cfg)).fit(resume=resume)
        if result.record is not None:
            last = result.history[-1] if result.history else {}
            print_json({
                "weights": str(result.weights), "sha256": result.record["sha256"], "epochs": len(result.history),
                "train_seconds": round(result.train_seconds, 1), "images_per_s": round(result.images_per_s, 2),
                "final_losses": last.get("loss", {}),
            })
