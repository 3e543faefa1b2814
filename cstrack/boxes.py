"""Every box-format conversion and box overlap used in the project, in one place.

Formats (all in pixels unless stated otherwise), for an array of boxes ``[..., 4]``:

- ``xyxy``: corners (x1, y1, x2, y2)
- ``xywh``: centre x, centre y, width, height
- ``tlwh``: top-left x, top-left y, width, height (the MOTChallenge file format)
- ``xyah``: centre x, centre y, aspect ratio w / h, height (the Kalman filter's measurement)

Conversions accept a NumPy array or a torch tensor and return the same kind.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

Array = TypeVar("Array", np.ndarray, torch.Tensor)


def _stack(cols: list, like: Array) -> Array:
    if isinstance(like, torch.Tensor):
        return torch.stack(cols, dim=-1)
    return np.stack(cols, axis=-1)


def xywh_to_xyxy(b: Array) -> Array:
    cx, cy, w, h = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    return _stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], b)


def xyxy_to_xywh(b: Array) -> Array:
    x1, y1, x2, y2 = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    return _stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], b)


def tlwh_to_xyxy(b: Array) -> Array:
    x, y, w, h = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    return _stack([x, y, x + w, y + h], b)


def xyxy_to_tlwh(b: Array) -> Array:
    x1, y1, x2, y2 = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    return _stack([x1, y1, x2 - x1, y2 - y1], b)


def tlwh_to_xyah(b: Array) -> Array:
    x, y, w, h = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    return _stack([x + w / 2, y + h / 2, w / h, h], b)


def xyah_to_tlwh(b: Array) -> Array:
    cx, cy, a, h = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    w = a * h
    return _stack([cx - w / 2, cy - h / 2, w, h], b)


def iou_matrix(a_xyxy: np.ndarray, b_xyxy: np.ndarray, plus_one: bool = False) -> np.ndarray:
    """Pairwise IoU ``[N, M]`` (float64) of boxes ``a [N, 4]`` and ``b [M, 4]`` in xyxy.

    ``plus_one=True`` uses the inclusive-pixel convention of cython_bbox used by the JDE tracker
    (area = (x2 - x1 + 1)(y2 - y1 + 1); spec §10.4).  Empty inputs give an empty matrix.
    """
    a = np.asarray(a_xyxy, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b_xyxy, dtype=np.float64).reshape(-1, 4)
    if a.shape[0] == 0 or b.shape[0] == 0:
        return np.zeros((a.shape[0], b.shape[0]), dtype=np.float64)
    one = 1.0 if plus_one else 0.0
    area_a = (a[:, 2] - a[:, 0] + one) * (a[:, 3] - a[:, 1] + one)
    area_b = (b[:, 2] - b[:, 0] + one) * (b[:, 3] - b[:, 1] + one)
    iw = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]) + one
    ih = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]) + one
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(union > 0, inter / union, 0.0)
    return out
