"""Batch size and precision on tracking runs: fps, the boxes against fp32 batch 1, MOTA/IDF1.

Usage: python bench/batch_precision.py --data DATA_ROOT [--device cpu|cuda] [--path eager|fast]
           [--batches 1 2 4] [--precisions fp32 bf16] [--frames N] [--out bench/out/batch_precision.json]

DATA_ROOT holds ``pets09-s2l1/images/train/PETS09-S2L1`` as ``cstrack data prepare pets09-s2l1 --root
DATA_ROOT`` writes it.  Every configuration tracks the sequence (or its first ``--frames`` frames)
with the shipped cstrack-n checkpoint at its recorded size (1088x608) and tracker preset:

- the reference: fp32, batch 1, the ordinary detector and frame reader (``cstrack track``'s loop);
- each other (precision, batch): :class:`cstrack.infer.batch.BatchedDetector` (``--device cuda``:
  the model on the GPU, decode + NMS on the device).

Recorded per configuration: fps over the frame loop, stage ms, whether the result rows (frame, id)
equal the reference's, the largest box difference (px) over the rows both have, and, on the
frames tracked, MOTA / IDF1 / HOTA / IDSW (mot15 preset).  Timings taken while other work shares the
cores say so in ``load_avg_1min_end``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

SEQ = "PETS09-S2L1"


def pets_sequence(data_root: Path) -> Path:
    seq = data_root / "pets09-s2l1" / "images" / "train" / SEQ
    if not (seq / "seqinfo.ini").is_file():
        raise FileNotFoundError(f"{seq}: not prepared (cstrack data prepare pets09-s2l1 --root {data_root})")
    return seq


def truncated(seq: Path, frames: int, root: Path) -> Path:
    """``seq`` limited to its first ``frames`` frames (images linked, gt filtered), under ``root``."""
    from cstrack.data.mot import SeqInfo, read_seqinfo, write_seqinfo

    info = read_seqinfo(seq)
    if frames >= info.seq_length:
        return seq
    out = root / SEQ
    (out / "img1").mkdir(parents=True, exist_ok=True)
    (out / "gt").mkdir(exist_ok=True)
    for k in range(1, frames + 1):
        src = seq / info.im_dir / f"{k:06d}{info.im_ext}"
        dst = out / "img1" / src.name
        if not dst.exists():
            os.symlink(src, dst)
    rows = [r for r in (seq / "gt" / "gt.txt").read_text().splitlines() if r and int(r.split(",")[0]) <= frames]
    (out / "gt" / "gt.txt").write_text("\n".join(rows) + "\n")
    write_seqinfo(out, SeqInfo(SEQ, info.frame_rate, frames, info.im_width, info.im_height, im_ext=info.im_ext))
    return out


def compare(got: Any, ref: Any) -> dict[str, Any]:
    """Rows (frame, id) of two result tables and the largest tlwh difference over the common rows."""
    a = {(int(f), int(i)): k for k, (f, i) in enumerate(zip(ref.frame, ref.id, strict=True))}
    b = {(int(f), int(i)): k for k, (f, i) in enumerate(zip(got.frame, got.id, strict=True))}
    common = sorted(set(a) & set(b))
    diff = max((float(np.abs(got.tlwh[b[key]] - ref.tlwh[a[key]]).max()) for key in common), default=0.0)
    return {"same_rows": len(common) == len(a) == len(b), "rows": len(b), "rows_reference": len(a),
            "rows_only_here": len(set(b) - set(a)), "rows_only_reference": len(set(a) - set(b)),
            "max_box_diff_px": diff}


def track_configs(seq: Path, out_root: Path, configs: list[tuple[str, int]], *, device: str = "cpu", path: str = "eager",
                  evaluate_metrics: bool = True, log: Any = print) -> dict[str, Any]:
    """Track ``seq`` once per ``(precision, batch)`` of ``configs`` (the first is the reference and must
    be ``("fp32", 1)``) and compare each with the reference (see the module docstring)."""
    import torch

    from cstrack.data.mot import read_results
    from cstrack.eval import evaluate
    from cstrack.infer import build_optimised_detector
    from cstrack.infer.batch import BatchedDetector, forward_batches
    from cstrack.model.detector import ModelDetector, load_model
    from cstrack.model.inference_settings import settings_for_weights
    from cstrack.paths import shipped_weights
    from cstrack.run.frames import prefetch_inputs, prefetched_frames, read_frames
    from cstrack.run.sequence import track_sequence
    from cstrack.tracker import preset

    if configs[0] != ("fp32", 1):
        raise ValueError("the first configuration is the reference: fp32, batch 1")
    weights = shipped_weights()
    settings = settings_for_weights(weights)
    post = settings.postprocess_config()
    model = load_model("cstrack-n", weights)
    if path == "eager":
        inner: Any = ModelDetector(model, settings.input_size, post, device=device)
    else:
        inner = build_optimised_detector(model, settings.input_size, path, post)
    tracker = preset(settings.tracker_preset)
    runs: dict[str, Any] = {}
    ref_table = None
    for precision, batch in configs:
        name = f"{precision}_b{batch}"
        out_dir = out_root / name
        if (precision, batch) == ("fp32", 1):
            det: Any = inner
            reader: Any = prefetched_frames(2)
        else:
            det = BatchedDetector(inner, batch, precision)

            def reader(s: Any, d: Any) -> Any:
                return forward_batches(prefetch_inputs(read_frames(s, d), d, 2), d)

        if device.startswith("cuda"):
            torch.cuda.synchronize()
        run = track_sequence(seq, out_dir, "private", tracker, det, frame_reader=reader)
        table = read_results(run.result_path)
        rec: dict[str, Any] = {"precision": precision, "batch": batch, "frames": run.frames, "fps": run.fps,
                               "ms": run.ms, "boxes": run.num_boxes, "tracks": run.num_tracks}
        if ref_table is None:
            ref_table = table
        else:
            rec["vs_fp32_b1"] = compare(table, ref_table)
        if evaluate_metrics:
            m = evaluate(seq.parent, out_dir, [SEQ], "mot15").combined
            rec.update({k: m[k] for k in ("MOTA", "IDF1", "HOTA", "IDSW")})
        runs[name] = rec
        log(f"{name}: {run.fps:.2f} fps" + (f", MOTA {rec['MOTA']:.4f} IDF1 {rec['IDF1']:.4f}" if evaluate_metrics else "")
            + (f", max box diff {rec['vs_fp32_b1']['max_box_diff_px']:.4g} px, same rows {rec['vs_fp32_b1']['same_rows']}"
               if "vs_fp32_b1" in rec else ""))
    return {"sequence": SEQ, "input_size": list(settings.input_size), "weights": str(weights), "path": path,
            "device": device, "runs": runs}


def forward_timing(data_root: Path, path: str, batches: list[int], rounds: int, frames_per_round: int,
                   precision: str = "fp32") -> dict[str, Any]:
    """Per-frame forward ms of the shipped checkpoint at each batch size, on the CPU, the batch sizes
    interleaved round by round (so that a change of load on a shared machine hits each alike); the
    median over rounds."""
    import torch

    from cstrack.data.images import read_image
    from cstrack.infer import build_optimised_detector
    from cstrack.infer.batch import BatchedDetector
    from cstrack.model.detector import ModelDetector, load_model
    from cstrack.model.inference_settings import settings_for_weights
    from cstrack.paths import shipped_weights

    weights = shipped_weights()
    settings = settings_for_weights(weights)
    model = load_model("cstrack-n", weights)
    inner: Any = (ModelDetector(model, settings.input_size) if path == "eager"
                  else build_optimised_detector(model, settings.input_size, path))
    seq = pets_sequence(data_root)
    imgs = [read_image(seq / "img1" / f"{k:06d}.jpg") for k in range(1, frames_per_round + 1)]
    dets = {b: BatchedDetector(inner, b, precision) for b in batches}
    preps = {b: [d.preprocess(im) for im in imgs] for b, d in dets.items()}
    for b, d in dets.items():  # warm-up
        d.forward_batch(preps[b][:b])
    ms: dict[int, list[float]] = {b: [] for b in batches}
    for _ in range(rounds):
        for b, d in dets.items():
            t0 = time.perf_counter()
            for k in range(0, frames_per_round - frames_per_round % b, b):
                d.forward_batch(preps[b][k:k + b])
            ms[b].append(1000 * (time.perf_counter() - t0) / (frames_per_round - frames_per_round % b))
    return {"path": path, "precision": precision, "input_size": list(settings.input_size), "threads": torch.get_num_threads(),
            "rounds": rounds, "frames_per_round": frames_per_round,
            "forward_ms_per_frame_median": {str(b): float(np.median(v)) for b, v in ms.items()},
            "forward_ms_per_frame_all": {str(b): v for b, v in ms.items()}}


def detection_diff(data_root: Path, precision: str, frames: int, path: str = "eager") -> dict[str, Any]:
    """The detections of ``frames`` PETS09 frames in ``precision`` against fp32 (batch 1 both): boxes
    matched one to one by IoU >= 0.5 (greedy, highest first); the coordinate differences of the
    matched pairs (px) and the boxes left unmatched on either side."""
    from cstrack.boxes import iou_matrix
    from cstrack.data.images import read_image
    from cstrack.infer import build_optimised_detector
    from cstrack.infer.batch import BatchedDetector
    from cstrack.model.detector import ModelDetector, load_model
    from cstrack.model.inference_settings import settings_for_weights
    from cstrack.paths import shipped_weights

    weights = shipped_weights()
    settings = settings_for_weights(weights)
    post = settings.postprocess_config()
    model = load_model("cstrack-n", weights)
    ref: Any = (ModelDetector(model, settings.input_size, post) if path == "eager"
                else build_optimised_detector(model, settings.input_size, path, post))
    half = BatchedDetector(ref, 1, precision)
    seq = pets_sequence(data_root)
    diffs: list[float] = []
    unmatched = [0, 0]
    total = [0, 0]
    for k in range(1, frames + 1):
        img = read_image(seq / "img1" / f"{k:06d}.jpg")
        a, b = (d.postprocess(d.forward(p), p) for d in (ref, half) for p in [d.preprocess(img)])
        total[0] += len(a)
        total[1] += len(b)
        iou = iou_matrix(a.xyxy, b.xyxy) if len(a) and len(b) else np.zeros((len(a), len(b)))
        used_a: set[int] = set()
        used_b: set[int] = set()
        for flat in np.argsort(-iou, axis=None):
            i, j = divmod(int(flat), iou.shape[1])
            if iou[i, j] < 0.5:
                break
            if i in used_a or j in used_b:
                continue
            used_a.add(i)
            used_b.add(j)
            diffs.append(float(np.abs(a.xyxy[i] - b.xyxy[j]).max()))
        unmatched[0] += len(a) - len(used_a)
        unmatched[1] += len(b) - len(used_b)
    d = np.asarray(diffs)
    return {"precision": precision, "frames": frames, "boxes_fp32": total[0], "boxes_half": total[1],
            "matched": len(diffs), "unmatched_fp32": unmatched[0], "unmatched_half": unmatched[1],
            "box_diff_px": {"median": float(np.median(d)) if len(d) else None, "p95": float(np.percentile(d, 95)) if len(d) else None,
                            "max": float(d.max()) if len(d) else None}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="data root holding pets09-s2l1/ (prepared)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--path", default="eager", choices=("eager", "fast"))
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--precisions", nargs="+", default=["fp32"], help="fp32 fp16 bf16 (each at batch 1 when not fp32)")
    ap.add_argument("--frames", type=int, default=0, help="first N frames only (0: all), scored on their ground truth")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--detections-only", type=int, default=0, metavar="FRAMES",
                    help="only compare each --precisions' detections with fp32 on the first FRAMES frames")
    ap.add_argument("--forward-only", type=int, default=0, metavar="ROUNDS",
                    help="only time the forward per frame at each --batches size, ROUNDS interleaved rounds of 8 frames")
    ap.add_argument("--work", type=Path, default=REPO / "bench" / "out" / "batch_precision")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "batch_precision.json")
    args = ap.parse_args(argv)
    import torch

    from cstrack.fsutil import atomic_write_json
    from cstrack.provenance import collect

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.detections_only:
        diffs = {p: detection_diff(args.data, p, args.detections_only, args.path) for p in args.precisions if p != "fp32"}
        atomic_write_json(args.out, {"detections_only": diffs, "provenance": collect().to_dict()})
        print(diffs)
        return 0
    if args.forward_only:
        runs = {p: forward_timing(args.data, args.path, args.batches, args.forward_only, 8, p) for p in args.precisions}
        atomic_write_json(args.out, {"forward_only": runs, "load_avg_1min_end": os.getloadavg()[0],
                                     "provenance": collect().to_dict()})
        for p, r in runs.items():
            print(p, r["forward_ms_per_frame_median"])
        return 0
    seq = pets_sequence(args.data)
    if args.frames > 0:  # metrics then score the first N frames against their ground truth
        seq = truncated(seq, args.frames, args.work / "seq")
    configs = [("fp32", 1)] + [("fp32", b) for b in args.batches if b != 1]
    configs += [(p, 1) for p in args.precisions if p != "fp32"]
    t0 = time.perf_counter()
    res = track_configs(seq, args.work / "tracks", configs, device=args.device, path=args.path, evaluate_metrics=True)
    res.update({"frames_limit": args.frames or None, "threads": torch.get_num_threads(), "total_s": time.perf_counter() - t0,
                "load_avg_1min_end": os.getloadavg()[0], "provenance": collect().to_dict()})
    atomic_write_json(args.out, res)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
