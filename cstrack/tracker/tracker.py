"""The JDE association cascade (spec §10.3), vectorised over tracks.

One :class:`Tracker` follows one sequence.  Each :meth:`Tracker.update` consumes the detections of
the next frame (:class:`cstrack.detection.Detections`, xyxy frame pixels, optional L2-normalised
embeddings) and returns the boxes to report.  Per frame ``t``:

1. Tracked tracks split into confirmed and unconfirmed (born last frame); ``pool`` = confirmed ∪
   lost, predicted by the Kalman filter (lost tracks with their height velocity zeroed).
2. Stage 1, pool vs detections.  With embeddings: cosine distance to the track template, gated by
   the Mahalanobis distance and fused with it (``appearance_thresh``).  Without embeddings (ground
   truth, public boxes without a model): ``1 − IoU`` against the prediction, Mahalanobis-gated
   (``motion_only_thresh``); lost tracks take part, so they can come back without appearance.
3. Stage 2, remaining *tracked* pool tracks vs remaining detections by ``1 − IoU``
   (``iou_thresh``); tracked tracks still unmatched become lost.
4. Stage 3, unconfirmed tracks by ``1 − IoU`` (``unconfirmed_thresh``); matched ones are
   confirmed, the others removed.
5. Births from unmatched detections with ``score >= det_thresh`` (IDs from this tracker's counter,
   starting at 1); deaths of tracks lost for more than ``max_time_lost`` frames; duplicate
   suppression between tracked and lost tracks.

Removed tracks are dropped at the end of the step (nothing accumulates over a sequence).

The control flow is here; the per-row arithmetic runs in compiled kernels that sit beside the
array functions they compute (Kalman steps in :mod:`~cstrack.tracker.kalman`, costs and assignment
in :mod:`~cstrack.tracker.matching`, bookkeeping in :mod:`~cstrack.tracker.track`) and read and
write the track store's columns in place through named records.
"""

from __future__ import annotations

import numpy as np

from cstrack.detection import Detections
from cstrack.tracker import kalman, matching, track
from cstrack.tracker.config import TrackerConfig
from cstrack.tracker.matching import iou_distance, linear_assignment
from cstrack.tracker.track import (
    Track,
    TrackArrays,
    TrackOutput,
    TrackOutputs,
    TrackState,
    xyah_to_tlwh_fast,
)

_TRACKED = np.int8(TrackState.TRACKED)
_LOST = np.int8(TrackState.LOST)
_REMOVED = np.int8(TrackState.REMOVED)


