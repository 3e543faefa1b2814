"""Training augmentation (spec §8): resize modes, clipping, box filter, affine, HSV LUT, flip."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from cstrack.data.augment import (
    AugmentConfig,
    augment_hsv,
    clip_boxes,
    flip_lr,
    prepare_training_image,
    random_affine,
    resize_to_input,
)
from cstrack.errors import ConfigError


class _FixedDraws:
    """Stands in for numpy's Generator where a test needs known draws."""

    def __init__(self, uniform: list[float]) -> None:
        self._u = np.asarray(uniform, dtype=np.float64)

    def uniform(self, low: float, high: float, size: int) -> np.ndarray:
        return self._u[:size]


def _hsv_image(h: int, s: int, v: int) -> np.ndarray:
    return cv2.cvtColor(np.full((8, 8, 3), (h, s, v), np.uint8), cv2.COLOR_HSV2BGR)


def test_hsv_lut_by_hand() -> None:
    # draws u = (0.5, 0, 0.5) with gains (1.0, 0.5, 0.4) -> factors r = 1 + u * g = (1.5, 1.0, 1.2)
    img = _hsv_image(30, 200, 100)
    src = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)[0, 0].astype(int)
    out = augment_hsv(img, (1.0, 0.5, 0.4), _FixedDraws([0.5, 0.0, 0.5]))
    got = cv2.cvtColor(out, cv2.COLOR_BGR2HSV)[0, 0].astype(int)
    # hue 30 * 1.5 = 45, saturation unchanged, value 100 * 1.2 = 120 (+-2 for the uint8 round trips)
    assert abs(got[0] - int(src[0] * 1.5)) <= 2 and abs(got[1] - src[1]) <= 3 and abs(got[2] - int(src[2] * 1.2)) <= 2
    # hue wraps modulo 180: 170 * 1.1 = 187 -> 7; value saturates at 255: 240 * 1.2 -> 255
    img = _hsv_image(170, 200, 240)
    out = augment_hsv(img, (0.1, 0.5, 0.4), _FixedDraws([1.0, 0.0, 0.5]))
    got = cv2.cvtColor(out, cv2.COLOR_BGR2HSV)[0, 0].astype(int)
    src = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)[0, 0].astype(int)
    assert abs(got[0] - (int(src[0] * 1.1) % 180)) <= 2 and got[0] < 20
    assert got[2] == 255


def test_stretch_and_letterbox_geometry_by_hand() -> None:
    img = np.zeros((576, 768, 3), np.uint8)
    box = np.array([[0.0, 0.0, 768.0, 576.0], [384.0, 288.0, 480.0, 576.0]])
    out, b = resize_to_input(img, box, (1088, 608), "stretch")
    # x * 1088/768 = x * 1.41667, y * 608/576 = y * 1.05556
    assert out.shape == (608, 1088, 3)
    np.testing.assert_allclose(b, [[0, 0, 1088, 608], [544, 304, 680, 608]])
    out, b = resize_to_input(img, box, (1088, 608), "letterbox")
    # ratio = min(608/576, 1088/768) = 1.05556, image 811x608, pad left = round(138.5 - 0.1) = 138
    r = 608 / 576
    np.testing.assert_allclose(b, [[138, 0, 138 + 768 * r, 608], [138 + 384 * r, 288 * r, 138 + 480 * r, 608]])
    assert (out[:, :138] == 128).all() and (out[:, 138 + 811 :] == 128).all()
    with pytest.raises(ConfigError, match="resize"):
        resize_to_input(img, box, (1088, 608), "crop")  # type: ignore[arg-type]


