"""Optimiser parameter groups (spec §8): which tensors get weight decay."""

from __future__ import annotations

import pytest
import torch

from cstrack.losses import CSTrackLoss
from cstrack.model import build_model
from cstrack.train.config import OptimSection
from cstrack.train.optim import apply_step_values, build_optimizer, group_parameters
from cstrack.train.schedule import StepValues


@pytest.fixture(scope="module")
def groups():
    model = build_model("cstrack-n")
    loss = CSTrackLoss(model.emb_dim, 5, model.detect.anchors_grid())
    g = group_parameters([("model", model), ("loss", loss)], no_decay_modules=[loss.classifier])
    return model, loss, g


def test_every_parameter_in_exactly_one_group(groups) -> None:
    model, loss, g = groups
    names = [n for kind in g.values() for n, _ in kind]
    assert len(names) == len(set(names))
    expected = {f"model.{n}" for n, _ in model.named_parameters()} | {f"loss.{n}" for n, _ in loss.named_parameters()}
    assert set(names) == expected


def test_decay_membership(groups) -> None:
    _, _, g = groups
    kinds = {n: k for k, items in g.items() for n, _ in items}
    # conv, transposed conv, Conv1d, Linear and the SAAN LayerNorm weights decay
    for name in ("model.trunk.0.conv.weight", "model.detect.m.0.weight", "model.emb_head.up4.weight",
                 "model.emb_head.fused_att.0.conv.weight", "model.emb_head.fused_att.0.fc.weight",
                 "model.emb_head.fused_att.0.norm.weight"):
        assert kinds[name] == "decay", name
    # BN weights, REN lambdas and the ID classifier do not
    for name in ("model.trunk.0.bn.weight", "model.ren.0.lam1", "model.ren.2.lam2", "loss.classifier.weight"):
        assert kinds[name] == "no_decay", name
    for name in ("model.trunk.0.bn.bias", "model.detect.m.2.bias", "model.emb_head.fused_att.0.norm.bias"):
        assert kinds[name] == "bias", name
    assert all(n.endswith(".bias") for n, _ in g["bias"])
    assert not any(".bn." in n for n, _ in g["decay"])


def test_optimizer_settings(groups) -> None:
    _, _, g = groups
    opt = build_optimizer(g, OptimSection(), decay_scale=0.5)
    assert isinstance(opt, torch.optim.SGD)
    wd = {pg["kind"]: pg["weight_decay"] for pg in opt.param_groups}
    assert wd == {"no_decay": 0.0, "decay": pytest.approx(2.5e-4), "bias": 0.0}
    assert all(pg["nesterov"] and pg["momentum"] == 0.95 and pg["lr"] == 0.005 for pg in opt.param_groups)
    apply_step_values(opt, StepValues({"no_decay": 0.1, "decay": 0.2, "bias": 0.3}, 0.91, 1, True))
    assert [(pg["lr"], pg["momentum"]) for pg in opt.param_groups] == [(0.1, 0.91), (0.2, 0.91), (0.3, 0.91)]


def test_adamw_option(groups) -> None:
    _, _, g = groups
    opt = build_optimizer(g, OptimSection(name="adamw", lr0=1e-3))
    assert isinstance(opt, torch.optim.AdamW)
    apply_step_values(opt, StepValues(dict.fromkeys(("no_decay", "decay", "bias"), 1e-4), 0.8, 1, True))
    assert all(pg["betas"] == (0.8, 0.999) for pg in opt.param_groups)
    assert {pg["kind"]: pg["weight_decay"] for pg in opt.param_groups}["bias"] == 0.0
