"""Association costs and assignment (spec §10.3-§10.4): pure functions, cost matrices in, matches out.

Cost matrices are float64 ``[N, M]`` with tracks as rows and detections as columns; lower is
better and ``inf`` means "never".
"""

from __future__ import annotations

import lap
import numpy as np

_EMPTY_MATCHES = np.zeros((0, 2), dtype=np.int64)


def linear_assignment(cost: np.ndarray, thresh: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimum-cost assignment where a pair is only accepted if its cost is below ``thresh``.

    Same semantics as ``lap.lapjv(cost, extend_cost=True, cost_limit=thresh)`` (spec §10.4): leaving
    a row or a column unmatched costs ``thresh / 2`` each, so the solver matches a pair only when
    that beats leaving both out.  Costs are clipped to ``thresh`` (which also handles ``inf``) and
    pairs whose original cost is ``>= thresh`` are discarded.

    Only entries below ``thresh`` can change the optimum (an entry at ``thresh`` costs exactly what
    leaving its row and column out costs), so the problem splits into the connected components of
    those entries.  Rows and columns with exactly one candidate, shared with nobody, are matched
    directly; LAPJV (``lap``) solves what remains.  Typical tracking frames need no solver call.

    Returns ``(matches [K, 2] int64 (row, col), unmatched_rows [int64], unmatched_cols [int64])``,
    ``matches`` sorted by row, the others in increasing order.
    """
    c = np.asarray(cost, dtype=np.float64)
    if c.ndim != 2:
        raise ValueError(f"cost must be 2-d, got shape {c.shape}")
    n, m = c.shape
    if not (np.isfinite(thresh) and thresh > 0):
        raise ValueError(f"thresh must be a positive finite number, got {thresh!r}")
    if n == 0 or m == 0:
        return _EMPTY_MATCHES.copy(), np.arange(n, dtype=np.int64), np.arange(m, dtype=np.int64)
    if np.isnan(c).any():
        raise ValueError("cost matrix contains NaN")
    cand = c < thresh
    row_cnt = cand.sum(axis=1)
    col_cnt = cand.sum(axis=0)
    single = cand & (row_cnt == 1)[:, None] & (col_cnt == 1)[None, :]
    rows, cols = np.nonzero(single)
    row_left = row_cnt > 0
    if np.count_nonzero(row_left) > len(rows):
        col_left = col_cnt > 0
        row_left[rows] = False
        col_left[cols] = False
        rest_rows = np.flatnonzero(row_left)
        rest_cols = np.flatnonzero(col_left)
        sub = np.minimum(c[np.ix_(rest_rows, rest_cols)], thresh)
        _, x, _ = lap.lapjv(sub, extend_cost=True, cost_limit=float(thresh), return_cost=True)
        x = np.asarray(x, dtype=np.int64)
        r = np.flatnonzero(x >= 0)
        r, cc = rest_rows[r], rest_cols[x[r]]
        ok = c[r, cc] < thresh
        rows = np.concatenate([rows, r[ok]])
        cols = np.concatenate([cols, cc[ok]])
        order = np.argsort(rows, kind="stable")
        rows, cols = rows[order], cols[order]
    matches = np.stack([rows, cols], axis=1).astype(np.int64, copy=False) if len(rows) else _EMPTY_MATCHES.copy()
    row_free = np.ones(n, dtype=bool)
    row_free[rows] = False
    col_free = np.ones(m, dtype=bool)
    col_free[cols] = False
    return matches, np.flatnonzero(row_free), np.flatnonzero(col_free)


def iou_distance(tracks_xyxy: np.ndarray, dets_xyxy: np.ndarray) -> np.ndarray:
    """``1 − IoU`` ``[N, M]`` with the tracker's +1 pixel convention (spec §10.4); boxes in xyxy.

    Equals ``1 − cstrack.boxes.iou_matrix(a, b, plus_one=True)`` (tested), written out here
    because the tracker calls it several times per frame.  Boxes whose union is not positive
    (degenerate) get distance 1.
    """
    a = np.asarray(tracks_xyxy, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(dets_xyxy, dtype=np.float64).reshape(-1, 4)
    if len(a) == 0 or len(b) == 0:
        return np.ones((len(a), len(b)), dtype=np.float64)
    area_a = (a[:, 2] - a[:, 0] + 1.0) * (a[:, 3] - a[:, 1] + 1.0)
    area_b = (b[:, 2] - b[:, 0] + 1.0) * (b[:, 3] - b[:, 1] + 1.0)
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]) + 1.0
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]) + 1.0
    np.maximum(iw, 0.0, out=iw)
    np.maximum(ih, 0.0, out=ih)
    inter = iw * ih
    union = area_a[:, None] + area_b[None, :] - inter
    ok = union > 0
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=ok)
    return np.subtract(1.0, iou, out=iou)


def embedding_distance(templates: np.ndarray, embeddings: np.ndarray) -> np.ndarray:
    """Cosine distance ``max(0, 1 − u·v / (|u| |v|))`` ``[N, M]`` between ``[N, D]`` track templates
    and ``[M, D]`` detection embeddings (spec §10.3 stage 1, §10.4).

    A zero vector has distance 1 to everything (no appearance information).  Computed as one
    matrix product; both inputs are normalised here, so unnormalised rows are fine.
    """
    t = np.asarray(templates, dtype=np.float32)
    e = np.asarray(embeddings, dtype=np.float32)
    n, m = len(t), len(e)
    if n == 0 or m == 0:
        return np.zeros((n, m), dtype=np.float64)
    if t.shape[1] != e.shape[1]:
        raise ValueError(f"embedding sizes differ: templates {t.shape[1]}, detections {e.shape[1]}")
    tn = np.linalg.norm(t, axis=1, keepdims=True)
    en = np.linalg.norm(e, axis=1, keepdims=True)
    t = np.divide(t, tn, out=np.zeros_like(t), where=tn > 0)
    e = np.divide(e, en, out=np.zeros_like(e), where=en > 0)
    dist = 1.0 - (t @ e.T).astype(np.float64)
    return np.maximum(dist, 0.0, out=dist)


def gate_cost(cost: np.ndarray, gating_dist: np.ndarray, gate: float) -> np.ndarray:
    """Copy of ``cost`` with ``inf`` where the squared Mahalanobis distance exceeds ``gate``."""
    out = np.array(cost, dtype=np.float64, copy=True)
    out[np.asarray(gating_dist) > gate] = np.inf
    return out


def fuse_motion(cost: np.ndarray, gating_dist: np.ndarray, gate: float, motion_weight: float) -> np.ndarray:
    """Appearance cost fused with Kalman motion (spec §10.3 stage 1).

    ``inf`` where ``gating_dist > gate``, else ``(1 − w)·cost + w·gating_dist`` with
    ``w = motion_weight`` (0.02 in SOTS).  Both inputs are ``[N, M]``.
    """
    gd = np.asarray(gating_dist, dtype=np.float64)
    out = (1.0 - motion_weight) * np.asarray(cost, dtype=np.float64) + motion_weight * gd
    out[gd > gate] = np.inf
    return out