def test_clip_and_box_filter_by_hand() -> None:
    img = np.zeros((64, 128, 3), np.uint8)
    boxes = np.array([
        [-10.0, 5.0, 20.0, 60.0],  # partly outside: x2 = 20 * 2 = 40, x1 clipped to 1 -> kept
        [60.0, 10.0, 61.0, 50.0],  # w = 1 * 2 = 2 px <= 2 -> dropped
        [10.0, 10.0, 110.0, 14.0],  # 200 x 8 px, aspect 25 >= 20 -> dropped
        [0.0, 0.0, 128.0, 64.0],  # the whole image -> [1, 1, 255, 127]
        [-50.0, 10.0, -5.0, 40.0],  # completely outside: clipped to zero width -> dropped
    ])
    net, b, keep = prepare_training_image(img, boxes, (256, 128), augment=False)
    assert keep.tolist() == [0, 3]
    np.testing.assert_allclose(b, [[1, 10, 40, 120], [1, 1, 255, 127]])
    # the identity affine of the augmenting path filters the same way and leaves the image alone
    cfg = AugmentConfig(hsv_gains=(0, 0, 0), flip_lr=0.0)
    net2, b2, keep2 = prepare_training_image(img, boxes, (256, 128), cfg=cfg, rng=np.random.default_rng(0))
    assert keep2.tolist() == [0, 3] and np.array_equal(b2, b) and np.array_equal(net2, net)
    np.testing.assert_allclose(clip_boxes(np.array([[-5, -5, 300, 300]]), (256, 128)), [[1, 1, 255, 127]])


def test_flip_mirrors_image_and_boxes() -> None:
    img = np.zeros((100, 200, 3), np.uint8)
    img[20:60, 30:50] = 255  # an object at x in [30, 50)
    out, b = flip_lr(img, np.array([[30.0, 20.0, 50.0, 60.0]]))
    np.testing.assert_allclose(b, [[150, 20, 170, 60]])  # x -> 200 - x, corners swapped
    ys, xs = np.nonzero(out[..., 0])
    assert (xs.min(), xs.max() + 1, ys.min(), ys.max() + 1) == (150, 170, 20, 60)
    # through the pipeline with p = 1: normalised cx -> 1 - cx, everything else unchanged
    cfg = AugmentConfig(hsv_gains=(0, 0, 0), flip_lr=1.0)
    _, b2, _ = prepare_training_image(img, np.array([[30.0, 20.0, 50.0, 60.0]]), (192, 96), cfg=cfg,
                                      rng=np.random.default_rng(1))
    np.testing.assert_allclose(b2, [[192 - 50 * 0.96, 20 * 0.96, 192 - 30 * 0.96, 60 * 0.96]])


def test_hsv_changes_pixels_not_boxes() -> None:
    rng_img = np.random.default_rng(0)
    img = rng_img.integers(0, 255, (96, 160, 3), dtype=np.uint8)
    boxes = np.array([[10.0, 10.0, 40.0, 80.0], [100.0, 5.0, 150.0, 90.0]])
    plain, b0, k0 = prepare_training_image(img, boxes, (160, 96), augment=False)
    cfg = AugmentConfig(flip_lr=0.0)  # HSV only
    jit, b1, k1 = prepare_training_image(img, boxes, (160, 96), cfg=cfg, rng=np.random.default_rng(3))
    assert np.array_equal(b0, b1) and np.array_equal(k0, k1)
    assert np.abs(jit.astype(int) - plain.astype(int)).mean() > 1.0


def test_random_affine_boxes_follow_the_pixels() -> None:
    img = np.zeros((240, 320, 3), np.uint8)
    box = np.array([[100.0, 60.0, 160.0, 180.0]])
    img[60:180, 100:160] = 255
    cfg = AugmentConfig(degrees=10, translate=0.1, scale=0.2, shear=0)
    for seed in range(5):
        out, b, keep = random_affine(img, box, cfg, np.random.default_rng(seed))
        assert keep.tolist() == [0]
        ys, xs = np.nonzero(out[..., 0] > 200)  # the border fill is 128
        # the box of the transformed corners is the bounding box of the transformed rectangle
        np.testing.assert_allclose(b[0], [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], atol=2.0)


def test_augment_config_validation() -> None:
    with pytest.raises(ConfigError, match="hsv_gains"):
        AugmentConfig(hsv_gains=(0.1, 0.2))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="flip_lr"):
        AugmentConfig(flip_lr=1.5)
    with pytest.raises(ConfigError, match="needs a random generator"):
        prepare_training_image(np.zeros((8, 8, 3), np.uint8), np.zeros((0, 4)), (32, 32))
