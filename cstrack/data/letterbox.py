"""Letterbox resizing (spec §9.1): keep the aspect ratio, pad evenly to the network size."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# SOTS pads with 127.5; cv2 saturates that to 128 on uint8 images.
PAD_VALUE = 127.5


@dataclass(frozen=True)
class LetterboxMeta:
    """Geometry of a letterbox: ``net = frame * ratio + pad`` (pad = (left, top) in net px)."""

    ratio: float
    pad: tuple[float, float]
    frame_size: tuple[int, int]  # (width, height) of the original frame
    net_size: tuple[int, int]  # (width, height) of the network input


def letterbox_geometry(frame_wh: tuple[int, int], net_wh: tuple[int, int]) -> tuple[float, tuple[int, int], tuple[int, int, int, int]]:
    """Return ``(ratio, (new_w, new_h), (top, bottom, left, right))`` for a frame of ``frame_wh``."""
    w0, h0 = frame_wh
    W, H = net_wh
    r = min(H / h0, W / w0)
    new_w, new_h = round(w0 * r), round(h0 * r)
    dw, dh = (W - new_w) / 2, (H - new_h) / 2
    top, bottom = round(dh - 0.1), round(dh + 0.1)
    left, right = round(dw - 0.1), round(dw + 0.1)
    return r, (new_w, new_h), (top, bottom, left, right)


def letterbox(frame_bgr: np.ndarray, net_wh: tuple[int, int], out: np.ndarray | None = None) -> tuple[np.ndarray, LetterboxMeta]:
    """Resize ``frame_bgr`` (uint8 [h0, w0, 3]) into a padded uint8 [H, W, 3] image (still BGR).

    INTER_AREA resize, even padding with value 127.5 (stored as 128).  ``out`` (uint8 [H, W, 3])
    is filled in place when given, avoiding a per-frame allocation.
    """
    h0, w0 = frame_bgr.shape[:2]
    W, H = net_wh
    r, (new_w, new_h), (top, bottom, left, right) = letterbox_geometry((w0, h0), net_wh)
    if out is None:
        out = np.empty((H, W, 3), dtype=np.uint8)
    if top + bottom + new_h != H or left + right + new_w != W:  # pragma: no cover - geometry invariant
        raise AssertionError("letterbox geometry does not add up")
    out[:top] = 128
    out[top + new_h :] = 128
    out[:, :left] = 128
    out[:, left + new_w :] = 128
    region = out[top : top + new_h, left : left + new_w]
    if (new_w, new_h) == (w0, h0):
        region[...] = frame_bgr
    else:
        cv2.resize(frame_bgr, (new_w, new_h), dst=region, interpolation=cv2.INTER_AREA)
    return out, LetterboxMeta(r, (float(left), float(top)), (w0, h0), (W, H))


def to_input(img_bgr: np.ndarray) -> np.ndarray:
    """uint8 BGR [H, W, 3] -> float32 RGB [1, 3, H, W] in [0, 1] (no mean/std, spec §1)."""
    rgb = img_bgr[:, :, ::-1].transpose(2, 0, 1)
    return np.ascontiguousarray(rgb, dtype=np.float32)[None] / np.float32(255.0)


def boxes_to_frame(xyxy_net: np.ndarray, meta: LetterboxMeta) -> np.ndarray:
    """Map xyxy boxes from network pixels to frame pixels (subtract pad, divide by ratio; no clipping)."""
    b = np.asarray(xyxy_net, dtype=np.float32).copy()
    b[:, [0, 2]] -= meta.pad[0]
    b[:, [1, 3]] -= meta.pad[1]
    b /= meta.ratio
    return b


def boxes_to_net(xyxy_frame: np.ndarray, meta: LetterboxMeta) -> np.ndarray:
    """Inverse of :func:`boxes_to_frame`."""
    b = np.asarray(xyxy_frame, dtype=np.float32) * meta.ratio
    b[:, [0, 2]] += meta.pad[0]
    b[:, [1, 3]] += meta.pad[1]
    return b
