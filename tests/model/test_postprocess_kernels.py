"""The compiled post-processing (cstrack/model/postprocess_kernels.py) against the NumPy reference:
identical boxes, scores and kept set; embeddings equal to rounding."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from cstrack.model import build_model
from cstrack.model.detector import ModelDetector
from cstrack.model.postprocess import (
    PostprocessConfig,
    diou_matrix,
    postprocess_image,
    postprocess_image_reference,
)
from cstrack.model.weights import load_coco_yolov5n


def assert_same(a: tuple[np.ndarray, ...], b: tuple[np.ndarray, ...]) -> None:
    assert a[0].dtype == a[1].dtype == a[2].dtype == np.float32
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[2].shape == b[2].shape
    np.testing.assert_allclose(a[2], b[2], rtol=0, atol=1e-6)


def test_real_frames_match_the_reference(head8: Path) -> None:
    """cstrack-n (COCO trunk, seeded random REN in front of the COCO head) on the 8 PETS09 frames at
    576x320: every frame's detections.  The random REN makes about 20 overlapping boxes a frame for 3
    people (``--weights coco`` switches REN off): a crowded case for the NMS comparison."""
    torch.manual_seed(0)
    det = ModelDetector(load_coco_yolov5n(build_model("cstrack-n")), (576, 320))
    total = 0
    for f in sorted((head8 / "img1").glob("*.jpg")):
        prep = det.preprocess(cv2.imread(str(f), cv2.IMREAD_COLOR))
        emb, pred = det.forward(prep)
        for cfg in (PostprocessConfig(), PostprocessConfig(conf_thres=0.3, nms_thres=0.4, max_det=7)):
            got = postprocess_image(pred[0], emb[0], cfg)
            assert_same(got, postprocess_image_reference(pred[0], emb[0], cfg))
            # the same from NumPy arrays (the ONNX Runtime paths)
            assert_same(postprocess_image(pred[0].numpy(), emb[0].numpy(), cfg), got)
            total += len(got[0]) if cfg.max_det > 7 else 0
    assert total > 8 * 10  # people found (about 20 a frame), so the comparison had content


@pytest.mark.parametrize("seed", range(40))
def test_crowded_random_predictions(seed: int) -> None:
    """Hundreds of overlapping candidates, tied scores, thresholds on both sides of 0 and a
    max_det that cuts: NMS iterates several rounds."""
    rng = np.random.default_rng(seed)
    n = 600
    pred = np.empty((n, 6), np.float32)
    pred[:, :2] = rng.uniform(0, 150, (n, 2))
    pred[:, 2:4] = rng.uniform(4, 60, (n, 2))
    pred[:, 4:] = rng.uniform(0.3, 1.0, (n, 2))
    pred[rng.integers(0, n, 80), 4:] = np.float32(0.9)  # exact ties in the score
    emb = rng.standard_normal((20, 20, 24)).astype(np.float32)
    for conf, nms, max_det in [(0.5, 0.6, 300), (0.35, 0.2, 40), (0.4, -0.2, 300), (0.6, 0.95, 5)]:
        cfg = PostprocessConfig(conf_thres=conf, nms_thres=nms, max_det=max_det)
        got = postprocess_image(pred, emb, cfg)
        assert_same(got, postprocess_image_reference(pred, emb, cfg))
        if len(got[0]) > 1 and nms > 0:
            assert diou_matrix(got[0]).max() <= nms


def test_no_candidates_and_one_candidate() -> None:
    emb = np.ones((4, 4, 8), np.float32)
    pred = np.zeros((10, 6), np.float32)
    xyxy, score, e = postprocess_image(pred, emb, PostprocessConfig())
    assert xyxy.shape == (0, 4) and score.shape == (0,) and e.shape == (0, 8)
    pred[3] = [16, 8, 8, 4, 0.9, 0.8]  # one box, centre (16, 8) -> cell (row 1, col 2)
    emb[1, 2] = np.arange(8)
    xyxy, score, e = postprocess_image(pred, emb, PostprocessConfig())
    assert xyxy.tolist() == [[12.0, 6.0, 20.0, 10.0]]
    assert score.tolist() == [np.float32(0.9) * np.float32(0.8)]
    np.testing.assert_allclose(e[0], np.arange(8) / np.linalg.norm(np.arange(8)), rtol=1e-6)
