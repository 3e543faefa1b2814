"""Tracker speed: milliseconds per frame of ``Tracker.update`` for 10, 50 and 200 simultaneous
targets with 512-d embeddings, on one thread.

Scene (synthetic, seeded): a 1920×1080 frame with N pedestrians moving at constant velocity plus
noise; each leaves after a random lifetime or when it walks out of the frame and is replaced by a
new one (births and deaths), is occluded from time to time (no detection for 1-15 frames), and is
missed at random; a few false positives per frame.  Each identity has a fixed random unit
embedding; a detection carries it plus noise, re-normalised (cosine to its identity ≈ 0.85).

Usage::

    .venv/bin/python bench/tracker.py [--out bench/out/tracker.json] [--frames 600] [--targets 10 50 200]

Target (issue 4): <= 1.5 ms per frame at 50 targets.
"""

from __future__ import annotations

import os

# One thread everywhere, set before NumPy / torch are imported.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from cstrack.detection import Detections  # noqa: E402
from cstrack.fsutil import atomic_write_json  # noqa: E402
from cstrack.provenance import cpu_model  # noqa: E402
from cstrack.tracker import Tracker, preset  # noqa: E402

FRAME_W, FRAME_H = 1920, 1080
EMB_DIM = 512


class Scene:
    """N live targets; :meth:`step` moves them and returns the frame's detections."""

    def __init__(self, n_targets: int, rng: np.random.Generator) -> None:
        self.rng = rng
        self.n = n_targets
        self.next_identity = 0
        self.pos = np.zeros((n_targets, 2))
        self.vel = np.zeros((n_targets, 2))
        self.h = np.zeros(n_targets)
        self.life = np.zeros(n_targets, np.int64)
        self.occluded = np.zeros(n_targets, np.int64)
        self.emb = np.zeros((n_targets, EMB_DIM), np.float32)
        self.identity = np.zeros(n_targets, np.int64)
        for i in range(n_targets):
            self._spawn(i)

    def _spawn(self, i: int) -> None:
        r = self.rng
        self.h[i] = r.uniform(60, 300)
        self.pos[i] = (r.uniform(50, FRAME_W - 50), r.uniform(self.h[i] / 2, FRAME_H - self.h[i] / 2))
        self.vel[i] = r.normal(0, 3.0, 2)
        self.life[i] = r.integers(50, 400)
        self.occluded[i] = 0
        e = r.standard_normal(EMB_DIM).astype(np.float32)
        self.emb[i] = e / np.linalg.norm(e)
        self.identity[i] = self.next_identity
        self.next_identity += 1

    def step(self) -> Detections:
        r = self.rng
        self.pos += self.vel + r.normal(0, 0.5, self.pos.shape)
        self.life -= 1
        out = (
            (self.pos[:, 0] < -50) | (self.pos[:, 0] > FRAME_W + 50)
            | (self.pos[:, 1] < 0) | (self.pos[:, 1] > FRAME_H) | (self.life <= 0)
        )
        for i in np.flatnonzero(out):
            self._spawn(int(i))
        self.occluded = np.maximum(self.occluded - 1, 0)
        start = (self.occluded == 0) & (r.random(self.n) < 0.01)
        self.occluded[start] = r.integers(1, 16, int(start.sum()))
        visible = (self.occluded == 0) & (r.random(self.n) > 0.03)

        h = self.h[visible] * np.exp(r.normal(0, 0.02, int(visible.sum())))
        w = 0.4 * h
        cx = self.pos[visible, 0] + r.normal(0, 0.02, len(h)) * h
        cy = self.pos[visible, 1] + r.normal(0, 0.02, len(h)) * h
        noise = r.standard_normal((len(h), EMB_DIM)).astype(np.float32) * 0.028
        emb = self.emb[visible] + noise
        scores = r.uniform(0.6, 1.0, len(h))

        n_fp = r.poisson(0.05 * self.n)
        if n_fp:
            fh = r.uniform(60, 300, n_fp)
            cx = np.concatenate([cx, r.uniform(0, FRAME_W, n_fp)])
            cy = np.concatenate([cy, r.uniform(0, FRAME_H, n_fp)])
            h = np.concatenate([h, fh])
            w = np.concatenate([w, 0.4 * fh])
            emb = np.concatenate([emb, r.standard_normal((n_fp, EMB_DIM)).astype(np.float32)])
            scores = np.concatenate([scores, r.uniform(0.5, 0.7, n_fp)])
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
        return Detections(xyxy, scores, emb)


def run(n_targets: int, frames: int, warmup: int, seed: int) -> dict:
    """Time ``Tracker.update`` (the list API) frame by frame on one scene.

    Wall time and the thread's CPU time are both recorded: on a shared machine the CPU time is the
    steadier of the two (it excludes time the thread spent waiting for a core).
    """
    rng = np.random.default_rng(seed)
    scene = Scene(n_targets, rng)
    dets = [scene.step() for _ in range(warmup + frames)]  # generated outside the timed loop
    tracker = Tracker(preset("default"), frame_rate=30.0)
    wall = np.zeros(frames)
    cpu = np.zeros(frames)
    reported = np.zeros(frames)
    ids: set[int] = set()
    for k, d in enumerate(dets):
        t0, c0 = time.perf_counter(), time.thread_time()
        out = tracker.update(d)
        dt, dc = time.perf_counter() - t0, time.thread_time() - c0
        if k >= warmup:
            wall[k - warmup], cpu[k - warmup] = dt, dc
            reported[k - warmup] = len(out)
        ids.update(o.track_id for o in out)
    ms, cms = wall * 1000.0, cpu * 1000.0
    return {
        "targets": n_targets,
        "frames_timed": frames,
        "ms_per_frame": float(ms.mean()),
        "ms_median": float(np.median(ms)),
        "ms_p90": float(np.percentile(ms, 90)),
        "ms_p99": float(np.percentile(ms, 99)),
        "cpu_ms_per_frame": float(cms.mean()),
        "cpu_ms_median": float(np.median(cms)),
        "detections_per_frame": float(np.mean([len(d) for d in dets[warmup:]])),
        "reported_per_frame": float(reported.mean()),
        "identities_in_scene": int(scene.next_identity),
        "reported_track_ids": len(ids),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("bench/out/tracker.json"))
    ap.add_argument("--frames", type=int, default=600)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--targets", type=int, nargs="+", default=[10, 50, 200])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)

    rows = []
    for n in args.targets:
        row = run(n, args.frames, args.warmup, args.seed)
        rows.append(row)
        print(
            f"{n:4d} targets: {row['ms_per_frame']:.3f} ms/frame (median {row['ms_median']:.3f}, "
            f"p99 {row['ms_p99']:.3f}, cpu {row['cpu_ms_per_frame']:.3f}); "
            f"{row['detections_per_frame']:.1f} dets, {row['reported_per_frame']:.1f} reported/frame, "
            f"{row['reported_track_ids']} ids for {row['identities_in_scene']} identities",
            file=sys.stderr,
        )
    result = {
        "benchmark": "tracker.update, one thread, 512-d embeddings",
        "embedding_dim": EMB_DIM,
        "seed": args.seed,
        "results": rows,
        "target_ms_at_50": 1.5,
        "environment": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "machine": platform.machine(),
            "processor": cpu_model(),
            "threads": 1,
            "cpus_visible": os.cpu_count(),
            "load_average_1min": os.getloadavg()[0],
        },
    }
    atomic_write_json(args.out, result)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
