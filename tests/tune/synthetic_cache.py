"""A small synthetic sequence (seqinfo + gt, no images) with a detection cache made from its gt:
jittered boxes, random scores, identity embeddings with noise and low-score false positives."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cstrack.data.mot import MotTable, SeqInfo, write_mot, write_seqinfo
from cstrack.run.detcache import CachedDetections, write_cache


def write_cached_sequence(root: Path, name: str = "SYN-01", frames: int = 60, objects: int = 4, seed: int = 0,
                          emb_dim: int = 8) -> tuple[Path, Path]:
    """``(sequence folder, cache file)``: ``objects`` pedestrians walking across a 640x480 frame."""
    rng = np.random.default_rng(seed)
    seq = root / name
    write_seqinfo(seq, SeqInfo(name, 10.0, frames, 640, 480, "img1", ".jpg"))
    ident = rng.normal(size=(objects, emb_dim))
    start = rng.uniform([20, 100], [600, 400], size=(objects, 2))
    vel = rng.uniform(-6, 6, size=(objects, 2))
    gt, fr, boxes, scores, embs = [], [], [], [], []
    for f in range(1, frames + 1):
        for k in range(objects):
            x, y = start[k] + vel[k] * (f - 1)
            gt.append((f, k + 1, x, y, 30.0, 80.0, 1, 1, 1.0))
            if rng.random() < 0.9:  # a missed detection now and then
                j = rng.normal(0, 2, 4)
                boxes.append((x + j[0], y + j[1], x + 30 + j[2], y + 80 + j[3]))
                scores.append(rng.uniform(0.25, 0.95))
                embs.append(ident[k] + rng.normal(0, 0.4, emb_dim))
                fr.append(f)
        if rng.random() < 0.5:  # a low-score false positive
            x, y = rng.uniform(0, 600), rng.uniform(0, 400)
            boxes.append((x, y, x + 30, y + 70))
            scores.append(rng.uniform(0.1, 0.45))
            embs.append(rng.normal(size=emb_dim))
            fr.append(f)
    g = np.array(gt, float)
    write_mot(seq / "gt" / "gt.txt", MotTable(g[:, 0], g[:, 1], g[:, 2:6], g[:, 6], g[:, 7], g[:, 8]), "gt")
    e = np.array(embs, np.float32)
    e /= np.linalg.norm(e, axis=1, keepdims=True)
    order = np.argsort(np.array(fr), kind="stable")
    det = CachedDetections(np.array(fr, np.int32)[order], np.array(boxes, np.float32)[order],
                           np.array(scores, np.float32)[order], e[order], frames, 10.0,
                           {"spec": {"score_floor": 0.1}, "sequence": name})
    cache = write_cache(root / "detcache" / f"{name}.parquet", det)
    return seq, cache
