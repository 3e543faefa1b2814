"""Inference post-processing (spec §9.3-§9.5): confidence filter, Cluster-DIoU NMS, and the
embedding gather at box centres on the 1/8 map.

The functions here are the definition, written with NumPy array operations: a frame leaves a
few dozen candidate boxes, and on such tiny arrays each torch op costs several microseconds of
dispatch (and, on the intra-op pool, a wake-up and a barrier).  :func:`postprocess_image` runs host
arrays through the compiled loops at the end of this module (see :mod:`cstrack.jit`), which compute
the same thing and are tested against these (tests/model/test_postprocess.py), because even NumPy's
per-call cost made post-processing a visible share of a real-time frame.  The kernels read the
thresholds from one :class:`NmsSettings` record.  Predictions on an accelerator stay there: the rows
above the objectness threshold are picked on the device, and only those and the gathered embeddings
travel to the host.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch

from cstrack import boxes
from cstrack.jit import kernel, unit_norm_in_place

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


def _host(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


def _on_host(x: Any) -> Any:
    """A CPU tensor as a NumPy view (no torch op, so no intra-op pool wake-up); a device tensor
    stays where it is."""
    if isinstance(x, torch.Tensor) and x.device.type == "cpu":
        return x.detach().numpy()
    return x


def filter_scores(pred: np.ndarray | torch.Tensor, conf_thres: float) -> tuple[np.ndarray, np.ndarray]:
    """Keep rows of one image's decoded ``pred [N, 6]`` (cx, cy, w, h, obj, cls) with
    ``obj > conf_thres`` and ``obj * cls > conf_thres``.

    Returns float32 ``(xyxy [K, 4], score [K])`` in network pixels.
    """
    pred = _on_host(pred)
    p = _host(pred[pred[:, 4] > conf_thres])
    score = p[:, 4] * p[:, 5]
    keep = score > conf_thres
    return boxes.xywh_to_xyxy(p[keep, :4]), score[keep]


def diou_matrix(xyxy: np.ndarray, beta: float = DIOU_BETA) -> np.ndarray:
    """``M[i, j] = IoU(i, j) - (rho^2 / c^2)^beta`` for i < j, 0 elsewhere (plain areas, no +1).

    rho = distance of the centres, c = diagonal of the smallest enclosing box (+1e-7).
    """
    b = np.asarray(xyxy, dtype=np.float32)
    x1, y1, x2, y2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    area = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    iw = np.clip(np.minimum(x2[:, None], x2) - np.maximum(x1[:, None], x1), 0, None)
    ih = np.clip(np.minimum(y2[:, None], y2) - np.maximum(y1[:, None], y1), 0, None)
    inter = iw * ih
    iou = inter / (area[:, None] + area - inter + np.float32(1e-9))
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    rho2 = (cx[:, None] - cx) ** 2 + (cy[:, None] - cy) ** 2
    cw = np.maximum(x2[:, None], x2) - np.minimum(x1[:, None], x1)
    ch = np.maximum(y2[:, None], y2) - np.minimum(y1[:, None], y1)
    c2 = cw**2 + ch**2 + np.float32(1e-7)
    return np.triu(iou - (rho2 / c2) ** np.float32(beta), k=1)


def cluster_diou_nms(xyxy: np.ndarray, scores: np.ndarray, thres: float, max_det: int = MAX_DETECTIONS) -> np.ndarray:
    """Cluster-DIoU NMS.  Returns int64 indices into the inputs, in descending score order
    (ties keep the input order).

    Boxes are sorted by score; a box is suppressed when a *kept* higher-scoring box has
    DIoU above ``thres``.  Iterated to a fixed point (at most 200 rounds); one comparison
    (``<= thres`` keeps) is used throughout (spec Q17).
    """
    if len(xyxy) <= 1:  # nothing to suppress
        return np.zeros(len(xyxy), dtype=np.int64)
    order = np.argsort(-np.asarray(scores), kind="stable")
    m = diou_matrix(np.asarray(xyxy)[order])
    b = m
    for _ in range(NMS_MAX_ITER):
        a = b
        b = m * (a.max(axis=0) <= thres)[:, None]
        if np.array_equal(a, b):
            break
    return order[b.max(axis=0) <= thres][:max_det]


def embedding_cells(xyxy_net: np.ndarray, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, col) int64 of the 1/8-map cells under the box centres: floor(centre / 8), clamped
    to the map at both ends (spec Q2)."""
    b = np.asarray(xyxy_net, dtype=np.float32).reshape(-1, 4)
    col = np.clip(np.floor((b[:, 0] + b[:, 2]) / (2 * EMB_STRIDE)), 0, w - 1).astype(np.int64)
    row = np.clip(np.floor((b[:, 1] + b[:, 3]) / (2 * EMB_STRIDE)), 0, h - 1).astype(np.int64)
    return row, col


