"""Detection recall of a checkpoint on MOT17-mini: the ceiling of MOTA with perfect tracking.

Usage::

    python bench/detector_recall.py [--weights weights/cstrack-n_cpu.pt] [--size 1088x608] \
        [--out bench/out/detector_recall.json]

Every counted pedestrian box of the MOT17 ground truth (class 1, flag 1) is matched to the
checkpoint's best-overlapping detection (IoU >= 0.5, eager path, NMS 0.6, score floor 0.05); for
each score threshold the share of boxes found is the recall, overall, for boxes more than half
visible and for boxes taller than 100 px.  MOTA = 1 - (FN + FP + IDSW) / GT can never exceed the
recall at the threshold used, so ``mota_ceiling`` (recall over both sequences) bounds any tracker
on these detections.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np

THRESHOLDS = (0.5, 0.4, 0.3, 0.2, 0.1)


def best_scores(weights: str, size: tuple[int, int], seq: Path) -> np.ndarray:
    """Rows ``(visibility, height, score of the matched detection or 0)`` per counted gt box."""
    from cstrack.boxes import iou_matrix
    from cstrack.data.images import read_image
    from cstrack.model.detector import build_detector
    from cstrack.model.postprocess import PostprocessConfig

    det = build_detector("cstrack-n", weights, size, "eager", PostprocessConfig(conf_thres=0.05, nms_thres=0.6))
    gt = np.loadtxt(seq / "gt" / "gt.txt", delimiter=",", ndmin=2)
    gt = gt[(gt[:, 6] == 1) & (gt[:, 7] == 1)]
    rows = []
    for f in sorted((seq / "img1").iterdir()):
        prep = det.preprocess(read_image(f))
        d = det.postprocess(det.forward(prep), prep)
        g = gt[gt[:, 0] == int(f.stem)]
        gx = np.c_[g[:, 2], g[:, 3], g[:, 2] + g[:, 4], g[:, 3] + g[:, 5]]
        iou = iou_matrix(gx, d.xyxy) if len(d) else np.zeros((len(g), 0))
        for i in range(len(g)):
            hit = iou.shape[1] and iou[i].max() >= 0.5
            rows.append((g[i, 8], g[i, 5], float(d.scores[iou[i].argmax()]) if hit else 0.0))
    return np.array(rows, dtype=np.float64).reshape(-1, 3)


def recall(rows: np.ndarray) -> dict[str, dict[str, float]]:
    subsets = {"all": rows, "visible_over_half": rows[rows[:, 0] > 0.5], "taller_than_100px": rows[rows[:, 1] > 100]}
    return {name: {"n": len(r), **{str(t): float(np.mean(r[:, 2] >= t)) if len(r) else float("nan")
                                   for t in THRESHOLDS}} for name, r in subsets.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default="weights/cstrack-n_cpu.pt")
    ap.add_argument("--size", default="1088x608")
    ap.add_argument("--out", type=Path, default=Path("bench/out/detector_recall.json"))
    args = ap.parse_args()
    from cstrack.fsutil import atomic_write_json
    from cstrack.paths import shared_data

    size = tuple(int(v) for v in args.size.lower().split("x"))
    root = shared_data() / "mot17-mini" / "train"
    per, every = {}, []
    for seq in sorted(p for p in root.iterdir() if (p / "seqinfo.ini").is_file()):
        rows = best_scores(args.weights, size, seq)  # type: ignore[arg-type]
        per[seq.name] = recall(rows)
        every.append(rows)
    both = recall(np.concatenate(every))
    report = {"command": shlex.join([sys.executable, *sys.argv]), "weights": args.weights, "input_size": list(size),
              "per_sequence": per, "both": both, "mota_ceiling": {t: v for t, v in both["all"].items() if t != "n"}}
    atomic_write_json(args.out, report)
    print(json.dumps(report["mota_ceiling"], indent=1))


if __name__ == "__main__":
    main()
