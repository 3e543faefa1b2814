"""Letterboxing: the compiled INTER_AREA resize gives OpenCV's pixels bit for bit; geometry and
padding."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from cstrack.data.letterbox import area_resize, area_tables, letterbox, letterbox_geometry

SHRINKS = [
    ((768, 576), (427, 320)),  # PETS09 at cstrack-n's 576x320
    ((1920, 1080), (1088, 612)),  # MOT17 at 1088x608
    ((1920, 1080), (576, 324)),
    ((640, 480), (427, 320)),
    ((1280, 720), (576, 324)),
    ((800, 600), (333, 250)),
    ((97, 61), (40, 33)),  # odd sizes, different factors per axis
]


@pytest.mark.parametrize(("src_wh", "dst_wh"), SHRINKS)
def test_area_resize_equals_opencv(src_wh: tuple[int, int], dst_wh: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(src_wh) + sum(dst_wh))
    w, h = src_wh
    tab = area_tables(src_wh, dst_wh)
    assert tab is not None
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8), np.full((h, w, 3), 255, np.uint8),
              (rng.random((h, w, 3)) < 0.5).astype(np.uint8) * 255]  # noise, saturation, hard edges
    for img in images:
        want = cv2.resize(img, dst_wh, interpolation=cv2.INTER_AREA)
        got = np.zeros_like(want)
        area_resize(img, got, tab)
        np.testing.assert_array_equal(got, want)


def test_opencv_paths_that_are_not_the_generic_area_loop_keep_calling_opencv() -> None:
    assert area_tables((768, 576), (384, 288)) is None  # factor 2 both ways: integer averaging
    assert area_tables((320, 240), (640, 480)) is None  # enlarging
    assert area_tables((768, 576), (800, 320)) is None  # enlarging one way
    assert area_tables((768, 576), (384, 289)) is not None


@pytest.mark.parametrize("net", [(576, 320), (1088, 608), (864, 480), (256, 160)])
def test_letterbox_of_real_frames_equals_the_opencv_letterbox(head8: Path, net: tuple[int, int]) -> None:
    """On the real PETS09 frames, and also into a strided canvas region and for a frame whose size
    needs no resize: every pixel as ``cv2.resize`` + constant padding gives."""
    for f in sorted((head8 / "img1").glob("*.jpg"))[:3]:
        frame = cv2.imread(str(f))
        got, meta = letterbox(frame, net)
        r, (nw, nh), (top, bottom, left, right) = letterbox_geometry((frame.shape[1], frame.shape[0]), net)
        resized = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_AREA)
        want = cv2.copyMakeBorder(resized, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(128, 128, 128))
        np.testing.assert_array_equal(got, want)
        assert meta.pad == (left, top) and meta.ratio == r
        out = np.empty((net[1], net[0], 3), np.uint8)
        assert letterbox(frame, net, out=out)[0] is out
        np.testing.assert_array_equal(out, want)
