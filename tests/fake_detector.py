"""A tiny image-reading FrameDetector and a synthetic sequence for runner / CLI tests.

The sequence shows coloured rectangles on black; the detector finds each rectangle from the pixels
(connected components) and uses its colour as the embedding, so private-mode tracking runs on
real decoded frames without a network.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from cstrack.data.letterbox import LetterboxMeta
from cstrack.data.mot import MotTable, SeqInfo, write_mot, write_seqinfo
from cstrack.detection import Detections, Prepared

COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]  # BGR


class FakeDetector:
    """Implements :class:`cstrack.detection.FrameDetector` with connected components."""

    emb_dim = 3

    def __init__(self, input_size: tuple[int, int] = (64, 64)) -> None:
        self.input_size = input_size
        self.embed_calls: list[np.ndarray] = []
        self.forward_calls = 0

    def preprocess(self, frame_bgr: np.ndarray) -> Prepared:
        h, w = frame_bgr.shape[:2]
        return Prepared(frame_bgr.copy(), LetterboxMeta(1.0, (0.0, 0.0), (w, h), self.input_size))

    def forward(self, prep: Prepared) -> np.ndarray:
        self.forward_calls += 1
        img = prep.tensor
        n, labels, stats, _ = cv2.connectedComponentsWithStats((img.max(axis=2) > 128).astype(np.uint8))
        return np.array([[*stats[k, :4], *img[labels == k].mean(axis=0)] for k in range(1, n)]).reshape(-1, 7)

    def postprocess(self, out: np.ndarray, prep: Prepared) -> Detections:
        xyxy = np.c_[out[:, 0], out[:, 1], out[:, 0] + out[:, 2], out[:, 1] + out[:, 3]]
        emb = out[:, 4:7] / np.linalg.norm(out[:, 4:7], axis=1, keepdims=True).clip(1e-6)
        return Detections(xyxy, np.full(len(out), 0.9), emb)

    def embed_boxes(self, out: np.ndarray, prep: Prepared, xyxy: np.ndarray) -> np.ndarray:
        self.embed_calls.append(np.asarray(xyxy, np.float32).copy())
        img = prep.tensor
        rows = []
        for x1, y1, x2, y2 in np.asarray(xyxy).reshape(-1, 4):
            cx = int(np.clip((x1 + x2) / 2, 0, img.shape[1] - 1))
            cy = int(np.clip((y1 + y2) / 2, 0, img.shape[0] - 1))
            v = img[cy, cx].astype(np.float32) + 1.0
            rows.append(v / np.linalg.norm(v))
        return np.array(rows, np.float32).reshape(-1, 3)


def crossing_positions(frame: int) -> list[tuple[int, int]]:
    """Top-left corners of the two rectangles: one walking right, one left, crossing mid-way."""
    return [(20 + 4 * (frame - 1), 60), (260 - 4 * (frame - 1), 70)]


def write_sequence(root: Path, name: str = "SYN-01", frames: int = 50, size: tuple[int, int] = (320, 200),
                   images: bool = True) -> Path:
    """A MOTChallenge folder with PNG frames, gt (incl. a zero-marked and a non-pedestrian row) and det."""
    seq = root / name
    w, h = size
    write_seqinfo(seq, SeqInfo(name, 10.0, frames, w, h, "img1", ".png"))
    gt_rows, det_rows = [], []
    for f in range(1, frames + 1):
        img = np.zeros((h, w, 3), np.uint8)
        for k, (x, y) in enumerate(crossing_positions(f)):
            img[y : y + 40, x : x + 20] = COLOURS[k]
            gt_rows.append((f, k + 1, x, y, 20, 40, 1, 1, 1.0))
            det_rows.append((f, -1, x + 1, y + 1, 20, 40, 0.95))
        gt_rows.append((f, 9, 5, 5, 10, 10, 0, 1, 1.0))  # zero-marked: not counted
        gt_rows.append((f, 8, 150, 150, 12, 12, 1, 7, 1.0))  # class 7 (not a pedestrian)
        if images:
            (seq / "img1").mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(seq / "img1" / f"{f:06d}.png"), img)
    g = np.array(gt_rows, float)
    write_mot(seq / "gt" / "gt.txt", MotTable(g[:, 0], g[:, 1], g[:, 2:6], g[:, 6], g[:, 7], g[:, 8]), "gt")
    d = np.array(det_rows, float)
    write_mot(seq / "det" / "det.txt", MotTable(d[:, 0], d[:, 1], d[:, 2:6], d[:, 6]), "det")
    return seq
