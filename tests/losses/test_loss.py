"""Target assignment and loss terms on hand-computed cases."""

from __future__ import annotations

import math

import pytest
import torch

from cstrack.errors import ConfigError
from cstrack.losses import CSTrackLoss, LossConfig, bbox_ciou, build_targets


def test_ciou_hand_computed() -> None:
    same = torch.tensor([[5.0, 5.0, 2.0, 4.0]])
    assert bbox_ciou(same, same).item() == pytest.approx(1.0, abs=1e-6)
    # p = (0, 0, 2, 2), t = (1, 0, 2, 2): IoU = 2 / 6; rho^2 = 1; c^2 = 3^2 + 2^2 = 13; v = 0
    p = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    t = torch.tensor([[1.0, 0.0, 2.0, 2.0]])
    assert bbox_ciou(p, t).item() == pytest.approx(1 / 3 - 1 / 13, abs=1e-6)
    # aspect term: p = (0, 0, 2, 2), t = (0, 0, 1, 4): IoU = 2 / 6, rho = 0,
    # v = 4/pi^2 (atan(1/4) - atan(1))^2, alpha = v / (1 - IoU + v)
    t2 = torch.tensor([[0.0, 0.0, 1.0, 4.0]])
    v = 4 / math.pi**2 * (math.atan(0.25) - math.atan(1.0)) ** 2
    iou = 2 / 6
    c2 = 2**2 + 4**2
    assert bbox_ciou(p, t2).item() == pytest.approx(iou - 0 / c2 - v / (1 - iou + v) * v, abs=1e-6)


def test_assignment_centre_and_neighbour_cells() -> None:
    # one target, 10 x 10 grid: centre (5.3, 2.7) cells, size (1, 2) cells
    targets = torch.tensor([[0, 7, 0.53, 0.27, 0.1, 0.2]])
    anchors = torch.tensor([[[1.0, 2.0], [3.0, 3.0], [0.2, 0.2]]] * 3)
    lt = build_targets(targets, [(10, 10), (5, 5), (3, 3)], anchors)[0]
    # anchor 0 ratio (1, 1) and anchor 1 (1/3, 2/3) -> max 3 < 4 kept; anchor 2 ratio 10 -> dropped.
    # x frac 0.3 < 0.5 and x > 1 -> left neighbour; (10 - 2.7) frac 0.3 < 0.5 -> down neighbour.
    cells = sorted(zip(lt.a.tolist(), lt.gi.tolist(), lt.gj.tolist(), strict=True))
    assert cells == sorted([(a, gi, gj) for a in (0, 1) for gi, gj in ((5, 2), (4, 2), (5, 3))])
    by_cell = {(int(a), int(i), int(j)): tb.tolist() for a, i, j, tb in zip(lt.a, lt.gi, lt.gj, lt.tbox, strict=True)}
    assert by_cell[(0, 4, 2)] == pytest.approx([1.3, 0.7, 1.0, 2.0], abs=1e-5)
    assert by_cell[(0, 5, 3)] == pytest.approx([0.3, -0.3, 1.0, 2.0], abs=1e-5)
    assert lt.b.tolist() == [0] * 6


def test_id_loss_ignores_identity_zero_and_uses_the_centre_cell() -> None:
    torch.manual_seed(0)
    emb = torch.randn(1, 4, 4, 8)
    loss = CSTrackLoss(8, 3, torch.ones(3, 3, 2))
    # box centre (0.6, 0.3) on a 4x4 map -> row floor(1.2) = 1, col floor(2.4) = 2
    t = torch.tensor([[0, 2, 0.6, 0.3, 0.1, 0.1], [0, 0, 0.1, 0.1, 0.1, 0.1]])
    got = loss.id_loss(emb, t)
    e = torch.nn.functional.normalize(emb[0, 1, 2][None], dim=1) * loss.emb_scale
    expected = torch.nn.functional.cross_entropy(loss.classifier(e), torch.tensor([2]))
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)
    # only unlabelled boxes: zero, but still a graph for backward
    z = loss.id_loss(emb, t[1:])
    assert z.item() == 0.0 and z.requires_grad


def test_total_is_weighted_sum_times_batch() -> None:
    torch.manual_seed(0)
    raw = [torch.randn(2, 3, s, s, 6, requires_grad=True) for s in (8, 4, 2)]
    emb = torch.randn(2, 8, 8, 16, requires_grad=True)
    t = torch.tensor([[0, 1, 0.5, 0.5, 0.2, 0.4], [1, 2, 0.3, 0.6, 0.1, 0.3]])
    anchors = torch.tensor([[[1.0, 3], [1.375, 4.25], [2, 6]], [[2, 6], [2.8, 8.4], [4, 12]], [[4, 12], [5.6, 16.9], [8, 20]]]) / 4
    loss = CSTrackLoss(16, 3, anchors, LossConfig(eta=0.5))
    total, parts = loss(emb, raw, t)
    assert total.item() == pytest.approx((parts["box"] + parts["obj"] + 0.5 * parts["id"]).item() * 2, rel=1e-6)


def test_config_validation() -> None:
    with pytest.raises(ConfigError, match="eta"):
        LossConfig(eta=-1)
    with pytest.raises(ConfigError, match="num_ids"):
        CSTrackLoss(8, 1, torch.ones(3, 3, 2))
    with pytest.raises(ConfigError, match="id_loss_gate"):
        LossConfig(id_loss_gate="sometimes")  # type: ignore[arg-type]


def test_original_id_gate_skips_what_sots_skips() -> None:
    # Q12: SOTS computes the ID term only when P3 has a positive and the batch has >= 2 targets;
    # our default computes it whenever a target is labelled.
    torch.manual_seed(0)
    raw = [torch.randn(1, 3, s, s, 6) for s in (8, 4, 2)]
    emb = torch.randn(1, 8, 8, 16)
    anchors = torch.ones(3, 3, 2)
    one = torch.tensor([[0, 1, 0.5, 0.5, 0.125, 0.25]])  # a single labelled target
    ours = CSTrackLoss(16, 3, anchors)
    orig = CSTrackLoss(16, 3, anchors, LossConfig(id_loss_gate="original"))
    orig.classifier.load_state_dict(ours.classifier.state_dict())
    assert ours(emb, raw, one)[1]["id"].item() > 0
    assert orig(emb, raw, one)[1]["id"].item() == 0.0
    two = torch.cat([one, torch.tensor([[0, 2, 0.25, 0.75, 0.125, 0.25]])])
    assert orig(emb, raw, two)[1]["id"].item() == pytest.approx(ours(emb, raw, two)[1]["id"].item(), rel=1e-7)
