"""Compiled tracker steps (see :mod:`cstrack.jit`): the arithmetic of
:mod:`cstrack.tracker.kalman`, :mod:`cstrack.tracker.matching` and the tracker loop as loops over
the rows a frame touches, reading and writing the :class:`~cstrack.tracker.track.TrackArrays`
columns in place.

Each kernel computes what the array expression it replaces computes, with the same operations in
the same order, so the tracker's decisions are those of the reference functions (the tests compare
them).  Two sums are written differently and agree only to rounding: the squared Mahalanobis
distance is summed directly (the reference expands it into matrix products) and norms of
embeddings are summed sequentially (NumPy sums pairwise).  Dot products of embeddings stay with
BLAS: a dependent chain of float32 additions (strict IEEE order forbids vectorising it) took 50 us
for 24 tracks x 22 detections x 128 values, BLAS 5 us.

Track rows are addressed by int64 index arrays; ``mean`` is float64 ``[n, 8]``, ``cov`` float64
``[n, 3, 4]`` (compact covariance, see :mod:`cstrack.tracker.kalman`), boxes float64 xyxy / xyah.
Noise terms arrive as ``(scale [4], const [4])`` pairs: ``std = h * scale + const``.
"""

from __future__ import annotations

import numpy as np

from cstrack.jit import kernel, unit_norm_in_place
from cstrack.tracker.track import TrackState

# compile-time constants for the kernels (TrackState's values)
_TRACKED = int(TrackState.TRACKED)
_LOST = int(TrackState.LOST)
_REMOVED = int(TrackState.REMOVED)


