"""Track state (spec §10.1): the :class:`TrackState` enum, the :class:`Track` record, the per-frame
:class:`TrackOutput`, and :class:`TrackArrays`, the struct-of-arrays store the tracker keeps its
live tracks in (so that prediction, gating and updates run on all tracks at once).

Boxes are ``tlwh`` (top-left x, y, width, height) in frame pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple

import numpy as np

from cstrack.jit import kernel, unit_norm_in_place
from cstrack.tracker.kalman import KalmanRows, mean_xyxy
from cstrack.tracker.matching import iou_distance_kernel


def xyah_to_tlwh_fast(xyah: np.ndarray) -> np.ndarray:
    """:func:`cstrack.boxes.xyah_to_tlwh` for a float64 ``[N, 4]`` array, without the generic
    stacking (this runs several times per frame)."""
    w = xyah[:, 2] * xyah[:, 3]
    out = np.empty((len(xyah), 4), dtype=np.float64)
    out[:, 0] = xyah[:, 0] - 0.5 * w
    out[:, 1] = xyah[:, 1] - 0.5 * xyah[:, 3]
    out[:, 2] = w
    out[:, 3] = xyah[:, 3]
    return out


class TrackState(IntEnum):
    NEW = 0
    TRACKED = 1
    LOST = 2
    REMOVED = 3


# compile-time constants for the kernels (TrackState's values)
_TRACKED = int(TrackState.TRACKED)
_LOST = int(TrackState.LOST)
_REMOVED = int(TrackState.REMOVED)


@dataclass(frozen=True, slots=True)
class Track:
    """A read-only snapshot of one live track.

    ``tlwh`` float64 [4] is the Kalman state's box; ``is_activated`` is false until the track is
    confirmed; ``frame_id`` is the last frame a detection updated it; ``template`` float32 [D] is
    the smoothed L2-normalised embedding (``None`` without appearance).
    """

    track_id: int
    state: TrackState
    tlwh: np.ndarray
    score: float
    is_activated: bool
    start_frame: int
    frame_id: int
    tracklet_len: int
    template: np.ndarray | None = None


class TrackOutput(NamedTuple):
    """One reported box: ``frame`` (1-based), ``track_id`` (>= 1), ``tlwh`` float64 [4], ``score``.

    A named tuple (not a dataclass) because the tracker builds one per box per frame.
    """

    frame: int
    track_id: int
    tlwh: np.ndarray
    score: float


class TrackArrays:
    """Every live track of one tracker as parallel arrays (``n`` rows, birth order).

    - ``ids`` int64 [n], ``state`` int8 [n] (:class:`TrackState`), ``activated`` bool [n]
    - ``mean`` float64 [n, 8], ``cov`` float64 [n, 3, 4]: Kalman state (compact covariance, see
      :mod:`cstrack.tracker.kalman`)
    - ``score`` float32 [n]: score of the last matched detection
    - ``start_frame``, ``frame_id``, ``tracklet_len`` int64 [n]
    - ``template`` float32 [n, D] (L2-normalised smoothed embedding) and ``has_template`` bool [n];
      ``template`` is ``None`` until a frame with embeddings arrives
    - ``birth_tlwh`` float64 [n, 4], ``birth_score`` float32 [n]: the detection that started the track
    """

    def __init__(self) -> None:
        self.ids = np.zeros(0, np.int64)
        self.state = np.zeros(0, np.int8)
        self.activated = np.zeros(0, bool)
        self.mean = np.zeros((0, 8), np.float64)
        self.cov = np.zeros((0, 3, 4), np.float64)
        self.score = np.zeros(0, np.float32)
        self.start_frame = np.zeros(0, np.int64)
        self.frame_id = np.zeros(0, np.int64)
        self.tracklet_len = np.zeros(0, np.int64)
        self.template: np.ndarray | None = None
        self.has_template = np.zeros(0, bool)
        self.birth_tlwh = np.zeros((0, 4), np.float64)
        self.birth_score = np.zeros(0, np.float32)

    _ROW_FIELDS = (
        "ids", "state", "activated", "mean", "cov", "score", "start_frame", "frame_id",
        "tracklet_len", "has_template", "birth_tlwh", "birth_score",
    )

    def __len__(self) -> int:
        return len(self.ids)

    def ensure_template_dim(self, dim: int) -> None:
        """Allocate ``template`` (zeros for existing rows) the first time embeddings of ``dim`` arrive."""
        if self.template is None:
            self.template = np.zeros((len(self), dim), np.float32)
        elif self.template.shape[1] != dim:
            raise ValueError(f"embedding size changed from {self.template.shape[1]} to {dim}")

    def kalman(self) -> KalmanRows:
        """The Kalman columns, for the compiled steps of :mod:`cstrack.tracker.kalman`."""
        return KalmanRows(self.mean, self.cov)

    def columns(self) -> TrackColumns:
        """The bookkeeping columns, for the compiled steps below."""
        return TrackColumns(self.state, self.activated, self.frame_id, self.start_frame, self.tracklet_len, self.score)

    def tlwh(self, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """Kalman boxes of ``rows`` as tlwh float64 [k, 4]."""
        return xyah_to_tlwh_fast(self.mean[rows, :4])

    def append(
        self,
        ids: np.ndarray,
        mean: np.ndarray,
        cov: np.ndarray,
        score: np.ndarray,
        frame: int,
        activated: bool,
        tlwh: np.ndarray,
        template: np.ndarray | None,
    ) -> None:
        """Add ``k`` new tracks born at ``frame`` in state Tracked."""
        k = len(ids)
        if k == 0:
            return
        new = {
            "ids": np.asarray(ids, np.int64),
            "state": np.full(k, TrackState.TRACKED, np.int8),
            "activated": np.full(k, activated, bool),
            "mean": mean,
            "cov": cov,
            "score": np.asarray(score, np.float32),
            "start_frame": np.full(k, frame, np.int64),
            "frame_id": np.full(k, frame, np.int64),
            "tracklet_len": np.zeros(k, np.int64),
            "has_template": np.full(k, template is not None, bool),
            "birth_tlwh": np.asarray(tlwh, np.float64),
            "birth_score": np.asarray(score, np.float32),
        }
        for name, value in new.items():
            setattr(self, name, np.concatenate([getattr(self, name), value]))
        if self.template is not None:
            add = template if template is not None else np.zeros((k, self.template.shape[1]), np.float32)
            self.template = np.concatenate([self.template, add.astype(np.float32, copy=False)])

    def keep(self, mask: np.ndarray) -> None:
        """Drop every row where ``mask`` (bool [n]) is false."""
        if mask.all():
            return
        for name in self._ROW_FIELDS:
            setattr(self, name, getattr(self, name)[mask])
        if self.template is not None:
            self.template = self.template[mask]

    def snapshot(self) -> list[Track]:
        """:class:`Track` records of every row."""
        boxes = self.tlwh()
        return [
            Track(
                int(self.ids[i]), TrackState(int(self.state[i])), boxes[i], float(self.score[i]),
                bool(self.activated[i]), int(self.start_frame[i]), int(self.frame_id[i]),
                int(self.tracklet_len[i]),
                self.template[i].copy() if self.template is not None and self.has_template[i] else None,
            )
            for i in range(len(self))
        ]


@dataclass(frozen=True)
class TrackOutputs:
    """The boxes one tracker step reports, as arrays (``K`` rows).

    ``frame`` int64 [K] (the current frame, or the birth frame of a newly confirmed track when the
    tracker back-fills), ``ids`` int64 [K], ``tlwh`` float64 [K, 4], ``scores`` float32 [K].
    """

    frame: np.ndarray
    ids: np.ndarray
    tlwh: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def to_list(self) -> list[TrackOutput]:
        boxes = self.tlwh
        return [
            TrackOutput(f, i, boxes[k], s)
            for k, (f, i, s) in enumerate(zip(self.frame.tolist(), self.ids.tolist(), self.scores.tolist(), strict=True))
        ]


class TrackColumns(NamedTuple):
    """The bookkeeping columns of :class:`TrackArrays` that the kernels below write in place."""

    state: np.ndarray  # int8 [n] (TrackState)
    activated: np.ndarray  # bool [n]
    frame_id: np.ndarray  # int64 [n]
    start_frame: np.ndarray  # int64 [n]
    tracklet_len: np.ndarray  # int64 [n]
    score: np.ndarray  # float32 [n]


# ---------------------------------------------------------------------------------------------
# Compiled bookkeeping (see :mod:`cstrack.jit`), on the rows of a TrackArrays store


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
def mark_matched(cols: TrackColumns, rows: np.ndarray, det_idx: np.ndarray, det_scores: np.ndarray, frame: int) -> None:
    """The bookkeeping of a match (after its Kalman update): tracked, activated, seen at ``frame``,
    the detection's score, the tracklet length restarted for a track that was lost."""
    for t in range(rows.shape[0]):
        r, j = rows[t], det_idx[t]
        cols.tracklet_len[r] = 0 if cols.state[r] == _LOST else cols.tracklet_len[r] + 1
        cols.state[r] = _TRACKED
        cols.activated[r] = True
        cols.frame_id[r] = frame
        cols.score[r] = det_scores[j]


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
def suppress_duplicates(mean: np.ndarray, cols: TrackColumns, thresh: float) -> None:
    """Of each (tracked, lost) pair whose boxes have ``1 - IoU < thresh``, mark the one with the
    shorter history removed (the tracked one on a tie).  Pairs are found before any is removed."""
    state, frame_id, start_frame = cols.state, cols.frame_id, cols.start_frame
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
    dist = iou_distance_kernel(mean_xyxy(mean, tracked[:nt]), mean_xyxy(mean, lost[:nl]))
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
