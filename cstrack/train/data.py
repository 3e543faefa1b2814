"""Training data for the trainer: a dataset of ``(image, labels)`` items, the number of identity
classes and the collate function.

Item contract (what :func:`collate` expects from any dataset used by the trainer):

- ``image``: float32 tensor [3, H, W], RGB in [0, 1], already at the network input size;
- ``labels``: float32 tensor [n, 6] rows ``(0, identity, cx, cy, w, h)``, box normalised to [0, 1]
  of the network input; identity 0 = "no identity", real identities >= 1 (spec Q12); n may be 0
  (spec Q16).

:func:`collate` stacks a batch into ``images [B, 3, H, W]`` and ``targets [T, 6]`` whose first
column is the image index in the batch (the loss' target format).

Sources: MOT sequences with frame ranges are read by :class:`SequenceFrames` here (a thin
stand-in until the shared JDE dataset of ``cstrack.data.jde`` covers them); JDE label lists and
named mixtures need ``cstrack.data.jde``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from cstrack.data.letterbox import letterbox
from cstrack.data.mot import Sequence as MotSequence
from cstrack.data.mot import counted_gt
from cstrack.errors import ConfigError, DatasetError
from cstrack.train.config import DataSection

# Spec §8: boxes are clipped to [1, W-1] x [1, H-1]; the (identity) affine step drops boxes with
# w or h <= 2 px, a kept-area ratio <= 0.2 or an aspect ratio >= 20.
CLIP_MARGIN = 1.0
MIN_SIDE_PX = 2.0
MIN_AREA_RATIO = 0.2
MAX_ASPECT = 20.0


@dataclass
class TrainData:
    """A training dataset plus what the trainer needs to know about it."""

    dataset: Dataset
    num_ids: int  # identity classes including class 0 ("no identity"): max identity + 1
    collate: Callable[[list[tuple[torch.Tensor, torch.Tensor]]], tuple[torch.Tensor, torch.Tensor]]
    description: dict[str, Any] = field(default_factory=dict)


def collate(batch: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """``[(image [3,H,W], labels [n,6])]`` -> ``(images [B,3,H,W], targets [T,6])`` with column 0
    set to the image index."""
    images = torch.stack([b[0] for b in batch])
    rows = []
    for i, (_, labels) in enumerate(batch):
        lab = labels.clone().reshape(-1, 6)
        lab[:, 0] = i
        rows.append(lab)
    targets = torch.cat(rows) if rows else torch.zeros((0, 6))
    return images, targets.float()


class TensorFrames(Dataset):
    """Fixed in-memory items (for tests and synthetic smoke runs): ``images [N,3,H,W]`` and per-image
    label tensors ``[n_i, 6]``."""

    def __init__(self, images: torch.Tensor, labels: Sequence[torch.Tensor]) -> None:
        if len(images) != len(labels):
            raise ConfigError(f"TensorFrames: {len(images)} images but {len(labels)} label tensors")
        self.images = images.float()
        self.labels = [torch.as_tensor(lab, dtype=torch.float32).reshape(-1, 6) for lab in labels]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[i], self.labels[i]

    @property
    def num_ids(self) -> int:
        top = max((int(lab[:, 1].max()) for lab in self.labels if len(lab)), default=0)
        return top + 1


# ------------------------------------------------------------------------------------------------
# augmentation (spec §8)


def augment_hsv(img_bgr: np.ndarray, gains: tuple[float, float, float], rng: np.random.RandomState) -> np.ndarray:
    """HSV jitter by look-up table: each gain drawn in ``[1 - g, 1 + g]``, hue mod 180, s/v clipped."""
    r = rng.uniform(-1, 1, 3) * np.asarray(gains) + 1
    hue, sat, val = cv2.split(cv2.cvtColor(img_bgr, cv2.COLOR_BGR2HSV))
    x = np.arange(256, dtype=np.float64)
    lut_hue = ((x * r[0]) % 180).astype(np.uint8)
    lut_sat = np.clip(x * r[1], 0, 255).astype(np.uint8)
    lut_val = np.clip(x * r[2], 0, 255).astype(np.uint8)
    hsv = cv2.merge((cv2.LUT(hue, lut_hue), cv2.LUT(sat, lut_sat), cv2.LUT(val, lut_val)))
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)


def fit_boxes(xyxy: np.ndarray, scale: tuple[float, float], pad: tuple[float, float], net_wh: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Map frame-pixel ``xyxy [n, 4]`` into the network image (``x * scale + pad``), clip the corners to
    ``[1, W-1] x [1, H-1]`` and drop degenerate boxes.  Returns ``(xyxy_net [k, 4], kept index [k])``."""
    sx, sy = scale
    b = np.asarray(xyxy, np.float64).reshape(-1, 4).copy()
    b[:, [0, 2]] = b[:, [0, 2]] * sx + pad[0]
    b[:, [1, 3]] = b[:, [1, 3]] * sy + pad[1]
    area0 = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    W, H = net_wh
    b[:, [0, 2]] = b[:, [0, 2]].clip(CLIP_MARGIN, W - CLIP_MARGIN)
    b[:, [1, 3]] = b[:, [1, 3]].clip(CLIP_MARGIN, H - CLIP_MARGIN)
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        ar = np.maximum(w / (h + 1e-16), h / (w + 1e-16))
        keep = (w > MIN_SIDE_PX) & (h > MIN_SIDE_PX) & (w * h / (area0 + 1e-16) > MIN_AREA_RATIO) & (ar < MAX_ASPECT)
    idx = np.flatnonzero(keep)
    return b[idx], idx


