"""The training loop: one process, or one process per GPU/CPU under ``torchrun`` (DDP).

Per iteration (one batch of ``batch`` images per process)::

    schedule values (lr per group, momentum, accumulation)   -> optimiser param groups
    loss = CSTrackLoss(model(images), targets)                 (autocast on CUDA when amp)
    scaler.scale(loss).backward()
    every `accumulate` iterations (and at the end of an epoch): scaler.step, EMA update

After each epoch (rank 0): epoch callbacks (e.g. a tracking evaluation of the EMA weights), the
``train_steps`` rows of the epoch, then an atomic checkpoint with everything needed to continue
exactly.  At the end the EMA weights are exported with :func:`cstrack.model.weights.save_weights`.

Gradients still being accumulated when an epoch ends are applied then (never carried across the
epoch boundary), so a per-epoch checkpoint holds no pending gradients and resuming is exact.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import math
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence, Sized
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

from cstrack.errors import ConfigError
from cstrack.fsutil import atomic_write_json, atomic_write_text, plain
from cstrack.losses import CSTrackLoss, LossConfig
from cstrack.model import CSTrackModel, build_model
from cstrack.model.weights import load_checkpoint as load_weights_checkpoint
from cstrack.model.weights import load_coco_yolov5n, load_state_strict, save_weights
from cstrack.paths import REPO_ROOT
from cstrack.train import checkpoint as ckpt
from cstrack.train.config import TrainConfig, dump_train_config
from cstrack.train.data import TrainData, build_train_data
from cstrack.train.distributed import DistInfo, all_gather_object, barrier, init_distributed, resolve_device, shutdown
from cstrack.train.ema import ModelEMA
from cstrack.train.optim import apply_step_values, build_optimizer, group_parameters
from cstrack.train.schedule import Schedule
from cstrack.train.steplog import StepLog, StepWriter

LOSS_KEYS = ("total", "box", "obj", "id")


@dataclass
class EpochSummary:
    """What one epoch did.  ``loss``: mean of each component over the epoch's batches (this
    process); ``metrics``: values returned by the epoch callbacks."""

    epoch: int  # 0-based
    iterations: int
    optimizer_steps: int
    images: int  # all processes
    seconds: float
    images_per_s: float
    loss: dict[str, float]
    lr: float
    final: bool = False  # the last epoch of this fit() call (configured end, until_epoch or time budget)
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class TrainResult:
    """The outcome of :meth:`Trainer.fit`."""

    out_dir: Path
    weights: Path | None  # exported EMA weights (rank 0)
    record: dict[str, Any] | None
    history: list[dict[str, Any]]
    train_seconds: float  # summed over resumes
    images_per_s: float
    resumed_from: int | None  # epochs already done in the checkpoint resumed from


EpochCallback = Callable[["Trainer", EpochSummary], Mapping[str, float] | None]


class TrainNet(nn.Module):
    """Model + loss as one module (so that DDP averages the ID classifier's gradients too)."""

    def __init__(self, model: CSTrackModel, loss: CSTrackLoss) -> None:
        super().__init__()
        self.model = model
        self.loss = loss

    def forward(self, images: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        emb, raw = self.model(images)
        return self.loss(emb, raw, targets)


def initial_model(cfg: TrainConfig) -> CSTrackModel:
    """Build the configured variant and load its starting weights (``cfg.init``)."""
    model = build_model(cfg.model.variant, **cfg.model.overrides)
    init = cfg.init
    if init.kind == "coco":
        if model.config.pretrained != "coco-yolov5n-v6":
            raise ConfigError(f"init.kind: 'coco' needs a variant with the YOLOv5n v6 trunk (cstrack-n), not {cfg.model.variant!r}")
        load_coco_yolov5n(model)
    elif init.kind == "checkpoint" and init.path:  # InitConfig requires a path with kind 'checkpoint'
        _, state, _ = load_weights_checkpoint(Path(init.path))  # sha256-verified, weights_only
        load_state_strict(model, state, ignore=init.ignore)
    return model


def git_commit() -> dict[str, Any]:
    """``{"commit": sha or None, "dirty": tracked files modified}`` of the repository."""
    def run(*args: str) -> str | None:
        try:
            return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    status = run("status", "--porcelain", "--untracked-files=no")
    return {"commit": run("rev-parse", "HEAD"), "dirty": None if status is None else bool(status)}


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def parameter_digest(module: nn.Module) -> str:
    """sha256 over the bytes of every parameter (equal digests = bit-identical weights).

    Buffers are left out: under DDP each rank's BatchNorm statistics follow its own last batch
    until the next forward broadcasts rank 0's (rank 0's are the ones saved).
    """
    import hashlib

    h = hashlib.sha256()
    for key, value in module.named_parameters():
        h.update(key.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class Trainer:
    """Train ``config``; ``data`` replaces the configured data (tests, synthetic runs); ``steps``
    receives the per-step rows (:class:`catalog.train_steps.CatalogSteps.for_training` for the
    catalog's ``train_steps`` table; None: not kept).

    Only rank 0 writes files (checkpoints, step rows, weights) and runs ``callbacks``.
    """

    def __init__(
        self,
        config: TrainConfig,
        *,
        data: TrainData | None = None,
        callbacks: Sequence[EpochCallback] = (),
        progress: bool = True,
        steps: StepWriter | None = None,
    ) -> None:
        self.cfg = config
        self.config_hash = config.config_hash()
        self.dist = DistInfo.from_env()
        self.device = resolve_device(config.device, self.dist.local_rank)
        init_distributed(self.dist, self.device)
        self.world = self.dist.world_size
        self.amp = config.amp and self.device.type == "cuda"
        self.callbacks = list(callbacks)
        self.progress = progress
        seed_everything(config.seed, config.deterministic)

        self.out_dir = Path(config.out_dir)
        self.ckpt_dir = self.out_dir / "checkpoints"
        self.export_path = Path(config.export_path) if config.export_path else self.out_dir / "weights" / f"{config.name}.pt"
        self.steps = StepLog(steps) if steps is not None else None  # None: no step rows kept

        self.data = data if data is not None else build_train_data(config.data, config.seed)
        self.model = initial_model(config)
        self.loss = CSTrackLoss(self.model.emb_dim, self.data.num_ids, self.model.detect.anchors_grid(), LossConfig(eta=config.eta))
        self.net = TrainNet(self.model, self.loss).to(self.device)
        self.accumulate_max = config.accumulate(self.world)
        groups = group_parameters([("model", self.model), ("loss", self.loss)], no_decay_modules=[self.loss.classifier])
        decay_scale = config.batch * self.world * self.accumulate_max / config.nominal_batch
        self.optimizer = build_optimizer(groups, config.optim, decay_scale)
        self.iters_per_epoch = len(self._loader(0))
        self.schedule = Schedule(config.optim, config.epochs, self.iters_per_epoch, self.accumulate_max)
        self.ema = ModelEMA(self.model, config.ema.decay, config.ema.tau) if config.ema.enabled else None
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp)

        self.iteration = 0  # batches done since the start of training
        self.last_opt_step = -1
        self.start_epoch = 0
        self.history: list[dict[str, Any]] = []
        self.train_seconds = 0.0
        self._frozen: bool | None = None
        self._wrapped: nn.Module = self.net

    # -- data -----------------------------------------------------------------------------------

    def _loader(self, epoch: int) -> DataLoader:
        """The epoch's loader: its order and worker seeds depend only on (seed, epoch)."""
        pin = self.device.type == "cuda"
        if self.data.make_loader is not None:
            return self.data.make_loader(epoch, self.cfg.batch, self.dist.rank, self.world, self.cfg.data.workers, pin)
        ds = self.data.dataset
        if not isinstance(ds, Sized):
            raise ConfigError("data: a dataset without a length needs its own make_loader (the default "
                              "loader samples indices 0..len-1)")
        gen = torch.Generator().manual_seed(self.cfg.seed * 1000 + epoch)
        if self.dist.enabled:
            sampler: Any = DistributedSampler(ds, num_replicas=self.world, rank=self.dist.rank, shuffle=True, seed=self.cfg.seed)
            sampler.set_epoch(epoch)
        else:
            sampler = RandomSampler(ds, generator=gen)
        return DataLoader(
            ds, batch_size=self.cfg.batch, sampler=sampler, num_workers=self.cfg.data.workers,
            collate_fn=self.data.collate, generator=gen, pin_memory=pin,
            persistent_workers=False,
        )

    # -- model state ----------------------------------------------------------------------------

    def _apply_freeze(self, epoch: int) -> None:
        frozen = epoch < self.cfg.freeze.epochs
        if frozen != self._frozen:
            prefixes = self.cfg.freeze.prefixes
            for name, p in self.model.named_parameters():
                if name.startswith(prefixes):
                    p.requires_grad_(not frozen)
            self._frozen = frozen
            self._wrap()

    def _wrap(self) -> None:
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self._wrapped = DistributedDataParallel(self.net, device_ids=ids)
        else:
            self._wrapped = self.net

    def _train_mode(self) -> None:
        self.net.train()
        if self._frozen:  # frozen layers keep their BatchNorm statistics
            for name, mod in self.model.named_modules():
                if name and (name + ".").startswith(self.cfg.freeze.prefixes):
                    mod.eval()

    @property
    def eval_model(self) -> CSTrackModel:
        """The weights to evaluate and export: the EMA when enabled (spec §8), else the model."""
        return self.ema.module if self.ema is not None else self.model

    # -- loop -----------------------------------------------------------------------------------

    def fit(self, resume: bool = False, until_epoch: int | None = None, time_budget_s: float | None = None) -> TrainResult:
        """Train up to ``cfg.epochs`` (continuing from the newest checkpoint with ``resume``).

        ``until_epoch``: stop once that many epochs are done (a part of the run; resume it later).
        ``time_budget_s``: stop after the epoch at which one more epoch of the mean length so far
        would take the training time (summed over resumes, evaluation callbacks excluded) past the
        budget.  The weights are exported either way.
        """
        resumed_from = None
        try:
            latest = ckpt.latest_checkpoint(self.ckpt_dir)
            if latest is not None and not resume:
                raise ConfigError(
                    f"out_dir: {self.out_dir} already holds {latest.name}; pass --resume to continue it or choose a new out_dir"
                )
            if resume and latest is not None:
                self._restore(ckpt.load_checkpoint(latest, self.config_hash))
                resumed_from = self.start_epoch
                self._say(f"resumed {latest} ({self.start_epoch}/{self.cfg.epochs} epochs done)")
            if self.dist.is_main:
                atomic_write_text(self.out_dir / "config.yaml", dump_train_config(self.cfg))
            stop = self.cfg.epochs if until_epoch is None else min(self.cfg.epochs, until_epoch)
            for epoch in range(self.start_epoch, stop):
                summary = self.train_epoch(epoch)
                out_of_time = self._out_of_time(summary, time_budget_s)
                summary.final = epoch + 1 == stop or out_of_time
                if self.dist.is_main:
                    for cb in self.callbacks:
                        summary.metrics.update(cb(self, summary) or {})
                self.history.append(asdict(summary))
                if self.dist.is_main:
                    if self.steps is not None:
                        self.steps.flush(epoch)
                    self._save(epoch + 1)
                barrier(self.dist)
                if out_of_time:
                    self._say(f"time budget {time_budget_s:.0f} s: stopping after epoch {epoch + 1}")
                    break
            return self._finish(resumed_from)
        finally:
            shutdown(self.dist)

    def _out_of_time(self, summary: EpochSummary, budget: float | None) -> bool:
        if budget is None:
            return False
        done = len(self.history) + 1
        verdict = self.train_seconds + self.train_seconds / done > budget
        return bool(all_gather_object(self.dist, verdict)[0])  # rank 0 decides for every rank

    def train_epoch(self, epoch: int) -> EpochSummary:
        """One pass over the data; returns the epoch's mean losses and throughput."""
        self._apply_freeze(epoch)
        self._train_mode()
        loader = self._loader(epoch)
        nb = len(loader)
        sums = dict.fromkeys(LOSS_KEYS, 0.0)
        images = 0
        opt_steps = 0
        t_epoch = time.perf_counter()
        t_last = t_epoch
        bar = self._bar(loader, epoch)
        self.optimizer.zero_grad(set_to_none=True)
        vals = self.schedule.values(self.iteration, epoch)
        for i, (imgs, targets) in enumerate(bar):
            it = self.iteration
            vals = self.schedule.values(it, epoch)
            apply_step_values(self.optimizer, vals)
            step = it - self.last_opt_step >= vals.accumulate or i == nb - 1
            imgs = imgs.to(self.device, non_blocking=True)
            targets = targets.to(self.device)
            wrapped = self._wrapped  # DDP when distributed (_wrap): gradients sync only at optimiser steps
            sync = wrapped.no_sync() if not step and isinstance(wrapped, DistributedDataParallel) else contextlib.nullcontext()
            with sync:
                with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.amp):
                    total, parts = self._wrapped(imgs, targets)
                if self.dist.enabled:
                    total = total * self.world  # DDP averages gradients; the loss sums over images
                self.scaler.scale(total).backward()
            if step:
                self._optimizer_step()
                self.last_opt_step = it
                opt_steps += 1
            self.iteration += 1
            n_img = imgs.shape[0] * self.world
            images += n_img
            now = time.perf_counter()
            ips = n_img / max(now - t_last, 1e-9)
            t_last = now
            vals_f = {k: float(parts[k]) for k in LOSS_KEYS}
            for k in LOSS_KEYS:
                sums[k] += vals_f[k]
            if self.dist.is_main:
                if self.steps is not None:
                    self.steps.add(
                        epoch=epoch, step=it, loss_total=vals_f["total"], loss_box=vals_f["box"],
                        loss_obj=vals_f["obj"], loss_id=vals_f["id"], lr=vals.lr["decay"], images_per_s=ips,
                        time=_dt.datetime.now(_dt.UTC),
                    )
                if hasattr(bar, "set_postfix"):
                    bar.set_postfix(loss=f"{vals_f['total']:.3f}", img_s=f"{ips:.1f}", lr=f"{vals.lr['decay']:.2e}")
        seconds = time.perf_counter() - t_epoch
        self.train_seconds += seconds
        n = max(nb, 1)
        return EpochSummary(
            epoch=epoch, iterations=nb, optimizer_steps=opt_steps, images=images, seconds=seconds, images_per_s=images / max(seconds, 1e-9),
            loss={k: sums[k] / n for k in LOSS_KEYS}, lr=vals.lr["decay"],
        )

    def _bar(self, loader: DataLoader, epoch: int) -> Iterator[Any]:
        if not (self.progress and self.dist.is_main):
            return iter(loader)
        from tqdm import tqdm

        return tqdm(loader, desc=f"epoch {epoch + 1}/{self.cfg.epochs}", unit="batch", file=sys.stderr, dynamic_ncols=True)

    def _optimizer_step(self) -> None:
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update(self.model)

    # -- checkpoints ----------------------------------------------------------------------------

    def _payload(self, epochs_done: int) -> dict[str, Any]:
        return {
            "format": ckpt.FORMAT,
            "config": self.cfg.to_dict(),
            "config_hash": self.config_hash,
            "epoch": epochs_done,
            "iteration": self.iteration,
            "model": self.model.state_dict(),
            "loss": self.loss.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "schedule": {"last_opt_step": self.last_opt_step, "iters_per_epoch": self.iters_per_epoch,
                         "warmup_iters": self.schedule.warmup_iters, "accumulate_max": self.accumulate_max},
            "scaler": self.scaler.state_dict(),
            "rng": ckpt.capture_rng(),
            "data": {"seed": self.cfg.seed, "next_epoch": epochs_done, "world_size": self.world},
            "history": plain(self.history),
            "train_seconds": self.train_seconds,
        }

    def _save(self, epochs_done: int) -> Path:
        path = ckpt.checkpoint_path(self.ckpt_dir, epochs_done)
        ckpt.save_checkpoint(path, self._payload(epochs_done))
        ckpt.prune_checkpoints(self.ckpt_dir, self.cfg.keep_checkpoints)
        return path

    def _restore(self, state: dict[str, Any]) -> None:
        sched = state["schedule"]
        if sched["iters_per_epoch"] != self.iters_per_epoch or state["data"]["world_size"] != self.world:
            raise ConfigError(
                f"resume: the checkpoint ran {sched['iters_per_epoch']} iterations/epoch on {state['data']['world_size']} "
                f"process(es), now {self.iters_per_epoch} on {self.world}; resume with the same data and process count"
            )
        self.model.load_state_dict(state["model"], strict=True)
        self.loss.load_state_dict(state["loss"], strict=True)
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.iteration = int(state["iteration"])
        self.last_opt_step = int(sched["last_opt_step"])
        self.start_epoch = int(state["epoch"])
        self.history = list(state["history"])
        self.train_seconds = float(state["train_seconds"])
        ckpt.restore_rng(state["rng"])

    # -- export ---------------------------------------------------------------------------------

    def provenance(self) -> dict[str, Any]:
        last = self.history[-1] if self.history else {}
        images = sum(h["images"] for h in self.history)
        return {
            "config": self.cfg.to_dict(),
            "config_hash": self.config_hash,
            "data": self.data.description,
            "init": {"kind": self.cfg.init.kind, "path": self.cfg.init.path, "ignore": list(self.cfg.init.ignore)},
            "epochs": len(self.history),
            "iterations": self.iteration,
            "weights": "ema" if self.ema is not None else "model",
            "git": git_commit(),
            "finished": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "train_seconds": round(self.train_seconds, 1),
            "images_per_s": round(images / self.train_seconds, 2) if self.train_seconds > 0 else None,
            "final_losses": last.get("loss", {}),
            "final_metrics": last.get("metrics", {}),
            "device": str(self.device),
            "world_size": self.world,
            "amp": self.amp,
            "torch": torch.__version__,
            "history": [{"epoch": h["epoch"], "loss": h["loss"], "metrics": h["metrics"]} for h in self.history],
        }

    def export(self, path: str | Path | None = None) -> dict[str, Any]:
        """Write the EMA (or plain) weights with :func:`save_weights` and the run's provenance."""
        p = Path(path) if path is not None else self.export_path
        model = self.eval_model
        was_training = model.training
        model.eval()
        try:
            return save_weights(p, model, self.provenance())
        finally:
            model.train(was_training)

    def _finish(self, resumed_from: int | None) -> TrainResult:
        digests = all_gather_object(self.dist, parameter_digest(self.model))
        record = None
        if self.dist.is_main:
            record = self.export()
            images = sum(h["images"] for h in self.history)
            summary = {
                "name": self.cfg.name, "config_hash": self.config_hash, "weights": str(self.export_path),
                "sha256": record["sha256"], "epochs": len(self.history), "train_seconds": self.train_seconds,
                "images_per_s": images / self.train_seconds if self.train_seconds else None,
                "world_size": self.world, "rank_parameter_digests": digests, "resumed_from": resumed_from,
                "history": self.history,
            }
            atomic_write_json(self.out_dir / "summary.json", plain(summary))
        images = sum(h["images"] for h in self.history)
        return TrainResult(
            out_dir=self.out_dir, weights=self.export_path if record else None, record=record, history=self.history,
            train_seconds=self.train_seconds, images_per_s=images / self.train_seconds if self.train_seconds else math.nan,
            resumed_from=resumed_from,
        )

    def _say(self, msg: str) -> None:
        if self.dist.is_main:
            print(f"[train] {msg}", file=sys.stderr)
