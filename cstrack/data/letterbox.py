"""Letterbox resizing (spec §9.1): keep the aspect ratio, pad evenly to the network size.

The resize is OpenCV's ``INTER_AREA``.  For the usual case, a frame shrunk by a non-integer factor
(768x576 -> 427x320 for cstrack-n), OpenCV runs a scalar loop over a table of source-pixel weights
(~2.3 ms a frame, as much as decoding the JPEG); :func:`area_resize` is that loop compiled with the
same table and the same float32 operations in the same order, so its pixels are OpenCV's, bit for
bit (tests/data/test_letterbox.py), in about half the time.  Other cases (enlarging, integer
factors) keep calling OpenCV.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np

from cstrack.jit import kernel

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
    tables = area_tables((w0, h0), (new_w, new_h), frame_bgr.shape[2]) if frame_bgr.ndim == 3 else None
    if (new_w, new_h) == (w0, h0):
        region[...] = frame_bgr
    elif tables is not None and frame_bgr.dtype == np.uint8 and frame_bgr.flags.c_contiguous:
        area_resize(frame_bgr, region, tables)
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


# ---------------------------------------------------------------------------------------------
# INTER_AREA shrinking by a non-integer factor, compiled (OpenCV's resizeArea_ for uint8)


class AreaTables(NamedTuple):
    """OpenCV's area-resize weights (``computeResizeAreaTab``) for one (source, output) size, laid
    out for :func:`area_resize`.  Horizontally every output element ``e = x * cn + c`` sums ``T``
    taps in OpenCV's order (a tap with weight 0 pads the shorter cells: ``v + 0 = v`` exactly);
    vertically the output rows accumulate the horizontal sums of their source rows."""

    x_index: np.ndarray  # int64 [T, w * cn]: flat index into a source row (x * cn + c) of each tap
    x_weight: np.ndarray  # float32 [T, w * cn]
    y_dst: np.ndarray  # int64 [K]: output row of each vertical tap, non-decreasing
    y_src: np.ndarray  # int64 [K]: its source row
    y_weight: np.ndarray  # float32 [K]


def _area_tab(ssize: int, dsize: int, scale: float) -> list[tuple[int, int, np.float32]]:
    """``computeResizeAreaTab`` of OpenCV's resize.cpp (one channel): ``(dst, src, weight)`` taps,
    computed in double precision and rounded to float32 as OpenCV does."""
    tab = []
    for d in range(dsize):
        f1 = d * scale
        f2 = f1 + scale
        cell = min(scale, ssize - f1)
        s1, s2 = math.ceil(f1), math.floor(f2)
        s2 = min(s2, ssize - 1)
        s1 = min(s1, s2)
        if s1 - f1 > 1e-3:
            tab.append((d, s1 - 1, np.float32((s1 - f1) / cell)))
        for sx in range(s1, s2):
            tab.append((d, sx, np.float32(1.0 / cell)))
        if f2 - s2 > 1e-3:
            tab.append((d, s2, np.float32(min(min(f2 - s2, 1.0), cell) / cell)))
    return tab


@functools.lru_cache(maxsize=16)
def area_tables(src_wh: tuple[int, int], dst_wh: tuple[int, int], cn: int = 3) -> AreaTables | None:
    """The tables of ``cv2.resize(src, dst_wh, interpolation=INTER_AREA)`` for a ``src_wh`` image of
    ``cn`` channels when OpenCV takes its generic area path (shrinking both ways, not by integer
    factors both ways), else ``None`` (cached, read-only)."""
    (sw, sh), (dw, dh) = src_wh, dst_wh
    scale_x, scale_y = 1.0 / (dw / sw), 1.0 / (dh / sh)  # OpenCV: 1 / inv_scale, inv_scale = dst / src
    if scale_x < 1 or scale_y < 1:
        return None
    if abs(scale_x - round(scale_x)) < np.finfo(np.float64).eps and abs(scale_y - round(scale_y)) < np.finfo(np.float64).eps:
        return None  # resizeAreaFast: integer averaging, another computation
    xtab = _area_tab(sw, dw, scale_x)
    taps = np.bincount([d for d, _, _ in xtab], minlength=dw)
    t_max = int(taps.max())
    index = np.zeros((t_max, dw), np.int64)
    weight = np.zeros((t_max, dw), np.float32)
    filled = np.zeros(dw, np.int64)
    for d, sx, a in xtab:
        index[filled[d], d], weight[filled[d], d] = sx, a
        filled[d] += 1
    for d in range(dw):  # padding taps: weight 0 on the cell's last source pixel
        index[filled[d]:, d] = index[filled[d] - 1, d]
    x_index = (index[:, :, None] * cn + np.arange(cn)).reshape(t_max, dw * cn)
    x_weight = np.repeat(weight, cn, axis=1)
    ytab = _area_tab(sh, dh, scale_y)
    y = [np.array([t[k] for t in ytab], dt) for k, dt in ((0, np.int64), (1, np.int64), (2, np.float32))]
    arrays = [np.ascontiguousarray(t) for t in (x_index, x_weight, *y)]
    for table in arrays:
        table.flags.writeable = False
    return AreaTables(*arrays)


_U8_LO, _U8_HI = np.float32(0.0), np.float32(255.0)


@kernel
def area_resize(src: np.ndarray, dst: np.ndarray, tab: AreaTables) -> None:
    """``dst [h, w, cn] = cv2.resize(src [H, W, cn], (w, h), interpolation=INTER_AREA)`` for uint8
    images, with ``tab = area_tables((W, H), (w, h), cn)``; ``src`` C-contiguous, ``dst`` any view
    (e.g. the letterbox canvas's inner region).

    OpenCV's ``ResizeArea_Invoker`` step for step in float32: each source row's horizontal sums
    (``buf = ((0 + s0 * a0) + s1 * a1) + ...``), accumulated into the output row (``sum = b0 * buf0``,
    then ``sum + b * buf``), rounded half to even and saturated.  A source row feeding two output
    rows is summed horizontally once (OpenCV sums it twice: the same numbers)."""
    sh = src.shape[0]
    w, cn = dst.shape[1], dst.shape[2]
    n = w * cn
    rows = src.reshape(sh, src.shape[1] * cn)
    buf = np.zeros(n, np.float32)
    acc = np.zeros(n, np.float32)
    taps = tab.x_index.shape[0]
    prev = tab.y_dst[0]
    last_src = -1
    for j in range(tab.y_dst.shape[0]):
        beta, dy, sy = tab.y_weight[j], tab.y_dst[j], tab.y_src[j]
        if sy != last_src:
            r = rows[sy]
            for e in range(n):
                buf[e] = np.float32(r[tab.x_index[0, e]]) * tab.x_weight[0, e]
            for t in range(1, taps):
                for e in range(n):
                    buf[e] = buf[e] + np.float32(r[tab.x_index[t, e]]) * tab.x_weight[t, e]
            last_src = sy
        if dy != prev:
            for x in range(w):
                for c in range(cn):
                    dst[prev, x, c] = np.uint8(min(max(np.rint(acc[x * cn + c]), _U8_LO), _U8_HI))
            for e in range(n):
                acc[e] = beta * buf[e]
            prev = dy
        else:
            for e in range(n):
                acc[e] = acc[e] + beta * buf[e]
    for x in range(w):
        for c in range(cn):
            dst[prev, x, c] = np.uint8(min(max(np.rint(acc[x * cn + c]), _U8_LO), _U8_HI))


def warm_up() -> None:
    """Compile (or load from numba's cache) :func:`area_resize` for the argument types letterboxing
    passes (:mod:`cstrack.precompile`)."""
    letterbox(np.zeros((72, 96, 3), np.uint8), (64, 32))
