"""Training task: one :meth:`cstrack.train.Trainer.fit` run from a YAML config."""

from __future__ import annotations

from typing import Any

from prefect import task


@task(name="train-model", task_run_name="train {config}")
def train_model(config: str, out_dir: str | None = None, device: str = "auto", resume: bool = True) -> dict[str, Any]:
    """Train (resuming from the newest checkpoint of ``out_dir`` when ``resume``); returns the
    exported checkpoint path, its sha256 record and a short summary (no tensors)."""
    from catalog.train_steps import CatalogSteps
    from cstrack.train import Trainer, load_train_config

    overrides: dict[str, Any] = {"device": device}
    if out_dir is not None:
        overrides["out_dir"] = out_dir
    cfg = load_train_config(config, **overrides)
    result = Trainer(cfg, progress=False, steps=CatalogSteps.for_training(cfg)).fit(resume=resume)
    last = result.history[-1] if result.history else {}
    return {
        "weights": None if result.weights is None else str(result.weights),
        "record": result.record,
        "out_dir": str(result.out_dir),
        "epochs": len(result.history),
        "resumed_from": result.resumed_from,
        "train_seconds": result.train_seconds,
        "images_per_s": result.images_per_s,
        "final_losses": last.get("loss", {}),
    }
