"""Training-image preprocessing and augmentation (spec §8, Q11).

Boxes are ``xyxy`` float arrays ``[n, 4]`` in pixels of the image they travel with.  The pipeline
of :func:`prepare_training_image`, in order:

1. resize to the network input: **stretch** (independent x/y scale, bilinear; SOTS training, the
   default) or **letterbox** (aspect kept, INTER_AREA, even padding 127.5; spec Q11 option);
2. clip the box corners to ``[1, W-1] x [1, H-1]`` (spec §8);
3. random affine (rotation, scale, translation, shear; all 0 by default, i.e. the identity, as in
   SOTS) followed by its box filter: keep a box when ``w > 2`` and ``h > 2`` px, its area is more
   than 0.2 of the area before the affine (times the scale squared), and its aspect ratio is below
   20 (spec §8);
4. HSV jitter by look-up table (gains 0.015 / 0.5 / 0.4), only when augmenting;
5. horizontal flip with p = 0.5 (after HSV), only when augmenting.

All randomness comes from the ``numpy.random.Generator`` passed in, so a fixed generator state
gives a fixed result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from cstrack.data.letterbox import letterbox
from cstrack.errors import ConfigError

ResizeMode = Literal["stretch", "letterbox"]
_BORDER = 128  # letterbox padding 127.5 stored as uint8 (cstrack.data.letterbox)


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation parameters; defaults are SOTS's (spec §8)."""

    hsv_gains: tuple[float, float, float] = (0.015, 0.5, 0.4)  # spec §8: hue, saturation, value
    flip_lr: float = 0.5  # spec §8: horizontal flip probability
    degrees: float = 0.0  # spec §8: rotation, translation, scale, shear all 0 (identity affine)
    translate: float = 0.0
    scale: float = 0.0
    shear: float = 0.0
    min_side: float = 2.0  # spec §8 box filter: drop w or h <= 2 px ...
    min_area_ratio: float = 0.2  # ... area ratio <= 0.2 ...
    max_aspect: float = 20.0  # ... aspect >= 20
    clip_margin: float = 1.0  # spec §8: corners clipped to [1, W-1] x [1, H-1]

    def __post_init__(self) -> None:
        gains = tuple(float(g) for g in self.hsv_gains)
        if len(gains) != 3 or not all(0.0 <= g <= 1.0 for g in gains):
            raise ConfigError(f"hsv_gains: three gains in [0, 1] expected, got {self.hsv_gains!r}")
        object.__setattr__(self, "hsv_gains", gains)
        if not 0.0 <= self.flip_lr <= 1.0:
            raise ConfigError(f"flip_lr: must be in [0, 1], got {self.flip_lr}")
        for name in ("degrees", "translate", "scale", "shear", "min_side", "clip_margin"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}: must be >= 0, got {getattr(self, name)}")
        if self.translate >= 1 or self.scale >= 1:
            raise ConfigError(f"translate/scale: must be < 1, got {self.translate}, {self.scale}")
        if not 0.0 <= self.min_area_ratio < 1.0:
            raise ConfigError(f"min_area_ratio: must be in [0, 1), got {self.min_area_ratio}")
        if self.max_aspect <= 1:
            raise ConfigError(f"max_aspect: must be > 1, got {self.max_aspect}")

    @property
    def has_affine(self) -> bool:
        return any(v > 0 for v in (self.degrees, self.translate, self.scale, self.shear))


def resize_to_input(
    img: np.ndarray, boxes: np.ndarray, size: tuple[int, int], mode: ResizeMode = "stretch"
) -> tuple[np.ndarray, np.ndarray]:
    """Resize uint8 ``img [h, w, 3]`` to ``size = (W, H)`` and map ``boxes [n, 4]`` xyxy with it."""
    W, H = size
    h0, w0 = img.shape[:2]
    b = np.asarray(boxes, np.float64).reshape(-1, 4).copy()
    if mode == "stretch":
        out = img if (w0, h0) == (W, H) else cv2.resize(img, (W, H), interpolation=cv2.INTER_LINEAR)
        b[:, [0, 2]] *= W / w0
        b[:, [1, 3]] *= H / h0
        return out, b
    if mode == "letterbox":
        out, meta = letterbox(img, (W, H))
        b *= meta.ratio
        b[:, [0, 2]] += meta.pad[0]
        b[:, [1, 3]] += meta.pad[1]
        return out, b
    raise ConfigError(f"resize: must be 'stretch' or 'letterbox', got {mode!r}")


def clip_boxes(boxes: np.ndarray, size: tuple[int, int], margin: float = 1.0) -> np.ndarray:
    """Corners clipped to ``[margin, W - margin] x [margin, H - margin]`` (a new array)."""
    W, H = size
    b = np.asarray(boxes, np.float64).reshape(-1, 4).copy()
    b[:, [0, 2]] = b[:, [0, 2]].clip(margin, W - margin)
    b[:, [1, 3]] = b[:, [1, 3]].clip(margin, H - margin)
    return b