class Tracker:
    """JDE-style multi-object tracker for one sequence.

    ``frame_rate`` (frames per second, from ``seqinfo.ini``) scales the lost-track buffer.
    """

    def __init__(self, config: TrackerConfig | None = None, frame_rate: float = 30.0) -> None:
        self.config = config if config is not None else TrackerConfig()
        self.frame_rate = float(frame_rate)
        self.max_time_lost = self.config.max_time_lost(self.frame_rate)
        self._noise = kalman.kernel_noise(self.config.kalman)
        self._tracks = TrackArrays()
        self._frame = 0
        self._next_id = 1

    @property
    def frame_id(self) -> int:
        """Number of frames processed so far (the current frame after an update)."""
        return self._frame

    @property
    def next_id(self) -> int:
        """The ID the next born track will get."""
        return self._next_id

    def tracks(self) -> list[Track]:
        """Snapshots of every live (new, tracked or lost) track."""
        return self._tracks.snapshot()

    def update(self, dets: Detections) -> list[TrackOutput]:
        """Advance one frame; see :meth:`update_arrays` (same result as a list of records)."""
        return self.update_arrays(dets).to_list()

    def update_arrays(self, dets: Detections) -> TrackOutputs:
        """Advance one frame with ``dets`` and return the boxes to report.

        Rows are the confirmed tracked tracks at this frame (Kalman boxes, tlwh), preceded — with
        ``new_track_report="backfill"`` — by the birth boxes of tracks confirmed at this frame
        (their ``frame`` is the birth frame).  Detections with a non-positive or non-finite width
        or height are ignored.
        """
        cfg = self.config
        kp = cfg.kalman
        noise = self._noise
        self._frame += 1
        t = self._frame
        T = self._tracks

        valid, xyxy, xyah = kalman.measurements(np.ascontiguousarray(dets.xyxy, dtype=np.float32))
        scores = dets.scores if len(valid) == len(dets) else dets.scores[valid]
        emb = None
        if cfg.use_appearance and dets.embeddings is not None:
            emb = track.normalised_rows(np.asarray(dets.embeddings, dtype=np.float32), valid)
            T.ensure_template_dim(emb.shape[1])

        unconfirmed, pool = track.partition(T.state, T.activated)

        # Step 1: predict the pool (not the unconfirmed tracks).
        kalman.predict_rows(T.kalman(), noise, pool, T.state, int(_TRACKED))

        # Matches of the three stages touch disjoint tracks and detections, and each stage reads
        # only tracks no earlier stage matched, so all corrections are applied once at the end.
        matched_rows: list[np.ndarray] = []
        matched_dets: list[np.ndarray] = []
        free = np.arange(len(xyxy))

        # Stage 1: appearance + motion, or motion only.
        rest = pool
        if pool.size and free.size:
            if emb is not None and T.template is not None:
                cost = matching.appearance_cost(
                    T.template[pool] @ emb.T, T.has_template, T.kalman(), noise, pool, xyah,
                    cfg.gating_thresh, cfg.motion_weight,
                )
                thresh = cfg.appearance_thresh
            else:
                cost = iou_distance(kalman.mean_xyxy(T.mean, pool), xyxy)
                if cfg.motion_only_gating:
                    gd = kalman.gating_rows(T.kalman(), noise, pool, xyah)
                    cost[gd > cfg.gating_thresh] = np.inf
                thresh = cfg.motion_only_thresh
            matches, u_rows, u_cols = linear_assignment(cost, thresh)
            matched_rows.append(pool[matches[:, 0]])
            matched_dets.append(matches[:, 1])
            rest, free = pool[u_rows], u_cols

        # Stage 2: IoU on the remaining tracked (not lost) tracks; the unmatched ones become lost.
        state = T.state
        rest_tracked = rest[state[rest] == _TRACKED]
        newly_lost = rest_tracked
        if rest_tracked.size and free.size:
            cost = iou_distance(kalman.mean_xyxy(T.mean, rest_tracked), xyxy[free])
            matches, u_rows, u_cols = linear_assignment(cost, cfg.iou_thresh)
            matched_rows.append(rest_tracked[matches[:, 0]])
            matched_dets.append(free[matches[:, 1]])
            newly_lost, free = rest_tracked[u_rows], free[u_cols]

        # Stage 3: unconfirmed tracks by IoU; the unmatched ones are removed.
        confirmed_now = unconfirmed[:0]
        dropped = unconfirmed
        if unconfirmed.size and free.size:
            cost = iou_distance(kalman.mean_xyxy(T.mean, unconfirmed), xyxy[free])
            matches, u_rows, u_cols = linear_assignment(cost, cfg.unconfirmed_thresh)
            confirmed_now = unconfirmed[matches[:, 0]]
            matched_rows.append(confirmed_now)
            matched_dets.append(free[matches[:, 1]])
            dropped, free = unconfirmed[u_rows], free[u_cols]

        if matched_rows:
            self._correct(np.concatenate(matched_rows), np.concatenate(matched_dets), xyah, scores, emb, t)
        state[newly_lost] = _LOST
        state[dropped] = _REMOVED

        # Births.
        born = free[scores[free] >= cfg.det_thresh]
        if born.size:
            mean, cov = kalman.initiate(xyah[born], kp)
            ids = np.arange(self._next_id, self._next_id + born.size, dtype=np.int64)
            self._next_id += born.size
            T.append(
                ids, mean, cov, scores[born], t,
                activated=cfg.new_track_report == "immediate",
                tlwh=xyah_to_tlwh_fast(xyah[born]),
                template=emb[born] if emb is not None else None,
            )
            state = T.state

        # Deaths.
        is_lost = state == _LOST
        state[is_lost & (t - T.frame_id > self.max_time_lost)] = _REMOVED

        # Duplicate suppression: of a (tracked, lost) pair that overlaps, keep the longer history.
        track.suppress_duplicates(T.mean, T.columns(), cfg.duplicate_thresh)

        out = self._outputs(t, confirmed_now)
        T.keep(state != _REMOVED)
        return out

    def _correct(
        self,
        rows: np.ndarray,
        det_idx: np.ndarray,
        xyah: np.ndarray,
        scores: np.ndarray,
        emb: np.ndarray | None,
        t: int,
    ) -> None:
        """Correct tracks ``rows`` with detections ``det_idx``: Kalman update, template EMA, state."""
        if rows.size == 0:
            return
        T = self._tracks
        kalman.update_rows(T.kalman(), self._noise, rows, det_idx, xyah)
        track.mark_matched(T.columns(), rows, det_idx, scores, t)
        if emb is not None and T.template is not None:
            track.update_templates(
                T.template, T.has_template, rows, det_idx, emb, np.float32(self.config.template_momentum)
            )

    def _outputs(self, t: int, confirmed_now: np.ndarray) -> TrackOutputs:
        T = self._tracks
        cfg = self.config
        rows = np.flatnonzero((T.state == _TRACKED) & T.activated)
        frame = np.full(rows.size, t, np.int64)
        ids = T.ids[rows]
        boxes = T.tlwh(rows)
        scores = T.score[rows]
        if cfg.new_track_report == "backfill" and confirmed_now.size:
            back = confirmed_now[T.state[confirmed_now] == _TRACKED]
            frame = np.concatenate([T.start_frame[back], frame])
            ids = np.concatenate([T.ids[back], ids])
            boxes = np.concatenate([T.birth_tlwh[back], boxes])
            scores = np.concatenate([T.birth_score[back], scores])
        if cfg.output_filter is not None:
            keep = cfg.output_filter.keep(boxes)
            frame, ids, boxes, scores = frame[keep], ids[keep], boxes[keep], scores[keep]
        return TrackOutputs(frame, ids, boxes, scores.astype(np.float32, copy=False))


def warm_up() -> None:
    """Compile (or load from numba's cache) the tracker's kernels for the argument types the
    pipeline passes: a few synthetic frames with births, confirmations, a lost track and
    overlapping candidates, with and without embeddings (:mod:`cstrack.precompile`)."""
    rng = np.random.default_rng(0)
    boxes = np.array([[10, 10, 50, 110], [200, 20, 240, 120], [60, 10, 100, 110], [62, 12, 102, 112]], np.float32)
    emb = rng.standard_normal((4, 16)).astype(np.float32)
    for with_emb in (True, False):
        tracker = Tracker(frame_rate=30.0)
        for t in range(8):
            keep = slice(None) if t % 4 else slice(0, 3)
            n = len(boxes[keep])
            tracker.update_arrays(Detections(boxes[keep] + t, np.full(n, 0.9, np.float32), emb[keep] if with_emb else None))
