"""The CSTrack training loss (spec §7): CIoU box loss, objectness BCE with per-level weights and
the identity cross-entropy on SAAN embeddings, ``L = (L_box + L_obj + eta * L_id) * B``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from cstrack.errors import ConfigError
from cstrack.losses.targets import build_targets


@dataclass(frozen=True)
class LossConfig:
    """Loss weights; defaults from spec §7 (SOTS' hyper-parameters)."""

    box_weight: float = 0.05  # GIOU_WEIGHT (§7.2)
    obj_weight: float = 1.0  # §7.3
    level_obj_weights: tuple[float, float, float] = (4.0, 1.0, 0.4)  # P3, P4, P5 (§7.3)
    eta: float = 0.02  # ID loss weight, best in Table V (§7.5)
    # When the ID term is computed (Q12): "labelled" = whenever the batch has a labelled target
    # (our fix); "original" = SOTS's rule, only when P3 has a positive and the batch >= 2 targets.
    id_loss_gate: Literal["labelled", "original"] = "labelled"

    def __post_init__(self) -> None:
        if self.id_loss_gate not in ("labelled", "original"):
            raise ConfigError(f"id_loss_gate: expected 'labelled' or 'original', got {self.id_loss_gate!r}")
        if self.eta < 0:
            raise ConfigError(f"eta: must be >= 0, got {self.eta}")
        if len(self.level_obj_weights) != 3:
            raise ConfigError(f"level_obj_weights: expected 3 values, got {self.level_obj_weights}")


def bbox_ciou(p: torch.Tensor, t: torch.Tensor, eps: float = 1e-9) -> torch.Tensor:
    """Complete IoU of paired boxes ``p [P, 4]``, ``t [P, 4]`` in xywh -> ``[P]``.

    ``CIoU = IoU - rho^2 / c^2 - alpha v``, ``v = 4/pi^2 (atan(wt/ht) - atan(wp/hp))^2``,
    ``alpha = v / (1 - IoU + v)`` without gradient.
    """
    p1, p2 = p[:, :2] - p[:, 2:] / 2, p[:, :2] + p[:, 2:] / 2
    t1, t2 = t[:, :2] - t[:, 2:] / 2, t[:, :2] + t[:, 2:] / 2
    inter = (torch.minimum(p2, t2) - torch.maximum(p1, t1)).clamp(min=0).prod(dim=1)
    union = p[:, 2] * p[:, 3] + t[:, 2] * t[:, 3] - inter + eps
    iou = inter / union
    c2 = ((torch.maximum(p2, t2) - torch.minimum(p1, t1)) ** 2).sum(dim=1) + eps
    rho2 = ((p[:, :2] - t[:, :2]) ** 2).sum(dim=1)
    v = (4 / math.pi**2) * (torch.atan(t[:, 2] / (t[:, 3] + eps)) - torch.atan(p[:, 2] / (p[:, 3] + eps))) ** 2
    with torch.no_grad():
        alpha = v / (1 - iou + v + eps)
    return iou - rho2 / c2 - alpha * v


class CSTrackLoss(nn.Module):
    """Loss module; owns the identity classifier ``Linear(D, nID, bias=False)``.

    Args:
        emb_dim: embedding dimension D of the model.
        num_ids: number of identity classes including class 0 ("no identity").
        anchors_grid: [3, A, 2] anchors in grid units (``model.detect.anchors_grid()``).
    """

    anchors_grid: torch.Tensor  # [3, A, 2] grid units (non-persistent buffer)

    def __init__(self, emb_dim: int, num_ids: int, anchors_grid: torch.Tensor, config: LossConfig | None = None) -> None:
        super().__init__()
        if num_ids < 2:
            raise ConfigError(f"num_ids: need at least 2 identity classes (0 = none), got {num_ids}")
        self.cfg = config or LossConfig()
        self.num_ids = num_ids
        self.classifier = nn.Linear(emb_dim, num_ids, bias=False)
        # s = sqrt(2) ln(nID - 1) (JDE's embedding scale, spec §7.4); at least ln 2 for tiny sets
        self.emb_scale = math.sqrt(2) * math.log(max(num_ids - 1, 2))
        self.register_buffer("anchors_grid", anchors_grid.detach().clone(), persistent=False)
        self.bce = nn.BCEWithLogitsLoss()
        self.ce = nn.CrossEntropyLoss(ignore_index=0)

    def forward(
        self, emb: torch.Tensor, raw: list[torch.Tensor], targets: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``emb [B, H/8, W/8, D]``, ``raw`` 3 x [B, A, h, w, 6], ``targets [T, 6]`` ->
        ``(total, {"box", "obj", "id", "total"})`` (components detached)."""
        batch = emb.shape[0]
        dtype = raw[0].dtype
        zero = raw[0].sum() * 0.0
        levels = build_targets(targets.to(raw[0].device, torch.float32), [(r.shape[2], r.shape[3]) for r in raw], self.anchors_grid)
        l_box = zero.clone()
        l_obj = zero.clone()
        for lvl, (pred, tl) in enumerate(zip(raw, levels, strict=True)):
            tobj = torch.zeros(pred.shape[:4], dtype=dtype, device=pred.device)
            if len(tl):
                ps = pred[tl.b, tl.a, tl.gj, tl.gi]  # [P, 6]
                pxy = ps[:, :2].sigmoid() * 2 - 0.5
                pwh = (ps[:, 2:4].sigmoid() * 2) ** 2 * tl.anchors
                ciou = bbox_ciou(torch.cat((pxy, pwh), dim=1).float(), tl.tbox.float())
                l_box = l_box + (1.0 - ciou).mean()
                tobj[tl.b, tl.a, tl.gj, tl.gi] = ciou.detach().clamp(min=0).to(dtype)
            l_obj = l_obj + self.cfg.level_obj_weights[lvl] * self.bce(pred[..., 4].float(), tobj.float())
        l_box = self.cfg.box_weight * l_box
        l_obj = self.cfg.obj_weight * l_obj
        if self.cfg.id_loss_gate == "original" and (len(levels[0]) == 0 or targets.shape[0] < 2):
            l_id = emb.sum() * 0.0 + self.classifier.weight.sum() * 0.0  # SOTS skips the term
        else:
            l_id = self.id_loss(emb, targets)
        total = (l_box + l_obj + self.cfg.eta * l_id) * batch
        parts = {"box": l_box.detach(), "obj": l_obj.detach(), "id": l_id.detach(), "total": total.detach()}
        return total, parts

    def id_loss(self, emb: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the identity classifier on the embedding at every labelled box centre
        (cell ``floor(c * map size)``, clamped); identity 0 is ignored (spec §7.4, Q12 fix)."""
        ids = targets[:, 1].long()
        labelled = ids > 0
        if not bool(labelled.any()):
            return emb.sum() * 0.0 + self.classifier.weight.sum() * 0.0
        t = targets[labelled]
        _, h, w, _ = emb.shape
        col = (t[:, 2] * w).floor().long().clamp(0, w - 1)
        row = (t[:, 3] * h).floor().long().clamp(0, h - 1)
        e = emb[t[:, 0].long(), row, col].to(self.classifier.weight.dtype)
        logits = self.classifier(self.emb_scale * nn.functional.normalize(e, dim=1))
        return self.ce(logits, ids[labelled])