def box_candidates(before: np.ndarray, after: np.ndarray, area_scale: float, cfg: AugmentConfig) -> np.ndarray:
    """bool [n]: boxes that survive the affine step (sizes in px, area ratio, aspect; spec §8)."""
    w1, h1 = before[:, 2] - before[:, 0], before[:, 3] - before[:, 1]
    w2, h2 = after[:, 2] - after[:, 0], after[:, 3] - after[:, 1]
    eps = 1e-16
    aspect = np.maximum(w2 / (h2 + eps), h2 / (w2 + eps))
    ratio = (w2 * h2) / (w1 * h1 * area_scale + eps)
    return (w2 > cfg.min_side) & (h2 > cfg.min_side) & (ratio > cfg.min_area_ratio) & (aspect < cfg.max_aspect)


def random_affine(
    img: np.ndarray, boxes: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random rotation/scale/translation/shear about the image centre, then the box filter.

    ``boxes`` are xyxy inside the image.  Returns ``(img, kept boxes [k, 4] clipped, kept index
    [k])``.  With every range 0 (SOTS) the image is returned untouched and only the filter acts.
    """
    H, W = img.shape[:2]
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    s = 1.0
    if cfg.has_affine:
        angle = rng.uniform(-cfg.degrees, cfg.degrees)
        s = rng.uniform(1 - cfg.scale, 1 + cfg.scale)
        R = np.eye(3)
        R[:2] = cv2.getRotationMatrix2D((W / 2, H / 2), angle, s)
        S = np.eye(3)
        S[0, 1] = math.tan(math.radians(rng.uniform(-cfg.shear, cfg.shear)))
        S[1, 0] = math.tan(math.radians(rng.uniform(-cfg.shear, cfg.shear)))
        T = np.eye(3)
        T[0, 2] = rng.uniform(-cfg.translate, cfg.translate) * W
        T[1, 2] = rng.uniform(-cfg.translate, cfg.translate) * H
        M = T @ S @ R
        img = cv2.warpAffine(img, M[:2], (W, H), flags=cv2.INTER_LINEAR, borderValue=(_BORDER,) * 3)
        corners = b[:, [0, 1, 2, 1, 2, 3, 0, 3]].reshape(-1, 2)  # 4 corners per box
        xy = np.c_[corners, np.ones(len(corners))] @ M[:2].T
        xy = xy.reshape(-1, 8)
        after = np.stack([xy[:, 0::2].min(1), xy[:, 1::2].min(1), xy[:, 0::2].max(1), xy[:, 1::2].max(1)], 1)
        after = clip_boxes(after, (W, H), cfg.clip_margin)
    else:
        after = b.copy()
    keep = np.flatnonzero(box_candidates(b, after, s * s, cfg))
    return img, after[keep], keep


def augment_hsv(img: np.ndarray, gains: tuple[float, float, float], rng: np.random.Generator) -> np.ndarray:
    """HSV jitter of a uint8 BGR image by look-up tables: gains drawn uniformly in ``[1-g, 1+g]``;
    hue wraps modulo 180, saturation and value are clipped to 255.  Returns a new image."""
    r = rng.uniform(-1.0, 1.0, 3) * np.asarray(gains) + 1.0
    hue, sat, val = cv2.split(cv2.cvtColor(img, cv2.COLOR_BGR2HSV))
    x = np.arange(256, dtype=np.float64)
    lut_hue = ((x * r[0]) % 180).astype(np.uint8)
    lut_sat = np.clip(x * r[1], 0, 255).astype(np.uint8)
    lut_val = np.clip(x * r[2], 0, 255).astype(np.uint8)
    hsv = cv2.merge((cv2.LUT(hue, lut_hue), cv2.LUT(sat, lut_sat), cv2.LUT(val, lut_val)))
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)


def flip_lr(img: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirror the image left-right; box x becomes ``W - x`` (x1 and x2 swap)."""
    W = img.shape[1]
    b = np.asarray(boxes, np.float64).reshape(-1, 4).copy()
    b[:, [0, 2]] = W - b[:, [2, 0]]
    return np.ascontiguousarray(img[:, ::-1]), b


def prepare_training_image(
    img: np.ndarray,
    boxes: np.ndarray,
    size: tuple[int, int],
    *,
    resize: ResizeMode = "stretch",
    augment: bool = True,
    cfg: AugmentConfig | None = None,
    rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The whole pipeline of the module docstring for one image.

    ``img`` uint8 BGR ``[h, w, 3]`` and ``boxes [n, 4]`` xyxy in its pixels -> ``(uint8 BGR image
    [H, W, 3], boxes [k, 4] xyxy in network pixels, index [k] of the input boxes kept)``.
    """
    cfg = cfg or AugmentConfig()
    if augment and rng is None:
        raise ConfigError("prepare_training_image: augment=True needs a random generator")
    net, b = resize_to_input(img, boxes, size, resize)
    b = clip_boxes(b, size, cfg.clip_margin)
    if augment and rng is not None:  # (augment without rng is refused above)
        net, b, keep = random_affine(net, b, cfg, rng)
        if any(cfg.hsv_gains):
            net = augment_hsv(net, cfg.hsv_gains, rng)
        if cfg.flip_lr > 0 and rng.random() < cfg.flip_lr:
            net, b = flip_lr(net, b)
    else:
        keep = np.flatnonzero(box_candidates(b, b, 1.0, cfg))
        b = b[keep]
    return net, b, keep
