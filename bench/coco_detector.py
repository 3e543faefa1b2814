"""Why the COCO path (``--weights coco``) draws duplicate, oversized boxes: a measurement.

Usage::

    python bench/coco_detector.py [--out bench/out/coco_detector.json] [--sizes 1088x608,576x320]

For the shipped YOLOv5n v6 COCO weights in ``cstrack-n`` this measures, on every MOT17-mini frame
(MOT17-02: 1920x1080, MOT17-05: 640x480; both never used for training) and on 40 of PETS09-S2L1's
frames 398-795:

1. **Decode and class rows**: the 6 rows cstrack-n keeps per anchor against an independent YOLOv5 v6
   ``Detect`` written here from the checkpoint's 85-channel convolutions and its own anchors
   (grid units x stride).  Both see the trunk's features, so any difference is the decode or the row
   mapping.
2. **The detection head's input**: with ``ren: ren`` (the variant's default) the COCO head sees
   ``A1 X + X`` from a *randomly initialised* REN, not the trunk's ``X`` it was trained on; with
   ``ren: none`` it sees ``X``.  The per-level relative change ``|A1 X| / |X|`` is reported.
3. **Per-frame detection quality** for each combination of head input (REN random / none), score
   (``obj * cls`` / ``obj``), NMS (Cluster-DIoU 0.6, the spec's; greedy IoU 0.45, YOLOv5's) and
   confidence threshold: boxes per frame against counted gt per frame, precision and recall at IoU
   0.5 (one-to-one Hungarian; boxes on distractor-class gt ignored, as the MOT17 server does),
   unmatched boxes that overlap a person (IoU >= 0.3: duplicates / mis-sized boxes), and the
   median height ratio of each box to its best gt.

Numbers are written to the JSON; docs/training.md quotes them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

DISTRACTORS = (2, 7, 8, 12)  # MOT17 server's distractor classes (cstrack.eval.presets)
MATCH_IOU = 0.5
NEAR_IOU = 0.3


def greedy_nms(xyxy: np.ndarray, score: np.ndarray, thres: float) -> np.ndarray:
    """Plain greedy IoU NMS (YOLOv5's torchvision.ops.nms): indices by descending score."""
    from cstrack.boxes import iou_matrix

    order = np.argsort(-score, kind="stable")
    iou = iou_matrix(xyxy[order], xyxy[order])
    keep: list[int] = []
    alive = np.ones(len(order), bool)
    for i in range(len(order)):
        if not alive[i]:
            continue
        keep.append(i)
        alive &= ~(iou[i] > thres)
        alive[i] = False
    return order[np.asarray(keep, dtype=np.int64)]


def select(pred: np.ndarray, conf: float, score_kind: str, nms: str) -> tuple[np.ndarray, np.ndarray]:
    """Decoded ``pred [N, 6]`` (net px) -> kept ``(xyxy, score)`` for one setting."""
    from cstrack.boxes import xywh_to_xyxy
    from cstrack.model.postprocess import cluster_diou_nms

    obj = pred[:, 4]
    score = obj * pred[:, 5] if score_kind == "obj*cls" else obj.copy()
    keep = (obj > conf) & (score > conf)
    xyxy, score = xywh_to_xyxy(pred[keep, :4]), score[keep]
    if len(xyxy) == 0:
        return xyxy, score
    idx = cluster_diou_nms(xyxy, score, 0.6) if nms == "cdiou0.6" else greedy_nms(xyxy, score, 0.45)
    return xyxy[idx], score[idx]


def frame_stats(det: np.ndarray, gt: np.ndarray, gt_cls: np.ndarray) -> dict[str, Any]:  # counts + height ratios
    """Match ``det`` xyxy to pedestrian gt (IoU >= 0.5, Hungarian); boxes matched to distractors drop."""
    from scipy.optimize import linear_sum_assignment

    from cstrack.boxes import iou_matrix

    distractor = np.isin(gt_cls, DISTRACTORS)
    # drop detections on distractors first (server preprocessing)
    if len(det) and distractor.any():
        iou = iou_matrix(det, gt[distractor])
        r, c = linear_sum_assignment(-iou)
        drop = r[iou[r, c] >= MATCH_IOU]
        det = np.delete(det, drop, axis=0)
    ped = gt[(gt_cls == 1) | (gt_cls < 0)]
    tp, near, ratios = 0, 0, []
    if len(det) and len(ped):
        iou = iou_matrix(det, ped)
        r, c = linear_sum_assignment(-iou)
        ok = iou[r, c] >= MATCH_IOU
        tp = int(ok.sum())
        matched = set(r[ok].tolist())
        best = iou.argmax(axis=1)
        near = sum(1 for i in range(len(det)) if i not in matched and iou[i, best[i]] >= NEAR_IOU)
        for i in range(len(det)):
            if iou[i, best[i]] > 0.1:
                hd, hg = det[i, 3] - det[i, 1], ped[best[i], 3] - ped[best[i], 1]
                ratios.append(float(hd / max(hg, 1e-6)))
    return {"dets": len(det), "gt": len(ped), "tp": tp, "near_dup": near, "h_ratios": ratios}


def load_frames(pets_test: Path, max_pets: int) -> list[dict]:
    """(name, image path, gt xyxy, gt class) of the MOT17-mini frames and sampled PETS09 held-out frames."""
    from cstrack.boxes import tlwh_to_xyxy
    from cstrack.data.mot import Sequence
    from cstrack.paths import shared_data

    out = []
    roots = [("mot17", p) for p in sorted((shared_data() / "mot17-mini" / "train").iterdir()) if p.is_dir()]
    roots.append(("pets09", pets_test))
    for group, root in roots:
        seq = Sequence.open(root)
        gt = seq.gt()
        step = max(1, seq.info.seq_length // max_pets) if group == "pets09" else 1
        for f in range(1, seq.info.seq_length + 1, step):
            # zero-marked rows are not counted; distractor classes keep their class (dropped in frame_stats)
            rows = (gt.frame == f) & ((gt.conf > 0) | np.isin(gt.cls, DISTRACTORS))
            out.append({"group": group, "seq": root.name, "frame": f, "image": seq.image_path(f),
                        "gt": tlwh_to_xyxy(gt.tlwh[rows]).astype(np.float32), "cls": gt.cls[rows].astype(int)})
    return out


def independent_yolov5(feats: list, state: dict, anchors_grid, strides) -> np.ndarray:
    """YOLOv5 v6 ``Detect`` over all 85 channels, written from the checkpoint: person rows ``[N, 6]``."""
    import torch

    rows = []
    for i, f in enumerate(feats):
        w = state[f"model.24.m.{i}.weight"].float()
        b = state[f"model.24.m.{i}.bias"].float()
        y = torch.nn.functional.conv2d(f, w, b)
        bs, _, ny, nx = y.shape
        y = y.view(bs, 3, 85, ny, nx).permute(0, 1, 3, 4, 2).sigmoid()
        yv, xv = torch.meshgrid(torch.arange(ny), torch.arange(nx), indexing="ij")
        grid = torch.stack((xv, yv), 2).view(1, 1, ny, nx, 2).float()
        ag = (anchors_grid[i] * strides[i]).view(1, 3, 1, 1, 2)
        xy = (y[..., 0:2] * 2 - 0.5 + grid) * strides[i]
        wh = (y[..., 2:4] * 2) ** 2 * ag
        rows.append(torch.cat((xy, wh, y[..., 4:5], y[..., 5:6]), -1).view(bs, -1, 6))
    return torch.cat(rows, 1)[0].numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("bench/out/coco_detector.json"))
    ap.add_argument("--sizes", default="1088x608,576x320")
    ap.add_argument("--confs", default="0.25,0.4,0.5")
    ap.add_argument("--pets-frames", type=int, default=40)
    ap.add_argument("--pets-test", type=Path, default=Path("bench/out/pets/data/PETS09-S2L1-test"),
                    help="PETS09-S2L1 frames 398-795 as a sequence (bench/train_pets.py converts it)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch

    from cstrack.cli.common import parse_size
    from cstrack.data.images import read_image
    from cstrack.data.letterbox import letterbox, to_input
    from cstrack.fsutil import atomic_write_json
    from cstrack.model import build_model
    from cstrack.model.weights import load_coco_yolov5n, safe_torch_load
    from cstrack.paths import coco_yolov5n_weights

    torch.set_num_threads(args.threads)
    t_start = time.time()
    sizes = [parse_size(s) for s in args.sizes.split(",")]
    confs = [float(c) for c in args.confs.split(",")]
    frames = load_frames(args.pets_test, args.pets_frames)
    coco_state = safe_torch_load(coco_yolov5n_weights())
    torch.manual_seed(0)
    models = {"ren_random": load_coco_yolov5n(build_model("cstrack-n")).eval(),
              "ren_none": load_coco_yolov5n(build_model("cstrack-n", ren="none")).eval()}
    det = models["ren_none"].detect
    anchors_grid = torch.tensor(coco_state["model.24.anchors"]).float() if not isinstance(
        coco_state["model.24.anchors"], torch.Tensor) else coco_state["model.24.anchors"].float()

    decode_check: dict[str, dict[str, float]] = {}
    ren_shift: dict[str, list[float]] = {}
    results = []
    for size in sizes:
        acc: dict[tuple, dict] = {}
        max_abs = {"xywh_px": 0.0, "obj": 0.0, "cls": 0.0}
        for fr in frames:
            img = read_image(fr["image"])
            lb, meta = letterbox(img, size)
            x = torch.from_numpy(to_input(lb))
            with torch.inference_mode():
                preds = {}
                for name, m in models.items():
                    _, raw = m(x)
                    preds[name] = m.decode(raw)[0].numpy()
                feats = models["ren_none"].features(x)
                ref = independent_yolov5(feats, coco_state, anchors_grid, det.strides)
                d = np.abs(ref - preds["ren_none"])
                max_abs["xywh_px"] = max(max_abs["xywh_px"], float(d[:, :4].max()))
                max_abs["obj"] = max(max_abs["obj"], float(d[:, 4].max()))
                max_abs["cls"] = max(max_abs["cls"], float(d[:, 5].max()))
                ren = models["ren_random"].ren
                for lvl, f in enumerate(models["ren_random"].features(x)):
                    f_det, _ = ren[lvl](f)
                    ren_shift.setdefault(f"{size[0]}x{size[1]}_P{lvl + 3}", []).append(
                        float((f_det - f).norm() / f.norm()))
            from cstrack.data.letterbox import boxes_to_frame

            for name, pred in preds.items():
                for score_kind in ("obj*cls", "obj"):
                    for nms in ("cdiou0.6", "iou0.45"):
                        for conf in confs:
                            xyxy, _ = select(pred, conf, score_kind, nms)
                            st = frame_stats(boxes_to_frame(xyxy, meta), fr["gt"], fr["cls"])
                            a = acc.setdefault((fr["group"], name, score_kind, nms, conf),
                                               {"frames": 0, "dets": 0, "gt": 0, "tp": 0, "near_dup": 0, "h": []})
                            a["frames"] += 1
                            for k in ("dets", "gt", "tp", "near_dup"):
                                a[k] += st[k]
                            a["h"] += st["h_ratios"]
        decode_check[f"{size[0]}x{size[1]}"] = max_abs
        for (group, name, score_kind, nms, conf), a in sorted(acc.items()):
            n = a["frames"]
            results.append({
                "size": f"{size[0]}x{size[1]}", "data": group, "head_input": name, "score": score_kind, "nms": nms,
                "conf": conf, "frames": n, "boxes_per_frame": round(a["dets"] / n, 2), "gt_per_frame": round(a["gt"] / n, 2),
                "precision": round(a["tp"] / max(a["dets"], 1), 3), "recall": round(a["tp"] / max(a["gt"], 1), 3),
                "near_dup_per_frame": round(a["near_dup"] / n, 2),
                "median_h_ratio": round(float(np.median(a["h"])), 3) if a["h"] else None,
            })
    report = {
        "command": " ".join([sys.executable, *sys.argv]),
        "decode_vs_independent_yolov5_max_abs": decode_check,
        "ren_random_rel_change_of_head_input": {k: round(float(np.mean(v)), 3) for k, v in ren_shift.items()},
        "frames": {g: sum(1 for f in frames if f["group"] == g) for g in ("mot17", "pets09")},
        "results": results,
        "seconds": round(time.time() - t_start, 1),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "torch": torch.__version__},
    }
    atomic_write_json(args.out, report)
    print(json.dumps({k: report[k] for k in ("decode_vs_independent_yolov5_max_abs", "ren_random_rel_change_of_head_input")}, indent=1))
    for r in results:
        print(f"{r['size']:>8} {r['data']:<6} {r['head_input']:<10} {r['score']:<7} {r['nms']:<8} {r['conf']:.2f} "
              f"boxes {r['boxes_per_frame']:6.2f} gt {r['gt_per_frame']:6.2f} P {r['precision']:.3f} R {r['recall']:.3f} "
              f"dup {r['near_dup_per_frame']:5.2f} h {r['median_h_ratio']}")


if __name__ == "__main__":
    main()
