"""The training loop on real frames: a step lowers the loss, resume is exact, runs are guarded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from catalog import store
from catalog.train_steps import CatalogSteps, read_steps
from cstrack.data.jde import collate
from cstrack.errors import ConfigError, WeightsError
from cstrack.model.weights import load_weights
from cstrack.train import Trainer
from cstrack.train.config import TrainConfig


def test_one_step_lowers_the_loss_on_a_fixed_batch(tiny_config: TrainConfig) -> None:
    base = tiny_config.to_dict()
    cfg = TrainConfig.from_dict({
        **base,
        "data": {**base["data"], "sequences": [{"path": tiny_config.data.sequences[0].path, "frames": [1, 4]}],
                 "input_size": [128, 96], "augment": False},
        "epochs": 1, "nominal_batch": 4, "optim": {"warmup_epochs": 0, "warmup_min_iters": 0, "lr0": 0.002},
    })
    tr = Trainer(cfg, progress=False, steps=CatalogSteps.for_training(cfg))
    assert tr.iters_per_epoch == 1
    images, targets = collate([tr.data.dataset[i] for i in range(4)])
    tr.net.train()
    with torch.no_grad():
        before, parts_before = tr.net(images, targets)
    summary = tr.train_epoch(0)
    assert summary.iterations == 1 and summary.images == 4
    assert summary.loss["total"] == pytest.approx(float(before), rel=1e-4)  # the same batch was trained on
    with torch.no_grad():
        after, parts_after = tr.net(images, targets)
    assert float(after) < float(before)
    assert float(parts_after["obj"]) < float(parts_before["obj"])


def _state(tr: Trainer) -> dict[str, torch.Tensor]:
    out = {f"model.{k}": v for k, v in tr.model.state_dict().items()}
    out.update({f"ema.{k}": v for k, v in tr.ema.module.state_dict().items()})
    out.update({f"loss.{k}": v for k, v in tr.loss.state_dict().items()})
    for i, s in tr.optimizer.state_dict()["state"].items():
        out[f"opt.{i}"] = s["momentum_buffer"]
    return out


def test_resume_is_exact(tiny_config: TrainConfig, tmp_path: Path) -> None:
    straight = Trainer(tiny_config, progress=False, steps=CatalogSteps.for_training(tiny_config))
    res_a = straight.fit()
    assert len(res_a.history) == 2 and straight.iteration == 4

    cfg_b = tiny_config.replace(out_dir=str(tmp_path / "run_b"))
    first = Trainer(cfg_b, progress=False, steps=CatalogSteps.for_training(cfg_b))
    first.fit(until_epoch=1)
    assert first.iteration == 2
    assert (tmp_path / "run_b" / "checkpoints" / "epoch_001.pt").is_file()
    torch.manual_seed(123)  # disturb every global generator: the checkpoint must restore them
    torch.rand(10)
    second = Trainer(cfg_b, progress=False, steps=CatalogSteps.for_training(cfg_b))
    res_b = second.fit(resume=True)
    assert res_b.resumed_from == 1 and second.iteration == 4

    a, b = _state(straight), _state(second)
    assert a.keys() == b.keys()
    diff = [k for k in a if not torch.equal(a[k], b[k])]
    assert not diff, diff[:5]
    assert second.ema.updates == straight.ema.updates
    # the exported EMA weights are equal, and the step tables hold the same losses
    wa, wb = load_weights(res_a.weights).state_dict(), load_weights(res_b.weights).state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    steps_a = read_steps(tmp_path / "run" / "catalog", "tiny")
    steps_b = read_steps(tmp_path / "run_b" / "catalog", "tiny")
    assert steps_a["step"].tolist() == steps_b["step"].tolist() == [0, 1, 2, 3]
    assert steps_a["epoch"].tolist() == [0, 0, 1, 1]
    assert steps_a["loss_total"].tolist() == steps_b["loss_total"].tolist()
    # epoch 0: it 0 accumulates 1 -> step; it 1 is the epoch's last batch -> step (pending
    # gradients are applied at the epoch end); epoch 1: accumulate 2 after warm-up -> one step
    assert [h["optimizer_steps"] for h in res_b.history] == [2, 1]


def test_export_record_and_summary(tiny_config: TrainConfig) -> None:
    cfg = tiny_config.replace(epochs=1)
    res = Trainer(cfg, progress=False, steps=CatalogSteps.for_training(cfg)).fit()
    rec = res.record
    assert rec is not None and res.weights is not None
    prov = rec["provenance"]
    assert prov["config_hash"] == cfg.config_hash() and prov["weights"] == "ema"
    assert prov["data"]["images"] == 8 and prov["epochs"] == 1
    assert set(prov["final_losses"]) == {"total", "box", "obj", "id"}
    assert "commit" in prov["git"]
    model = load_weights(res.weights)  # strict, sha256-verified
    assert model.config.variant == "cstrack-n"
    summary = json.loads((Path(cfg.out_dir) / "summary.json").read_text())
    assert summary["world_size"] == 1 and len(summary["rank_parameter_digests"]) == 1
    steps = store.load("train_steps", {"run_id": "tiny"}, Path(cfg.out_dir) / "catalog")
    assert steps["step"].tolist() == [0, 1]
    assert steps["lr"].tolist() == [0.0, 0.0025]  # warm-up over 2 iterations from 0 to lr0 x f(0) = 0.005
    assert (steps["images_per_s"] > 0).all() and steps["loss_total"].notna().all()


def test_guarded_runs(tiny_config: TrainConfig) -> None:
    cfg = tiny_config.replace(epochs=1)
    Trainer(cfg, progress=False, steps=CatalogSteps.for_training(cfg)).fit()
    with pytest.raises(ConfigError, match="--resume"):
        Trainer(cfg, progress=False, steps=CatalogSteps.for_training(cfg)).fit()
    with pytest.raises(ConfigError, match="config"):  # a different config cannot resume this run
        Trainer(cfg.replace(epochs=2, seed=1), progress=False).fit(resume=True)
    ckpt = Path(cfg.out_dir) / "checkpoints" / "epoch_001.pt"
    raw = bytearray(ckpt.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    ckpt.write_bytes(bytes(raw))
    with pytest.raises(WeightsError, match="corrupt"):
        Trainer(cfg, progress=False, steps=CatalogSteps.for_training(cfg)).fit(resume=True)


def test_time_budget_stops_after_an_epoch(tiny_config: TrainConfig) -> None:
    cfg = tiny_config.replace(epochs=3)
    seen = []
    res = Trainer(cfg, progress=False, steps=CatalogSteps.for_training(cfg), callbacks=[lambda tr, s: seen.append((s.epoch, s.final))]).fit(time_budget_s=1e-3)
    assert len(res.history) == 1 and seen == [(0, True)]
    assert (Path(cfg.out_dir) / "checkpoints" / "epoch_001.pt").is_file()
    assert res.weights is not None and res.weights.is_file()
