"""Speed of the default path against the model's compute limit, in one run (issue 16, deliverable 5).

Usage::

    python bench/default_path_speed.py [--weights weights/cstrack-n_cpu.pt] [--size 576x320] \
        [--threads 2] [--repeats 3] [--out bench/out/default_path_speed.json]

In one run, each measurement in its own process (``bench/cpu_speed.py``'s isolation and
``foreign_cpu`` bookkeeping):

1. the machine's 3x3-convolution peak (``bench/cpu_speed.py --worker peak``);
2. the model's GFLOPs per frame at ``--size`` (:func:`cstrack.model.complexity.count_flops` of the
   checkpoint's own config) and its compute limit ``peak / GFLOPs`` in frames per second;
3. ``cstrack bench-speed`` end to end (read to tracks, PETS09-S2L1-head8 frames) on the eager
   path, the default path (``--path auto``: ONNX Runtime with the frame workers, as ``cstrack
   track`` runs a sequence folder) and the default path with the frame workers off (``--workers 1``:
   one prefetch thread, two intra-op threads); each ``--repeats`` times, interleaved, the fastest
   run reported (other processes only ever slow a run down; every run's fps and foreign CPU are
   kept): fps, fps / limit, CPU milliseconds per frame and per-stage ms;
4. the ONNX Runtime forward alone: at batch 1 and batch B with ``--threads`` intra-op threads (the
   graph exported with that batch), and at batch 1 in ``--threads`` single-threaded runs at once
   (the frame workers' forward), per frame.

Timing on the shared 2-core VM is noisy while other engineers use the CPU: compare the ratios of one
run, and read ``foreign_cpu`` (share of CPU other processes used during each measurement).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO / "bench") not in sys.path:
    sys.path.insert(0, str(REPO / "bench"))

from cpu_speed import run_isolated  # noqa: E402  (the isolated-process runner with foreign-CPU accounting)

TARGET_RATIO = 0.7
# name -> (--path, extra bench-speed arguments)
PATHS: dict[str, tuple[str, list[str]]] = {
    "eager": ("eager", []),
    "auto": ("auto", []),  # the default path as `cstrack track` runs a sequence folder: frame workers on
    "auto_workers1": ("auto", ["--workers", "1"]),  # the same without frame workers (the previous default)
}


def _repeat_run(session: Any, x: Any, n: int) -> None:
    for _ in range(n):
        session.run(None, {"images": x})


def worker_batch(weights: str, size: str, threads: int, batches: list[int], iters: int) -> dict[str, Any]:
    """Median ms per frame of the ONNX Runtime forward at each batch size (``threads`` intra-op
    threads), and of ``threads`` concurrent single-threaded runs at batch 1 (``"workers"``)."""
    import threading

    import numpy as np
    import onnxruntime as ort
    import torch

    from cstrack.cli.common import parse_size
    from cstrack.infer.graph import inference_model
    from cstrack.infer.ort import session_options
    from cstrack.model.weights import load_weights

    torch.set_num_threads(threads)
    w, h = parse_size(size)
    net = inference_model(load_weights(weights).eval(), (w, h))
    out: dict[str, Any] = {}
    for b in batches:
        buf = io.BytesIO()
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(net, (torch.zeros(b, 3, h, w),), buf,  # type: ignore[arg-type]  # torch's annotation omits file objects
                              input_names=["images"],
                              output_names=["emb", "pred"], opset_version=17, do_constant_folding=True, dynamo=False)
        sess = ort.InferenceSession(buf.getvalue(), session_options(threads), providers=["CPUExecutionProvider"])
        x = np.random.default_rng(0).random((b, 3, h, w), dtype=np.float32)
        for _ in range(3):
            sess.run(None, {"images": x})
        times = []
        for _ in range(max(4, iters // b)):
            t0 = time.perf_counter()
            sess.run(None, {"images": x})
            times.append(time.perf_counter() - t0)
        out[str(b)] = {"ms_per_frame_median": 1000 * float(np.median(times)) / b,
                       "ms_per_frame_best": 1000 * min(times) / b}
        if b != 1:
            continue
        solo = ort.InferenceSession(buf.getvalue(), session_options(1), providers=["CPUExecutionProvider"])
        solo.run(None, {"images": x})
        rounds = []
        for _ in range(3):
            t0, c0 = time.perf_counter(), time.process_time()
            runs = [threading.Thread(target=_repeat_run, args=(solo, x, iters // 2)) for _ in range(threads)]
            for t in runs:
                t.start()
            for t in runs:
                t.join()
            frames = threads * (iters // 2)
            rounds.append((1000 * (time.perf_counter() - t0) / frames, 1000 * (time.process_time() - c0) / frames))
        wall, cpu = sorted(rounds)[len(rounds) // 2]
        out["workers"] = {"ms_per_frame_median": wall, "cpu_ms_per_frame": cpu, "workers": threads}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default="weights/cstrack-n_cpu.pt")
    ap.add_argument("--size", default="576x320")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3, help="end-to-end runs per path (interleaved; the fastest reported)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "default_path_speed.json")
    ap.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        print(json.dumps(worker_batch(args.weights, args.size, args.threads, [int(b) for b in args.worker], 40)))
        return 0

    from cstrack.cli.common import parse_size
    from cstrack.fsutil import atomic_write_json
    from cstrack.model.complexity import count_flops
    from cstrack.model.weights import load_weights
    from cstrack.paths import shared_data
    from cstrack.provenance import cpu_model, simd_flags

    started, load0 = time.time(), os.getloadavg()
    images = shared_data() / "mot15" / "PETS09-S2L1-head8" / "img1"
    peak, foreign = run_isolated([sys.executable, str(REPO / "bench" / "cpu_speed.py"), "--worker", "peak",
                                  str(args.threads)])
    peak["foreign_cpu"] = foreign
    conv_peak = peak["conv3x3_gflops"]
    model = load_weights(args.weights)
    gflop = count_flops(model, parse_size(args.size))[0] / 1e9
    limit = conv_peak / gflop
    print(f"conv peak {conv_peak:.1f} GFLOP/s, {model.config.variant} (ren {model.config.ren}) {gflop:.3f} GFLOP "
          f"at {args.size}: limit {limit:.1f} fps (foreign cpu {foreign:.0%})", flush=True)

    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in PATHS}
    for _ in range(args.repeats):
        for name, (path, extra) in PATHS.items():
            cmd = [sys.executable, "-m", "cstrack", "bench-speed", "--variant", model.config.variant, "--weights",
                   args.weights, "--size", args.size, "--images", str(images), "--frames", str(args.frames),
                   "--path", path, "--threads", str(args.threads), "--forward-iters", "20", "--json", *extra]
            rec, foreign = run_isolated(cmd)
            rec["foreign_cpu"] = foreign
            runs[name].append(rec)
            print(f"{name:12s} ({rec['path']}, {rec['workers']} workers): e2e {rec['fps']:.2f} fps = "
                  f"{rec['fps'] / limit:.2f} of the limit, {rec['cpu_ms_per_frame']:.1f} CPU ms/frame, "
                  f"foreign cpu {foreign:.0%}", flush=True)
    paths: dict[str, Any] = {}
    for name, recs in runs.items():
        rec = max(recs, key=lambda r: r["fps"])  # the run least disturbed by other processes
        paths[name] = {
            "e2e_fps": rec["fps"], "ratio_to_limit": rec["fps"] / limit, "e2e_fps_all": [r["fps"] for r in recs],
            "cpu_ms_per_frame": rec["cpu_ms_per_frame"],
            # the fps the cores would give if this frame's CPU work kept all of them busy
            "cpu_bound_fps": 1000 * args.threads / rec["cpu_ms_per_frame"],
            "forward_fps": rec["forward"]["fps"], "forward_ratio_to_limit": rec["forward"]["fps"] / limit,
            "ms": rec["ms"], "workers": rec["workers"], "post_track_share": rec["post_track_share"],
            "detections_per_frame": rec["detections_per_frame"], "resolved_path": rec["path"],
            "foreign_cpu": rec["foreign_cpu"], "foreign_cpu_all": [r["foreign_cpu"] for r in recs],
        }
        row = paths[name]
        print(f"best {name:12s}: {row['e2e_fps']:.2f} fps = {row['ratio_to_limit']:.2f} of the limit "
              f"(CPU-bound {row['cpu_bound_fps']:.1f} fps = {row['cpu_bound_fps'] / limit:.2f}); ms "
              + " ".join(f"{k} {v:.2f}" for k, v in row["ms"].items()), flush=True)

    batch, foreign = run_isolated([sys.executable, str(Path(__file__).resolve()), "--weights", args.weights,
                                   "--size", args.size, "--threads", str(args.threads), "--worker", "1", str(args.batch)])
    for b, row in batch.items():
        row["fps"] = 1000 / row["ms_per_frame_median"]
        row["ratio_to_limit"] = row["fps"] / limit
        what = f"{args.threads} single-threaded runs at once" if b == "workers" else f"batch {b}, {args.threads} threads"
        print(f"onnx forward {what}: {row['fps']:.1f} fps = {row['ratio_to_limit']:.2f} of the limit", flush=True)

    report = {
        "command": " ".join([sys.executable, *sys.argv]),
        "weights": args.weights, "size": args.size, "threads": args.threads,
        "peak": peak, "gflop_per_frame": gflop, "limit_fps": limit,
        "paths": paths,
        "onnx_forward_by_batch": batch, "batch_foreign_cpu": foreign,
        "target": {"ratio_min": TARGET_RATIO, "default_path_ratio": paths["auto"]["ratio_to_limit"],
                   "met": paths["auto"]["ratio_to_limit"] >= TARGET_RATIO},
        "machine": {"cpu_count": os.cpu_count(), "cpu_model": cpu_model(), "cpu_flags": simd_flags(),
                    "load_avg_1min_start": load0[0], "load_avg_1min_end": os.getloadavg()[0]},
        "wall_s": round(time.time() - started, 1),
    }
    atomic_write_json(args.out, report)
    print(json.dumps(report["target"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
