"""A small folder in the layout of the extracted MOT17 archive (tiny images, a few frames): every
train and test sequence of the server's list, each as its DPM, FRCNN and SDP copy."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from cstrack.data.mot import SeqInfo, write_seqinfo
from cstrack.eval.submit import expected_sequences

FRAMES = 3


def write_mot17_layout(root: Path, frames: int = FRAMES, skip: tuple[str, ...] = ()) -> Path:
    """``root/MOT17/{train,test}/MOT17-NN-{DPM,FRCNN,SDP}/`` with ``frames`` 32x24 JPEGs each (the same
    images in the three copies, as in MOT17), det.txt per copy and gt.txt in train; returns ``root/MOT17``."""
    base = root / "MOT17"
    for split in ("train", "test"):
        for seq in expected_sequences("MOT17", split):
            if seq in skip:
                continue
            stem = seq.rsplit("-", 1)[0]
            d = base / split / seq
            (d / "img1").mkdir(parents=True)
            for f in range(1, frames + 1):
                img = np.full((24, 32, 3), (int(stem[-2:]) * 9 + f) % 256, np.uint8)
                cv2.imwrite(str(d / "img1" / f"{f:06d}.jpg"), img)
            write_seqinfo(d, SeqInfo(seq, 30.0, frames, 32, 24))
            (d / "det").mkdir()
            (d / "det" / "det.txt").write_text("".join(f"{f},-1,2,2,8,12,0.9\n" for f in range(1, frames + 1)))
            if split == "train":
                (d / "gt").mkdir()
                (d / "gt" / "gt.txt").write_text("".join(f"{f},1,2,2,8,12,1,1,1.0\n" for f in range(1, frames + 1)))
    return base
