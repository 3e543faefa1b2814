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