class SequenceFrames(Dataset):
    """Frames of MOT sequences (with frame ranges) as training items.

    Every gt box the benchmark counts (flag 1, pedestrian class where classes exist) is a target;
    identities are made unique across sequences: sequence ``k``'s gt id ``j`` becomes
    ``offset_k + j`` with ``offset_0 = 0`` and ``offset_k = offset_{k-1} + max id of sequence k-1``
    (so real identities are >= 1, spec Q12).  Images are stretched or letterboxed to ``input_size``
    (spec §8 / Q11), then HSV-jittered and flipped when ``augment`` (random draws from NumPy's global
    generator: the trainer saves and restores its state).
    """

    def __init__(self, data: DataSection) -> None:
        self.data = data
        self.items: list[tuple[Path, np.ndarray, np.ndarray]] = []  # (image, tlwh [n,4], ids [n])
        self.sources: list[dict[str, Any]] = []
        offset = 0
        for src in data.sequences:
            seq = MotSequence.open(src.path)
            first, last = src.frames or (1, seq.info.seq_length)
            if last > seq.info.seq_length:
                raise DatasetError(f"frames {first}:{last} beyond seqLength {seq.info.seq_length}", seq.root / "seqinfo.ini")
            gt = counted_gt(seq.gt())
            by_frame = gt.frame_slices()
            ids_here = set()
            for f in range(first, last + 1):
                img = seq.image_path(f)
                if not img.is_file():
                    raise DatasetError(f"image of frame {f} not found (convert the video first)", img)
                rows = by_frame.get(f, np.zeros(0, np.int64))
                ids = gt.id[rows] + offset
                ids_here.update(int(i) for i in gt.id[rows])
                self.items.append((img, gt.tlwh[rows], ids))
            self.sources.append({
                "path": str(src.path), "name": seq.name, "frames": [first, last],
                "images": last - first + 1, "identities": len(ids_here), "id_offset": offset,
            })
            offset += int(gt.id.max()) if len(gt) else 0
        self.num_ids = offset + 1

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        path, tlwh, ids = self.items[i]
        frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if frame is None:
            raise DatasetError("unreadable image", path)
        W, H = self.data.input_size
        h0, w0 = frame.shape[:2]
        if self.data.resize == "letterbox":
            img, meta = letterbox(frame, (W, H))
            scale, pad = (meta.ratio, meta.ratio), meta.pad
        else:
            img = cv2.resize(frame, (W, H), interpolation=cv2.INTER_LINEAR)
            scale, pad = (W / w0, H / h0), (0.0, 0.0)
        xyxy = np.concatenate([tlwh[:, :2], tlwh[:, :2] + tlwh[:, 2:]], axis=1) if len(tlwh) else np.zeros((0, 4))
        boxes, kept = fit_boxes(xyxy, scale, pad, (W, H))
        ids = ids[kept]
        if self.data.augment:
            rng = np.random.mtrand._rand
            img = augment_hsv(img, self.data.hsv_gains, rng)
            if rng.random_sample() < self.data.flip:
                img = np.ascontiguousarray(img[:, ::-1])
                boxes = boxes.copy()
                boxes[:, [0, 2]] = W - boxes[:, [2, 0]]
        labels = np.zeros((len(boxes), 6), np.float32)
        labels[:, 1] = ids
        labels[:, 2] = (boxes[:, 0] + boxes[:, 2]) / 2 / W
        labels[:, 3] = (boxes[:, 1] + boxes[:, 3]) / 2 / H
        labels[:, 4] = (boxes[:, 2] - boxes[:, 0]) / W
        labels[:, 5] = (boxes[:, 3] - boxes[:, 1]) / H
        rgb = np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1))
        return torch.from_numpy(rgb).float().div_(255.0), torch.from_numpy(labels)


def build_train_data(data: DataSection) -> TrainData:
    """The training data described by ``data``.

    MOT sequences with frame ranges are served by :class:`SequenceFrames`; JDE label lists and
    mixtures are not available until ``cstrack.data.jde`` exists (raises :class:`ConfigError`).
    """
    if data.label_lists or data.mixture:
        raise ConfigError("data.label_lists / data.mixture: JDE label lists need cstrack.data.jde, which is not available")
    ds = SequenceFrames(data)
    if len(ds) == 0:
        raise ConfigError("data: no training images")
    desc = {"kind": "mot-sequences", "sources": ds.sources, "images": len(ds), "num_ids": ds.num_ids,
            "input_size": list(data.input_size), "resize": data.resize, "augment": data.augment}
    return TrainData(ds, ds.num_ids, collate, desc)
