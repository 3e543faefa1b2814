"""Inference post-processing (spec §9.3-§9.5): confidence filter, Cluster-DIoU NMS, and the
embedding gather at box centres on the 1/8 map."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from cstrack import boxes

# Spec §9.4: DIoU penalty exponent, iteration cap and maximum number of kept boxes.
DIOU_BETA = 0.7
NMS_MAX_ITER = 200
MAX_DETECTIONS = 300
EMB_STRIDE = 8


@dataclass(frozen=True)
class PostprocessConfig:
    """Spec §11 test-time values: conf_thres 0.5, nms_thres 0.6."""

    conf_thres: float = 0.5
    nms_thres: float = 0.6
    max_det: int = MAX_DETECTIONS


def filter_scores(pred: torch.Tensor, conf_thres: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep rows of one image's decoded ``pred [N, 6]`` (cx, cy, w, h, obj, cls) with
    ``obj > conf_thres`` and ``obj * cls > conf_thres``.

    Returns ``(xyxy [K, 4], score [K])`` in network pixels.
    """
    obj = pred[:, 4]
    keep = obj > conf_thres
    p = pred[keep]
    score = p[:, 4] * p[:, 5]
    keep2 = score > conf_thres
    return boxes.xywh_to_xyxy(p[keep2, :4]), score[keep2]


def diou_matrix(xyxy: torch.Tensor, beta: float = DIOU_BETA) -> torch.Tensor:
    """``M[i, j] = IoU(i, j) - (rho^2 / c^2)^beta`` for i < j, 0 elsewhere (plain areas, no +1).

    rho = distance of the centres, c = diagonal of the smallest enclosing box (+1e-7).
    """
    iou = boxes.box_iou_torch(xyxy, xyxy)
    ctr = (xyxy[:, :2] + xyxy[:, 2:]) / 2
    rho2 = ((ctr[:, None, :] - ctr[None, :, :]) ** 2).sum(-1)
    lt = torch.minimum(xyxy[:, None, :2], xyxy[None, :, :2])
    rb = torch.maximum(xyxy[:, None, 2:], xyxy[None, :, 2:])
    c2 = ((rb - lt) ** 2).sum(-1) + 1e-7
    return torch.triu(iou - (rho2 / c2) ** beta, diagonal=1)


def cluster_diou_nms(xyxy: torch.Tensor, scores: torch.Tensor, thres: float, max_det: int = MAX_DETECTIONS) -> torch.Tensor:
    """Cluster-DIoU NMS.  Returns indices into the inputs, in descending score order.

    Boxes are sorted by score; a box is suppressed when a *kept* higher-scoring box has
    DIoU above ``thres``.  Iterated to a fixed point (at most 200 rounds); one comparison
    (``<= thres`` keeps) is used throughout (spec Q17).
    """
    if xyxy.shape[0] == 0:
        return torch.zeros(0, dtype=torch.long, device=xyxy.device)
    order = scores.argsort(descending=True)
    m = diou_matrix(xyxy[order])
    b = m
    for _ in range(NMS_MAX_ITER):
        a = b
        kept = (a.amax(dim=0) <= thres).to(m.dtype)
        b = m * kept[:, None]
        if torch.equal(a, b):
            break
    keep = b.amax(dim=0) <= thres
    return order[keep][:max_det]


def gather_embeddings(emb_map: torch.Tensor, xyxy_net: torch.Tensor) -> torch.Tensor:
    """Embeddings at box centres: ``emb_map [H/8, W/8, D]``, ``xyxy_net [K, 4]`` (network px)
    -> L2-normalised ``[K, D]``.

    Cell = floor(centre / 8), clamped to the map at both ends (spec Q2).
    """
    h, w = emb_map.shape[:2]
    col = torch.floor((xyxy_net[:, 0] + xyxy_net[:, 2]) / (2 * EMB_STRIDE)).long().clamp(0, w - 1)
    row = torch.floor((xyxy_net[:, 1] + xyxy_net[:, 3]) / (2 * EMB_STRIDE)).long().clamp(0, h - 1)
    return torch.nn.functional.normalize(emb_map[row, col].float(), dim=1)


def postprocess_image(
    pred: torch.Tensor, emb_map: torch.Tensor, cfg: PostprocessConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One image: decoded ``pred [N, 6]`` and ``emb_map [H/8, W/8, D]`` ->
    ``(xyxy [K, 4] network px, scores [K], embeddings [K, D] L2-normalised)``, by descending score."""
    xyxy, score = filter_scores(pred, cfg.conf_thres)
    keep = cluster_diou_nms(xyxy, score, cfg.nms_thres, cfg.max_det)
    xyxy, score = xyxy[keep], score[keep]
    return xyxy, score, gather_embeddings(emb_map, xyxy)