@kernel
def prepare_detections(xyxy32: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Detections ``[M, 4]`` xyxy (float32) -> ``(valid [K] int64, xyxy [K, 4], xyah [K, 4])``
    float64, keeping rows with positive width and height and finite corners."""
    m = xyxy32.shape[0]
    valid = np.empty(m, np.int64)
    k = 0
    for j in range(m):
        x1, y1, x2, y2 = np.float64(xyxy32[j, 0]), np.float64(xyxy32[j, 1]), np.float64(xyxy32[j, 2]), np.float64(xyxy32[j, 3])
        if x2 - x1 > 0 and y2 - y1 > 0 and np.isfinite(x1) and np.isfinite(y1) and np.isfinite(x2) and np.isfinite(y2):
            valid[k] = j
            k += 1
    xyxy = np.empty((k, 4), np.float64)
    xyah = np.empty((k, 4), np.float64)
    for t in range(k):
        j = valid[t]
        for c in range(4):
            xyxy[t, c] = np.float64(xyxy32[j, c])
        w = xyxy[t, 2] - xyxy[t, 0]
        h = xyxy[t, 3] - xyxy[t, 1]
        xyah[t, 0] = xyxy[t, 0] + 0.5 * w
        xyah[t, 1] = xyxy[t, 1] + 0.5 * h
        xyah[t, 2] = w / h
        xyah[t, 3] = h
    return valid[:k], xyxy, xyah


@kernel
def normalised_rows(x: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``x[rows]`` (float32 ``[., D]``) with each row scaled to unit L2 norm (zero rows stay zero)."""
    out = np.empty((rows.shape[0], x.shape[1]), np.float32)
    for t in range(rows.shape[0]):
        out[t] = x[rows[t]]
        unit_norm_in_place(out[t])
    return out


@kernel
def partition(state: np.ndarray, activated: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(unconfirmed, pool)`` row indices: tracked but not activated; activated-tracked or lost."""
    n = state.shape[0]
    unconfirmed = np.empty(n, np.int64)
    pool = np.empty(n, np.int64)
    nu = npool = 0
    for i in range(n):
        if state[i] == _TRACKED and not activated[i]:
            unconfirmed[nu] = i
            nu += 1
        elif (state[i] == _TRACKED and activated[i]) or state[i] == _LOST:
            pool[npool] = i
            npool += 1
    return unconfirmed[:nu], pool[:npool]


@kernel
def predict_rows(
    mean: np.ndarray, cov: np.ndarray, state: np.ndarray, rows: np.ndarray,
    qp_scale: np.ndarray, qp_const: np.ndarray, qv_scale: np.ndarray, qv_const: np.ndarray,
) -> None:
    """:func:`cstrack.tracker.kalman.predict` of ``rows`` in place, lost tracks with their height
    velocity zeroed first."""
    for r in rows:
        if state[r] != _TRACKED:
            mean[r, 7] = 0.0
        h = mean[r, 3]
        for c in range(4):
            mean[r, c] += mean[r, c + 4]
            pp, pv, vv = cov[r, 0, c], cov[r, 1, c], cov[r, 2, c]
            sp = h * qp_scale[c] + qp_const[c]
            sv = h * qv_scale[c] + qv_const[c]
            cov[r, 0, c] = pp + 2.0 * pv + vv + sp * sp
            cov[r, 1, c] = pv + vv
            cov[r, 2, c] = vv + sv * sv


@kernel
def gating_rows(
    mean: np.ndarray, cov: np.ndarray, rows: np.ndarray, xyah: np.ndarray, r_scale: np.ndarray, r_const: np.ndarray
) -> np.ndarray:
    """Squared Mahalanobis distance ``[len(rows), M]`` of measurements ``xyah [M, 4]`` to the
    tracks ``rows`` (:func:`cstrack.tracker.kalman.gating_distance`)."""
    n, m = rows.shape[0], xyah.shape[0]
    out = np.empty((n, m), np.float64)
    s = np.empty(4, np.float64)
    for i in range(n):
        r = rows[i]
        h = mean[r, 3]
        for c in range(4):
            sr = h * r_scale[c] + r_const[c]
            s[c] = cov[r, 0, c] + sr * sr
        for j in range(m):
            d = 0.0
            for c in range(4):
                e = xyah[j, c] - mean[r, c]
                d += e * e / s[c]
            out[i, j] = d
    return out


@kernel
def appearance_cost(
    similarity: np.ndarray, has_template: np.ndarray, mean: np.ndarray, cov: np.ndarray, rows: np.ndarray,
    xyah: np.ndarray, r_scale: np.ndarray, r_const: np.ndarray, gate: float, motion_weight: float,
) -> np.ndarray:
    """Stage-1 cost ``[len(rows), M]`` from ``similarity [len(rows), M]`` (float32 dot products of
    the tracks' templates with the detections' embeddings, both unit-norm): the cosine distance
    ``max(0, 1 - similarity)`` (1 for a track without a template), fused with the Mahalanobis
    distance and ``inf`` beyond ``gate`` (:func:`cstrack.tracker.matching.fuse_motion`)."""
    gd = gating_rows(mean, cov, rows, xyah, r_scale, r_const)
    n, m = similarity.shape
    out = np.empty((n, m), np.float64)
    for i in range(n):
        has = has_template[rows[i]]
        for j in range(m):
            cost = max(1.0 - np.float64(similarity[i, j]), 0.0) if has else 1.0
            g = gd[i, j]
            out[i, j] = np.inf if g > gate else (1.0 - motion_weight) * cost + motion_weight * g
    return out


@kernel
def mean_xyxy(mean: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """xyxy ``[len(rows), 4]`` boxes of the Kalman means of ``rows``."""
    out = np.empty((rows.shape[0], 4), np.float64)
    for i in range(rows.shape[0]):
        r = rows[i]
        half_w = 0.5 * mean[r, 2] * mean[r, 3]
        half_h = 0.5 * mean[r, 3]
        out[i, 0] = mean[r, 0] - half_w
        out[i, 1] = mean[r, 1] - half_h
        out[i, 2] = mean[r, 0] + half_w
        out[i, 3] = mean[r, 1] + half_h
    return out


@kernel
def iou_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``1 - IoU`` ``[N, M]`` of float64 xyxy boxes with the +1 pixel convention
    (:func:`cstrack.tracker.matching.iou_distance`)."""
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
def assign(c: np.ndarray, thresh: float) -> tuple[bool, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`cstrack.tracker.matching.linear_assignment` on a non-empty float64 ``c [n, m]``.

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
def correct_rows(
    mean: np.ndarray, cov: np.ndarray, state: np.ndarray, activated: np.ndarray, frame_id: np.ndarray,
    tracklet_len: np.ndarray, score: np.ndarray, rows: np.ndarray, det_idx: np.ndarray,
    xyah: np.ndarray, det_scores: np.ndarray, r_scale: np.ndarray, r_const: np.ndarray, frame: int,
) -> None:
    """Kalman update of ``rows`` with detections ``det_idx`` (:func:`cstrack.tracker.kalman.update`)
    and the bookkeeping of a match: tracked, activated, seen at ``frame``, the detection's score,
    the tracklet length restarted for a track that was lost."""
    for t in range(rows.shape[0]):
        r, j = rows[t], det_idx[t]
        h = mean[r, 3]
        for c in range(4):
            pp, pv, vv = cov[r, 0, c], cov[r, 1, c], cov[r, 2, c]
            sr = h * r_scale[c] + r_const[c]
            s = pp + sr * sr
            k_pos = pp / s
            k_vel = pv / s
            nu = xyah[j, c] - mean[r, c]
            mean[r, c] = mean[r, c] + k_pos * nu
            mean[r, c + 4] = mean[r, c + 4] + k_vel * nu
            cov[r, 0, c] = pp - k_pos * pp
            cov[r, 1, c] = pv - k_pos * pv
            cov[r, 2, c] = vv - k_vel * pv
        tracklet_len[r] = 0 if state[r] == _LOST else tracklet_len[r] + 1
        state[r] = _TRACKED
        activated[r] = True
        frame_id[r] = frame
        score[r] = det_scores[j]


@kernel
def update_templates(
    template: np.ndarray, has_template: np.ndarray, rows: np.ndarray, det_idx: np.ndarray, emb: np.ndarray,
    momentum: np.float32,
) -> None:
    """Templates of ``rows`` <- unit-norm ``m * template + (1 - m) * embedding`` (the embedding
    alone for a track without a template)."""
    rest = np.float32(1.0) - momentum
    for t in range(rows.shape[0]):
        r, j = rows[t], det_idx[t]
        for c in range(template.shape[1]):
            template[r, c] = momentum * template[r, c] + rest * emb[j, c] if has_template[r] else emb[j, c]
        unit_norm_in_place(template[r])
        has_template[r] = True


@kernel
def suppress_duplicates(
    mean: np.ndarray, state: np.ndarray, frame_id: np.ndarray, start_frame: np.ndarray, thresh: float
) -> None:
    """Of each (tracked, lost) pair whose boxes have ``1 - IoU < thresh``, mark the one with the
    shorter history removed (the tracked one on a tie).  Pairs are found before any is removed."""
    n = state.shape[0]
    tracked = np.empty(n, np.int64)
    lost = np.empty(n, np.int64)
    nt = nl = 0
    for i in range(n):
        if state[i] == _TRACKED:
            tracked[nt] = i
            nt += 1
        elif state[i] == _LOST:
            lost[nl] = i
            nl += 1
    if nt == 0 or nl == 0:
        return
    dist = iou_distance(mean_xyxy(mean, tracked[:nt]), mean_xyxy(mean, lost[:nl]))
    drop = np.zeros(n, np.bool_)
    for p in range(nt):
        for q in range(nl):
            if dist[p, q] < thresh:
                a, b = tracked[p], lost[q]
                if frame_id[a] - start_frame[a] <= frame_id[b] - start_frame[b]:
                    drop[a] = True
                else:
                    drop[b] = True
    for i in range(n):
        if drop[i]:
            state[i] = _REMOVED
