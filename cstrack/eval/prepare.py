"""Server preprocessing: turn validated tables into the per-frame input of TrackEval's metrics.

This reproduces ``trackeval.datasets.MotChallenge2DBox.get_preprocessed_seq_data`` (TrackEval
1.3.0) on tables read once by :mod:`cstrack.eval.inputs`, without its CSV reader and per-frame
copies.  Per frame ``t`` (rows kept in file order, as TrackEval does):

1. similarity = box IoU of every gt row against every result row, computed for all frames at
   once with exactly the element-wise operations of TrackEval's ``_calculate_box_ious`` (tlwh),
   so the values are bit-identical (``tests/eval/test_prepare.py`` checks it);
2. presets with classes: Hungarian matching on IoU >= 0.5 and removal of the result boxes matched
   to a distractor-class gt box (skipped when the frame has no distractor: nothing to remove);
3. gt kept where ``int(flag) != 0`` (zero-marked rows ignored) and, with classes, class 1;
4. ids relabelled to ``0..n-1`` over the sequence (sorted original ids), as TrackEval does.

The original ids are kept beside the relabelled ones for the per-frame event log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from cstrack.eval.inputs import LoadedSequence
from cstrack.eval.presets import PEDESTRIAN, Preset

_EPS = np.finfo("float").eps
# IoU needed for a gt/result pair to count as a match (TrackEval's preprocessing and CLEAR).
MATCH_IOU = 0.5



@dataclass
class PreparedSequence:
    """One sequence ready for the metrics.

    ``data`` is TrackEval's per-sequence dict: ``gt_ids``/``tracker_ids`` (relabelled int arrays
    per frame), ``gt_dets``/``tracker_dets`` (tlwh ``[n, 4]`` per frame), ``similarity_scores``
    (IoU ``[n_gt, n_tracker]`` per frame), ``tracker_confidences`` and the ``num_*`` counts.
    ``gt_ids_orig``/``tracker_ids_orig`` hold the file ids of the same rows.
    """

    name: str
    preset: str
    data: dict[str, Any]
    gt_ids_orig: list[np.ndarray] = field(repr=False)
    tracker_ids_orig: list[np.ndarray] = field(repr=False)
    missing_result: bool = False

    @property
    def num_frames(self) -> int:
        return int(self.data["num_timesteps"])

    @property
    def cost(self) -> int:
        """Rough work estimate (for scheduling): gt boxes plus result boxes."""
        return int(self.data["num_gt_dets"]) + int(self.data["num_tracker_dets"])


def frame_bounds(frames: np.ndarray, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """``(order, starts)``: rows of frame ``t`` (1-based) are ``order[starts[t-1]:starts[t]]``,
    in file order (stable sort)."""
    order = np.argsort(frames, kind="stable")
    starts = np.searchsorted(frames[order], np.arange(1, num_frames + 2), side="left")
    return order, starts


def frame_ious(
    gt_tlwh: np.ndarray,
    gt_bounds: tuple[np.ndarray, np.ndarray],
    res_tlwh: np.ndarray,
    res_bounds: tuple[np.ndarray, np.ndarray],
    num_frames: int,
) -> list[np.ndarray]:
    """IoU ``[n_gt_t, n_res_t]`` of each frame's gt rows (tlwh ``[N, 4]``) against its result rows
    (tlwh ``[M, 4]``), rows ordered as ``frame_bounds`` gives them.

    Same arithmetic, element by element, as ``_BaseDataset._calculate_box_ious(..., 'xywh')``:
    corners ``x + w``, intersection of clipped overlaps, union ``area1 + area2 - inter``, zero IoU
    for degenerate boxes or unions.
    """
    g_order, g_starts = gt_bounds
    r_order, r_starts = res_bounds
    a, b = _corners(gt_tlwh), _corners(res_tlwh)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    out: list[np.ndarray] = []
    for t in range(num_frames):
        gi = g_order[g_starts[t]:g_starts[t + 1]]
        ri = r_order[r_starts[t]:r_starts[t + 1]]
        if len(gi) == 0 or len(ri) == 0:
            out.append(np.zeros((len(gi), len(ri))))
            continue
        ga, rb = a[gi][:, None, :], b[ri][None, :, :]
        inter = np.maximum(np.minimum(ga[..., 2], rb[..., 2]) - np.maximum(ga[..., 0], rb[..., 0]), 0) * (
            np.maximum(np.minimum(ga[..., 3], rb[..., 3]) - np.maximum(ga[..., 1], rb[..., 1]), 0)
        )
        a1, a2 = area_a[gi], area_b[ri]
        union = a1[:, None] + a2[None, :] - inter
        inter[a1 <= 0 + _EPS, :] = 0
        inter[:, a2 <= 0 + _EPS] = 0
        inter[union <= 0 + _EPS] = 0
        union[union <= 0 + _EPS] = 1
        out.append(inter / union)
    return out


def _corners(tlwh: np.ndarray) -> np.ndarray:
    """``[N, 4]`` (x0, y0, x0 + w, y0 + h), as TrackEval converts ``xywh`` boxes."""
    out = np.array(tlwh, dtype=np.float64, copy=True).reshape(-1, 4)
    out[:, 2] = out[:, 0] + out[:, 2]
    out[:, 3] = out[:, 1] + out[:, 3]
    return out


def _relabel(per_frame: list[np.ndarray]) -> tuple[list[np.ndarray], int]:
    non_empty = [a for a in per_frame if len(a)]
    if not non_empty:
        return [a.astype(int) for a in per_frame], 0
    unique = np.unique(np.concatenate(non_empty))
    return [np.searchsorted(unique, a).astype(int) for a in per_frame], len(unique)


def prepare_sequence(seq: LoadedSequence, preset: Preset) -> PreparedSequence:
    """Apply ``preset``'s server preprocessing to one validated sequence."""
    n_frames = seq.seq_length
    gt, res = seq.gt, seq.result
    g_order, g_starts = frame_bounds(gt.frame, n_frames)
    r_order, r_starts = frame_bounds(res.frame, n_frames)
    all_sims = frame_ious(gt.tlwh, (g_order, g_starts), res.tlwh, (r_order, r_starts), n_frames)
    gt_keep = np.trunc(gt.conf) != 0
    if preset.class_preproc:
        gt_cls = seq.gt_cls if seq.gt_cls is not None else np.full(len(gt), PEDESTRIAN)
        gt_keep &= gt_cls == PEDESTRIAN
        gt_distractor = np.isin(gt_cls, preset.distractor_classes)

    gt_ids: list[np.ndarray] = []
    gt_dets: list[np.ndarray] = []
    tr_ids: list[np.ndarray] = []
    tr_dets: list[np.ndarray] = []
    tr_conf: list[np.ndarray] = []
    sims: list[np.ndarray] = []
    for t in range(n_frames):
        gi = g_order[g_starts[t]:g_starts[t + 1]]
        ri = r_order[r_starts[t]:r_starts[t + 1]]
        sim = all_sims[t]
        if preset.class_preproc and len(gi) and len(ri) and gt_distractor[gi].any():
            scores = sim.copy()
            scores[scores < MATCH_IOU - _EPS] = 0
            rows, cols = linear_sum_assignment(-scores)
            matched = scores[rows, cols] > 0 + _EPS
            rows, cols = rows[matched], cols[matched]
            remove = cols[gt_distractor[gi][rows]]
            if len(remove):
                keep_r = np.ones(len(ri), bool)
                keep_r[remove] = False
                ri = ri[keep_r]
                sim = sim[:, keep_r]
        keep_g = gt_keep[gi]
        gi = gi[keep_g]
        gt_ids.append(gt.id[gi])
        gt_dets.append(gt.tlwh[gi])
        tr_ids.append(res.id[ri])
        tr_dets.append(res.tlwh[ri])
        tr_conf.append(res.conf[ri])
        sims.append(sim[keep_g])

    gt_rel, n_gt_ids = _relabel(gt_ids)
    tr_rel, n_tr_ids = _relabel(tr_ids)
    data = {
        "gt_ids": gt_rel,
        "tracker_ids": tr_rel,
        "gt_dets": gt_dets,
        "tracker_dets": tr_dets,
        "tracker_confidences": tr_conf,
        "similarity_scores": sims,
        "num_tracker_dets": int(sum(len(a) for a in tr_ids)),
        "num_gt_dets": int(sum(len(a) for a in gt_ids)),
        "num_tracker_ids": n_tr_ids,
        "num_gt_ids": n_gt_ids,
        "num_timesteps": n_frames,
        "seq": seq.name,
    }
    return PreparedSequence(seq.name, preset.name, data, gt_ids, tr_ids, seq.missing_result)
