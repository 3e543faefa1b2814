"""Association costs and assignment (spec §10.3-§10.4): pure functions, cost matrices in, matches out.

Cost matrices are float64 ``[N, M]`` with tracks as rows and detections as columns; lower is
better and ``inf`` means "never".
"""

from __future__ import annotations

import numpy as np

from cstrack.tracker import kernels

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
    directly; the Hungarian method solves what remains, as an assignment on
    ``min(cost, thresh) - thresh`` (see :func:`cstrack.tracker.kernels.assign`, a compiled loop: on
    the few-dozen-row problems of a frame, calling ``lap`` cost more in array set-up than the
    solve).  The optimum is the one ``lap`` finds; among equal-cost optima the choice may differ.
    Costs must be finite or ``+inf``.

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
    bad, rows, cols, free_rows, free_cols = kernels.assign(c, float(thresh))
    if bad:
        raise ValueError("cost matrix contains NaN or -inf")
    matches = np.stack([rows, cols], axis=1) if len(rows) else _EMPTY_MATCHES.copy()
    return matches, free_rows, free_cols


def iou_distance(tracks_xyxy: np.ndarray, dets_xyxy: np.ndarray) -> np.ndarray:
    """``1 − IoU`` ``[N, M]`` with the tracker's +1 pixel convention (spec §10.4); boxes in xyxy.

    Equals ``1 − cstrack.boxes.iou_matrix(a, b, plus_one=True)`` (tested), computed by a compiled
    loop because the tracker calls it several times per frame.  Boxes whose union is not positive
    (degenerate) get distance 1.
    """
    a = np.asarray(tracks_xyxy, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(dets_xyxy, dtype=np.float64).reshape(-1, 4)
    return kernels.iou_distance(a, b)


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
