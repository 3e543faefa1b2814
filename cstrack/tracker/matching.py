"""Association costs and assignment (spec §10.3-§10.4): pure functions, cost matrices in, matches out.

Cost matrices are float64 ``[N, M]`` with tracks as rows and detections as columns; lower is
better and ``inf`` means "never".
"""

from __future__ import annotations

import numpy as np

from cstrack.jit import kernel
from cstrack.tracker.kalman import KalmanRows, NoiseTerms, gating_rows

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
    ``min(cost, thresh) - thresh`` (see :func:`assign_kernel`, a compiled loop: on
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
    bad, rows, cols, free_rows, free_cols = assign_kernel(c, float(thresh))
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
    return iou_distance_kernel(a, b)


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


# ---------------------------------------------------------------------------------------------
# Compiled kernels (see :mod:`cstrack.jit`): what the functions above compute, as loops


@kernel
def iou_distance_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``1 - IoU`` ``[N, M]`` of float64 xyxy boxes with the +1 pixel convention
    (:func:`iou_distance`)."""
    n, m = a.shape[0], b.shape[0]
    out = np.empty((n, m), np.float64)
    for i in range(n):
        area_a = (a[i, 2] - a[i, 0] + 1.0) * (a[i, 3] - a[i, 1] + 1.0)
        for j in range(m):
            area_b = (b[j, 2] - b[j, 0] + 1.0) * (b[j, 3] - b[j, 1] + 1.0)
            iw = max(min(a[i, 2], b[j, 2]) - max(a[i, 0], b[j, 0]) + 1.0, 0.0)
            ih = max(min(a[i, 3], b[j, 3]) - max(a[i, 1], b[j, 1]) + 1.0, 0.0)
            inter = iw * ih
            union = area_a + area_b - inter
            out[i, j] = 1.0 - (inter / union if union > 0 else 0.0)
    return out


@kernel
def _min_cost_rows(a: np.ndarray) -> np.ndarray:
    """Column assigned to each row of ``a [n, m]`` (``n <= m``, finite) minimising the sum:
    the shortest-augmenting-path Hungarian method with row and column potentials, O(n^2 m)."""
    n, m = a.shape
    inf = np.inf
    u = np.zeros(n + 1)
    v = np.zeros(m + 1)
    p = np.zeros(m + 1, np.int64)  # p[j]: row (1-based) holding column j; 0 = free
    way = np.zeros(m + 1, np.int64)
    minv = np.empty(m + 1)
    used = np.empty(m + 1, np.bool_)
    for i in range(1, n + 1):
        p[0] = i
        j0 = 0
        minv[:] = inf
        used[:] = False
        while True:
            used[j0] = True
            i0 = p[j0]
            delta = inf
            j1 = 0
            for j in range(1, m + 1):
                if not used[j]:
                    cur = a[i0 - 1, j - 1] - u[i0] - v[j]
                    if cur < minv[j]:
                        minv[j] = cur
                        way[j] = j0
                    if minv[j] < delta:
                        delta = minv[j]
                        j1 = j
            for j in range(m + 1):
                if used[j]:
                    u[p[j]] += delta
                    v[j] -= delta
                else:
                    minv[j] -= delta
            j0 = j1
            if p[j0] == 0:
                break
        while j0 != 0:
            j1 = way[j0]
            p[j0] = p[j1]
            j0 = j1
    col_of = np.full(n, -1, np.int64)
    for j in range(1, m + 1):
        if p[j] != 0:
            col_of[p[j] - 1] = j - 1
    return col_of


@kernel
def assign_kernel(c: np.ndarray, thresh: float) -> tuple[bool, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`linear_assignment` on a non-empty float64 ``c [n, m]``.

    Returns ``(bad, rows, cols, free_rows, free_cols)``; ``bad``: ``c`` holds NaN or ``-inf``
    (nothing is solved then).
    Leaving a row or a column unmatched costs ``thresh / 2`` each, so the objective is
    ``thresh / 2 * (n + m) + sum over matched pairs of (c_ij - thresh)``: minimising it is an
    assignment on ``min(c, thresh) - thresh``, where a pair at 0 stands for "unmatched".  Pairs that
    are each other's only candidate (cost below ``thresh``) are matched directly; the Hungarian
    method solves the rows and columns of the remaining candidates.
    """
    n, m = c.shape
    row_cnt = np.zeros(n, np.int64)
    col_cnt = np.zeros(m, np.int64)
    row_col = np.full(n, -1, np.int64)  # a candidate column of each row
    for i in range(n):
        for j in range(m):
            v = c[i, j]
            if v != v or v == -np.inf:
                return True, row_cnt[:0], row_cnt[:0], row_cnt[:0], row_cnt[:0]
            if v < thresh:
                row_cnt[i] += 1
                col_cnt[j] += 1
                row_col[i] = j
    col_of = np.full(n, -1, np.int64)
    col_single = np.zeros(m, np.bool_)
    rest_rows = np.empty(n, np.int64)
    nr = 0
    for i in range(n):
        if row_cnt[i] == 1 and col_cnt[row_col[i]] == 1:
            col_of[i] = row_col[i]
            col_single[row_col[i]] = True
        elif row_cnt[i] > 0:
            rest_rows[nr] = i
            nr += 1
    if nr:
        rest_cols = np.empty(m, np.int64)
        nc = 0
        for j in range(m):
            if col_cnt[j] > 0 and not col_single[j]:
                rest_cols[nc] = j
                nc += 1
        sub = np.empty((nr, nc))
        for a in range(nr):
            for b in range(nc):
                sub[a, b] = min(c[rest_rows[a], rest_cols[b]], thresh) - thresh
        if nr <= nc:
            x = _min_cost_rows(sub)
            for a in range(nr):
                if c[rest_rows[a], rest_cols[x[a]]] < thresh:
                    col_of[rest_rows[a]] = rest_cols[x[a]]
        else:
            x = _min_cost_rows(sub.T.copy())
            for b in range(nc):
                if c[rest_rows[x[b]], rest_cols[b]] < thresh:
                    col_of[rest_rows[x[b]]] = rest_cols[b]
    k = 0
    for i in range(n):
        if col_of[i] >= 0:
            k += 1
    rows = np.empty(k, np.int64)
    cols = np.empty(k, np.int64)
    free_rows = np.empty(n - k, np.int64)
    col_free = np.ones(m, np.bool_)
    t = f = 0
    for i in range(n):
        if col_of[i] >= 0:
            rows[t] = i
            cols[t] = col_of[i]
            col_free[col_of[i]] = False
            t += 1
        else:
            free_rows[f] = i
            f += 1
    free_cols = np.empty(m - k, np.int64)
    f = 0
    for j in range(m):
        if col_free[j]:
            free_cols[f] = j
            f += 1
    return False, rows, cols, free_rows, free_cols


@kernel
def appearance_cost(
    similarity: np.ndarray, has_template: np.ndarray, kf: KalmanRows, noise: NoiseTerms, rows: np.ndarray,
    xyah: np.ndarray, gate: float, motion_weight: float,
) -> np.ndarray:
    """Stage-1 cost ``[len(rows), M]`` from ``similarity [len(rows), M]`` (float32 dot products of
    the tracks' templates with the detections' embeddings, both unit-norm): the cosine distance
    ``max(0, 1 - similarity)`` (1 for a track without a template), fused with the Mahalanobis
    distance and ``inf`` beyond ``gate`` (:func:`embedding_distance` + :func:`fuse_motion`)."""
    gd = gating_rows(kf, noise, rows, xyah)
    n, m = similarity.shape
    out = np.empty((n, m), np.float64)
    for i in range(n):
        has = has_template[rows[i]]
        for j in range(m):
            cost = max(1.0 - np.float64(similarity[i, j]), 0.0) if has else 1.0
            g = gd[i, j]
            out[i, j] = np.inf if g > gate else (1.0 - motion_weight) * cost + motion_weight * g
    return out