def gather_embeddings(emb_map: np.ndarray | torch.Tensor, xyxy_net: np.ndarray) -> np.ndarray:
    """Embeddings at box centres: ``emb_map [H/8, W/8, D]`` (NumPy, or a torch tensor on any
    device), ``xyxy_net [K, 4]`` (network px) -> L2-normalised float32 ``[K, D]``."""
    emb_map = _on_host(emb_map)
    h, w = emb_map.shape[:2]
    row, col = embedding_cells(xyxy_net, h, w)
    if isinstance(emb_map, torch.Tensor):
        dev = emb_map.device
        e = _host(emb_map[torch.from_numpy(row).to(dev), torch.from_numpy(col).to(dev)])
    else:
        e = np.asarray(emb_map[row, col], dtype=np.float32)
    norm = np.sqrt((e * e).sum(axis=1, keepdims=True))
    return e / np.maximum(norm, np.float32(1e-12))


def postprocess_image_reference(
    pred: np.ndarray | torch.Tensor, emb_map: np.ndarray | torch.Tensor, cfg: PostprocessConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`postprocess_image` written with array operations: the definition the compiled
    kernels are tested against, and the path for tensors on an accelerator (the rows above the
    threshold and the gathered embeddings are picked on the device)."""
    xyxy, score = filter_scores(pred, cfg.conf_thres)
    keep = cluster_diou_nms(xyxy, score, cfg.nms_thres, cfg.max_det)
    xyxy, score = xyxy[keep], score[keep]
    return xyxy, score, gather_embeddings(emb_map, xyxy)


def _host_f32(x: Any) -> np.ndarray | None:
    """``x`` as a float32 NumPy array when it lives on the host (a view where possible), else None."""
    x = _on_host(x)
    return None if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float32)


def postprocess_image(
    pred: np.ndarray | torch.Tensor, emb_map: np.ndarray | torch.Tensor, cfg: PostprocessConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image: decoded ``pred [N, 6]`` and ``emb_map [H/8, W/8, D]`` ->
    float32 ``(xyxy [K, 4] network px, scores [K], embeddings [K, D] L2-normalised)``, by
    descending score.

    Host arrays (NumPy, CPU tensors) go through the compiled kernels :func:`select_boxes` and
    :func:`gather_normalised`; device tensors through :func:`postprocess_image_reference`.  Both
    give the same boxes and scores.
    """
    p, e = _host_f32(pred), _host_f32(emb_map)
    if p is None or e is None:
        return postprocess_image_reference(pred, emb_map, cfg)
    xyxy, score = select_boxes(p, nms_settings(cfg))
    return xyxy, score, gather_normalised(e, xyxy, EMB_STRIDE)


# ---------------------------------------------------------------------------------------------
# Compiled post-processing on host arrays (tests/model/test_postprocess.py compares it with the
# functions above).  Same arithmetic as the NumPy reference, in float32 and in the same order, so
# boxes, scores and the kept set are identical; embeddings agree to rounding (NumPy sums the
# squares pairwise, the loop sequentially).


class NmsSettings(NamedTuple):
    """What :func:`select_boxes` reads of a :class:`PostprocessConfig`, in the kernel's types: the
    thresholds as float32 (the scores and DIoU values they are compared with are float32)."""

    conf_thres: np.float32  # objectness and obj * cls must exceed it
    nms_thres: np.float32  # a box survives while no kept higher-scoring box has DIoU above it
    beta: np.float32  # DIoU penalty exponent (DIOU_BETA)
    max_iter: int  # fixed-point rounds at most (NMS_MAX_ITER)
    max_det: int  # boxes kept at most


@functools.lru_cache(maxsize=16)
def nms_settings(cfg: PostprocessConfig) -> NmsSettings:
    """The kernel record of ``cfg`` (cached per config)."""
    return NmsSettings(np.float32(cfg.conf_thres), np.float32(cfg.nms_thres), np.float32(DIOU_BETA),
                       NMS_MAX_ITER, int(cfg.max_det))


_F0 = np.float32(0.0)
_HALF_DIV = np.float32(2.0)
_EPS_IOU = np.float32(1e-9)
_EPS_DIAG = np.float32(1e-7)


@kernel
def select_boxes(pred: np.ndarray, nms: NmsSettings) -> tuple[np.ndarray, np.ndarray]:
    """Decoded ``pred [N, 6]`` (cx, cy, w, h, obj, cls; float32, network px) -> ``(xyxy [K, 4],
    score [K])`` float32 after the score filter and Cluster-DIoU NMS, by descending score.

    :func:`filter_scores` + :func:`cluster_diou_nms`, step for step: rows with ``obj > conf`` and
    ``obj * cls > conf``; stable sort by score; the upper-triangular DIoU matrix
    (:func:`diou_matrix`); the Jacobi fixed point ``keep_j = max(0, max_{i<j, keep_i} M_ij) <=
    nms_thres`` (at most ``max_iter`` rounds, stopping when the suppression matrix stops changing);
    the first ``max_det`` kept boxes.
    """
    conf_thres, nms_thres, beta = nms.conf_thres, nms.nms_thres, nms.beta
    n = pred.shape[0]
    rows = np.empty(n, np.int64)
    neg = np.empty(n, np.float32)
    k = 0
    for i in range(n):
        obj = pred[i, 4]
        if obj > conf_thres:
            s = obj * pred[i, 5]
            if s > conf_thres:
                rows[k] = i
                neg[k] = -s
                k += 1
    order = np.argsort(neg[:k], kind="mergesort")
    b = np.empty((k, 4), np.float32)
    score = np.empty(k, np.float32)
    for j in range(k):
        r = rows[order[j]]
        cx, cy, w, h = pred[r, 0], pred[r, 1], pred[r, 2], pred[r, 3]
        b[j, 0] = cx - w / _HALF_DIV
        b[j, 1] = cy - h / _HALF_DIV
        b[j, 2] = cx + w / _HALF_DIV
        b[j, 3] = cy + h / _HALF_DIV
        score[j] = -neg[order[j]]
    # M[i, j] (i < j): IoU - (rho^2 / c^2)^beta, as diou_matrix
    m = np.zeros((k, k), np.float32)
    for i in range(k):
        ax1, ay1, ax2, ay2 = b[i, 0], b[i, 1], b[i, 2], b[i, 3]
        area_a = max(ax2 - ax1, _F0) * max(ay2 - ay1, _F0)
        acx, acy = (ax1 + ax2) / _HALF_DIV, (ay1 + ay2) / _HALF_DIV
        for j in range(i + 1, k):
            bx1, by1, bx2, by2 = b[j, 0], b[j, 1], b[j, 2], b[j, 3]
            area_b = max(bx2 - bx1, _F0) * max(by2 - by1, _F0)
            inter = max(min(ax2, bx2) - max(ax1, bx1), _F0) * max(min(ay2, by2) - max(ay1, by1), _F0)
            iou = inter / (area_a + area_b - inter + _EPS_IOU)
            dx = acx - (bx1 + bx2) / _HALF_DIV
            dy = acy - (by1 + by2) / _HALF_DIV
            rho2 = dx * dx + dy * dy
            cw = max(ax2, bx2) - min(ax1, bx1)
            ch = max(ay2, by2) - min(ay1, by1)
            c2 = cw * cw + ch * ch + _EPS_DIAG
            m[i, j] = iou - (rho2 / c2) ** beta
    # rows of M with a non-zero entry: only their keep flag changes the suppression matrix
    live = np.zeros(k, np.bool_)
    for i in range(k):
        for j in range(i + 1, k):
            if m[i, j] != _F0:
                live[i] = True
                break
    keep = np.ones(k, np.bool_)
    new = np.empty(k, np.bool_)
    for _ in range(nms.max_iter):
        changed = False
        for j in range(k):
            col = _F0
            for i in range(j):
                if keep[i] and m[i, j] > col:
                    col = m[i, j]
            new[j] = col <= nms_thres
        for i in range(k):
            if new[i] != keep[i] and live[i]:
                changed = True
            keep[i] = new[i]
        if not changed:
            break
    # the reported set is the column maxima of the final suppression matrix
    out = np.empty(k, np.int64)
    n_out = 0
    for j in range(k):
        col = _F0
        for i in range(j):
            if keep[i] and m[i, j] > col:
                col = m[i, j]
        if col <= nms_thres and n_out < nms.max_det:
            out[n_out] = j
            n_out += 1
    xyxy = np.empty((n_out, 4), np.float32)
    kept = np.empty(n_out, np.float32)
    for t in range(n_out):
        xyxy[t] = b[out[t]]
        kept[t] = score[out[t]]
    return xyxy, kept


@kernel
def gather_normalised(emb_map: np.ndarray, xyxy_net: np.ndarray, stride: int) -> np.ndarray:
    """:func:`gather_embeddings` on host arrays: embeddings ``[K, D]`` of ``emb_map [H/8, W/8, D]``
    (float32) at the cells under the centres of ``xyxy_net [K, 4]`` (floor(centre / stride),
    clamped, as :func:`embedding_cells`), each scaled to unit L2 norm."""
    h, w, d = emb_map.shape
    k = xyxy_net.shape[0]
    div = np.float32(2 * stride)
    out = np.empty((k, d), np.float32)
    for t in range(k):
        col = int(min(max(np.floor((xyxy_net[t, 0] + xyxy_net[t, 2]) / div), _F0), np.float32(w - 1)))
        row = int(min(max(np.floor((xyxy_net[t, 1] + xyxy_net[t, 3]) / div), _F0), np.float32(h - 1)))
        out[t] = emb_map[row, col]
        unit_norm_in_place(out[t])
    return out


def warm_up() -> None:
    """Compile (or load from numba's cache) the post-processing kernels for the argument types the
    pipeline passes (:mod:`cstrack.precompile`)."""
    rng = np.random.default_rng(0)
    pred = np.zeros((64, 6), np.float32)
    pred[:, :2] = rng.uniform(20, 300, (64, 2))
    pred[:, 2:4] = rng.uniform(10, 60, (64, 2))
    pred[:, 4:] = rng.uniform(0.4, 1.0, (64, 2))
    postprocess_image(pred, rng.standard_normal((40, 40, 16)).astype(np.float32), PostprocessConfig())


# ---------------------------------------------------------------------------------------------
# Batched post-processing with torch ops, for predictions that live on an accelerator: a batch of
# images is filtered, sorted and suppressed on the device, and only the kept boxes and their
# embeddings travel to the host, in one copy.  The same arithmetic as select_boxes (float32, the
# same order of operations), so the kept set is the same (tests/model/test_postprocess_batch.py).
# On the CPU the compiled kernels above stay the default: they are faster on a few dozen boxes.

_NMS_BYTES = 1 << 28  # DIoU matrices [G, K, K] float32 of one group of images: at most 256 MiB


def _diou_upper(b: torch.Tensor, beta: float) -> torch.Tensor:
    """``M [G, K, K]`` of boxes ``b [G, K, 4]`` (xyxy): IoU - (rho^2 / c^2)^beta above the diagonal,
    0 on and below it; :func:`diou_matrix` / :func:`select_boxes` written for a batch."""
    x1, y1, x2, y2 = b.unbind(-1)
    area = (x2 - x1).clamp_min(0) * (y2 - y1).clamp_min(0)
    iw = (torch.minimum(x2[:, :, None], x2[:, None, :]) - torch.maximum(x1[:, :, None], x1[:, None, :])).clamp_min(0)
    ih = (torch.minimum(y2[:, :, None], y2[:, None, :]) - torch.maximum(y1[:, :, None], y1[:, None, :])).clamp_min(0)
    inter = iw * ih
    iou = inter / (area[:, :, None] + area[:, None, :] - inter + float(_EPS_IOU))
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    dx = cx[:, :, None] - cx[:, None, :]
    dy = cy[:, :, None] - cy[:, None, :]
    rho2 = dx * dx + dy * dy
    cw = torch.maximum(x2[:, :, None], x2[:, None, :]) - torch.minimum(x1[:, :, None], x1[:, None, :])
    ch = torch.maximum(y2[:, :, None], y2[:, None, :]) - torch.minimum(y1[:, :, None], y1[:, None, :])
    c2 = cw * cw + ch * ch + float(_EPS_DIAG)
    m = iou - torch.pow(rho2 / c2, beta)
    return torch.triu(m, diagonal=1)


def _suppress(m: torch.Tensor, valid: torch.Tensor, thres: float, max_iter: int) -> torch.Tensor:
    """Kept flags ``[G, K]`` of the Jacobi fixed point of Cluster-DIoU NMS on ``m [G, K, K]``
    (rows and columns of invalid boxes are zero in ``m``): a box is kept when no kept higher-scoring
    box has DIoU above ``thres``; iterated until the flags stop changing (at most ``max_iter``)."""
    keep = valid.clone()
    for _ in range(max_iter):
        colmax = (m * keep[:, :, None]).amax(dim=1).clamp_min(0.0)
        new = (colmax <= thres) & valid
        if torch.equal(new, keep):
            break
        keep = new
    return keep


@torch.inference_mode()
def postprocess_batch(
    pred: torch.Tensor, emb_map: torch.Tensor, cfg: PostprocessConfig
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """:func:`postprocess_image` of every image of a batch, computed with torch ops where the
    tensors live: ``pred [B, N, 6]`` (cx, cy, w, h, obj, cls; network px) and ``emb_map
    [B, H/8, W/8, D]`` -> per image float32 ``(xyxy [K, 4] network px, scores [K], embeddings
    [K, D] L2-normalised)`` by descending score, on the host.

    Score filter, stable sort by score, the DIoU matrix, the fixed point and the embedding gather
    run on the device; the kept rows come to the host in one copy."""
    pred = pred.float()
    bsz = pred.shape[0]
    d = emb_map.shape[-1]
    obj = pred[..., 4]
    score = obj * pred[..., 5]
    valid = (obj > cfg.conf_thres) & (score > cfg.conf_thres)
    k = int(valid.sum(dim=1).max()) if bsz else 0
    if k == 0:
        return [(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, d), np.float32))
                for _ in range(bsz)]
    key = torch.where(valid, score, torch.full_like(score, -torch.inf))
    order = torch.sort(key, dim=1, descending=True, stable=True).indices[:, :k]  # [B, K]
    rows = torch.gather(pred, 1, order[:, :, None].expand(-1, -1, pred.shape[-1]))
    ok = torch.gather(valid, 1, order)
    sc = torch.gather(score, 1, order)
    cx, cy, w, h = rows[..., 0], rows[..., 1], rows[..., 2], rows[..., 3]
    xyxy = torch.stack((cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0), dim=-1)
    group = max(1, _NMS_BYTES // (4 * k * k))
    kept = []
    for g0 in range(0, bsz, group):
        sl = slice(g0, g0 + group)
        pair = ok[sl, :, None] & ok[sl, None, :]
        m = _diou_upper(xyxy[sl], DIOU_BETA) * pair
        kept.append(_suppress(m, ok[sl], cfg.nms_thres, NMS_MAX_ITER))
    keep = torch.cat(kept)
    keep &= torch.cumsum(keep, dim=1) <= cfg.max_det
    # embedding cells under the centres (embedding_cells), gathered and normalised on the device
    eh, ew = emb_map.shape[1], emb_map.shape[2]
    div = float(2 * EMB_STRIDE)
    col = torch.floor((xyxy[..., 0] + xyxy[..., 2]) / div).clamp(0, ew - 1).long()
    row = torch.floor((xyxy[..., 1] + xyxy[..., 3]) / div).clamp(0, eh - 1).long()
    img = torch.arange(bsz, device=pred.device)[:, None].expand(-1, k)
    e = emb_map.float()[img[keep], row[keep], col[keep]]
    e = e / e.norm(dim=1, keepdim=True).clamp_min(1e-12)
    counts = keep.sum(dim=1).cpu().tolist()
    host = torch.cat((xyxy[keep], sc[keep][:, None], e), dim=1).cpu().numpy()
    out = []
    start = 0
    for c in counts:
        part = host[start:start + c]
        start += c
        out.append((np.ascontiguousarray(part[:, :4]), np.ascontiguousarray(part[:, 4]), np.ascontiguousarray(part[:, 5:])))
    return out
