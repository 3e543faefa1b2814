"""Per-frame event log with ``motmetrics``: where did IDs switch, which boxes were missed.

``motmetrics.MOTAccumulator`` is fed the IoU distance matrices computed by our preprocessing
(``1 - IoU``, "do not pair" above 0.5 as ``motmetrics.distances.iou_matrix(max_iou=0.5)`` would,
whose own helpers call ``np.asfarray`` and break on NumPy 2).  The gt rows and result rows are the
ones the preset keeps, so the log describes exactly what the metrics scored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from cstrack.eval.prepare import MATCH_IOU, PreparedSequence

if TYPE_CHECKING:
    import motmetrics

# One row per gt object and per result box in every frame: MATCH or SWITCH (a pair), MISS (gt
# only), FP (result only).  motmetrics' extra TRANSFER/ASCEND/MIGRATE annotations are left out.
EVENT_TYPES: tuple[str, ...] = ("MATCH", "SWITCH", "MISS", "FP")
MAX_DISTANCE = 1.0 - MATCH_IOU


def iou_distances(iou: np.ndarray) -> np.ndarray:
    """``1 - IoU`` with NaN ("do not pair") where the distance exceeds ``1 - 0.5``."""
    dist = 1.0 - np.asarray(iou, dtype=np.float64)
    return np.where(dist > MAX_DISTANCE, np.nan, dist)


def accumulate(seq: PreparedSequence) -> motmetrics.MOTAccumulator:
    """A ``MOTAccumulator`` over every frame of ``seq`` (frame ids 1-based, file ids)."""
    import motmetrics

    acc = motmetrics.MOTAccumulator(auto_id=False)
    sims = seq.data["similarity_scores"]
    for t in range(seq.num_frames):
        acc.update(seq.gt_ids_orig[t], seq.tracker_ids_orig[t], iou_distances(sims[t]), frameid=t + 1)
    return acc


def event_table(acc: Any, sequence: str) -> pd.DataFrame:
    """The MATCH/SWITCH/MISS/FP events of ``acc`` as a flat frame.

    Columns: ``sequence`` (str), ``frame`` (int32), ``event`` (str), ``gt_id`` and ``track_id``
    (nullable Int64), ``iou`` (float64, NaN for MISS/FP); rows in motmetrics' order.
    """
    ev = acc.mot_events
    ev = ev[ev["Type"].isin(EVENT_TYPES)]
    frames = ev.index.get_level_values("FrameId").to_numpy(dtype=np.int64)
    return pd.DataFrame(
        {
            "sequence": pd.Series([sequence] * len(ev), dtype="string"),
            "frame": frames.astype(np.int32),
            "event": pd.Series(ev["Type"].astype(str).to_numpy(), dtype="string"),
            "gt_id": pd.array(ev["OId"].to_numpy(dtype=np.float64), dtype="Float64").astype("Int64"),
            "track_id": pd.array(ev["HId"].to_numpy(dtype=np.float64), dtype="Float64").astype("Int64"),
            "iou": 1.0 - ev["D"].to_numpy(dtype=np.float64),
        }
    )


def event_log(seq: PreparedSequence) -> pd.DataFrame:
    """Per-frame events of one prepared sequence (see :func:`event_table` for the columns)."""
    return event_table(accumulate(seq), seq.name)
