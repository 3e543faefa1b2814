"""CLEAR-MOT and Identity scores of a result file, for tests (independent of ``cstrack.eval``).

motmetrics 1.4.0 accumulates the events; its own distance helpers call ``np.asfarray`` (gone in
NumPy 2), so the IoU distance matrices are computed here: ``1 − IoU`` (continuous areas, no +1),
NaN (= may not match) where IoU < 0.5, as the MOTChallenge devkit does.
"""

from __future__ import annotations

from pathlib import Path

import motmetrics as mm
import numpy as np

from cstrack.boxes import iou_matrix, tlwh_to_xyxy
from cstrack.data.mot import MotTable, counted_gt, read_gt, read_results


def score_tables(gt: MotTable, res: MotTable) -> dict[str, float]:
    """MOTA, IDF1, ID switches, FP, FN of ``res`` against the counted boxes of ``gt``."""
    gt = counted_gt(gt)
    acc = mm.MOTAccumulator(auto_id=False)
    g_frames, r_frames = gt.frame_slices(), res.frame_slices()
    empty = np.zeros(0, np.int64)
    for frame in sorted(set(g_frames) | set(r_frames)):
        gi = g_frames.get(frame, empty)
        ri = r_frames.get(frame, empty)
        iou = iou_matrix(tlwh_to_xyxy(gt.tlwh[gi]), tlwh_to_xyxy(res.tlwh[ri]))
        dist = np.where(iou >= 0.5, 1.0 - iou, np.nan)
        acc.update(gt.id[gi].tolist(), res.id[ri].tolist(), dist, frameid=frame)
    mh = mm.metrics.create()
    s = mh.compute(acc, metrics=["mota", "idf1", "num_switches", "num_false_positives", "num_misses"], name="x")
    row = s.loc["x"]
    return {
        "mota": float(row["mota"]),
        "idf1": float(row["idf1"]),
        "idsw": int(row["num_switches"]),
        "fp": int(row["num_false_positives"]),
        "fn": int(row["num_misses"]),
    }


def score_files(gt_path: str | Path, result_path: str | Path) -> dict[str, float]:
    return score_tables(read_gt(gt_path), read_results(result_path))
