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
        "processes": 1,
        "weights": None if result.weights is None else str(result.weights),
        "record": result.record,
        "out_dir": str(result.out_dir),
        "epochs": len(result.history),
        "resumed_from": result.resumed_from,
        "train_seconds": result.train_seconds,
        "images_per_s": result.images_per_s,
        "final_losses": last.get("loss", {}),
    }


@task(name="train-model-ddp", task_run_name="train {config} on {processes} processes")
def train_model_ddp(config: str, processes: int, out_dir: str | None = None, device: str = "auto",
                    resume: bool = True) -> dict[str, Any]:
    """Train under ``torchrun`` with ``processes`` DDP processes (one per GPU; NCCL on CUDA, gloo on
    the CPU), resuming from the newest checkpoint of ``out_dir``; returns the same summary as
    :func:`train_model` from the run's ``summary.json``."""
    from cstrack.train import load_train_config
    from cstrack.train.launch import run_torchrun

    cfg = load_train_config(config, device=device, **({} if out_dir is None else {"out_dir": out_dir}))
    summary = run_torchrun(config, processes, cfg.out_dir, device=device, resume=resume)
    history = summary.get("history") or []
    return {
        "processes": processes,
        "weights": summary.get("weights"),
        "sha256": summary.get("sha256"),
        "out_dir": str(cfg.out_dir),
        "epochs": len(history),
        "resumed_from": summary.get("resumed_from"),
        "train_seconds": summary.get("train_seconds"),
        "images_per_s": summary.get("images_per_s"),
        "final_losses": history[-1].get("loss", {}) if history else {},
        "world_size": summary.get("world_size"),
    }
