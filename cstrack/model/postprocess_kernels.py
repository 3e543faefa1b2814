"""Compiled post-processing (see :mod:`cstrack.jit`): the score filter, Cluster-DIoU NMS and the
embedding gather of :mod:`cstrack.model.postprocess` as loops over host arrays.

Same arithmetic as the NumPy reference, in float32 and in the same order, so boxes, scores and
the kept set are identical (tested); embeddings agree to rounding (NumPy sums the squares
pairwise, the loop sequentially).
"""

from __future__ import annotations

import numpy as np

from cstrack.jit import kernel, unit_norm_in_place

_F0 = np.float32(0.0)
_HALF_DIV = np.float32(2.0)
_EPS_IOU = np.float32(1e-9)
_EPS_DIAG = np.float32(1e-7)


@kernel
def select_boxes(
    pred: np.ndarray, conf_thres: np.float32, nms_thres: np.float32, beta: np.float32, max_iter: int, max_det: int
) -> tuple[np.ndarray, np.ndarray]:
    """Decoded ``pred [N, 6]`` (cx, cy, w, h, obj, cls; float32, network px) -> ``(xyxy [K, 4],
    score [K])`` float32 after the score filter and Cluster-DIoU NMS, by descending score.

    :func:`cstrack.model.postprocess.postprocess_image` without the embeddings, step for step:
    rows with ``obj > conf`` and ``obj * cls > conf``; stable sort by score; the upper-triangular
    DIoU matrix; the Jacobi fixed point ``keep_j = max(0, max_{i<j, keep_i} M_ij) <= nms_thres``
    (at most ``max_iter`` rounds, stopping when the suppression matrix stops changing); the first
    ``max_det`` kept boxes.
    """
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
    # M[i, j] (i < j): IoU - (rho^2 / c^2)^beta, as postprocess.diou_matrix
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
    for _ in range(max_iter):
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
        if col <= nms_thres and n_out < max_det:
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
    """Embeddings ``[K, D]`` of ``emb_map [H/8, W/8, D]`` (float32) at the cells under the centres
    of ``xyxy_net [K, 4]`` (floor(centre / stride), clamped), each scaled to unit L2 norm."""
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
