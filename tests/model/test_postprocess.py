"""Decode, Cluster-DIoU NMS and the embedding gather on hand-computed cases; the compiled kernels
(select_boxes, gather_normalised) against the NumPy reference beside them: identical boxes, scores
and kept set, embeddings equal to rounding."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from cstrack.model import build_model
from cstrack.model.detect import decode
from cstrack.model.detector import ModelDetector
from cstrack.model.postprocess import (
    NmsSettings,
    PostprocessConfig,
    cluster_diou_nms,
    diou_matrix,
    filter_scores,
    gather_embeddings,
    gather_normalised,
    nms_settings,
    postprocess_image,
    postprocess_image_reference,
    select_boxes,
)
from cstrack.model.weights import load_coco_yolov5n


def test_decode_zero_logits() -> None:
    # all logits 0 -> sigmoid 0.5: cx = (2*0.5 - 0.5 + gx) * s, w = (2*0.5)^2 * aw = aw
    raw = [torch.zeros(1, 2, 2, 3, 6)]
    anchors = torch.tensor([[[10.0, 20.0], [30.0, 40.0]]])
    out = decode(raw, anchors, torch.tensor([8.0]))
    assert out.shape == (1, 2 * 2 * 3, 6)
    # order: (anchor, row, col); row 1 col 2 of anchor 1 is index 1*6 + 1*3 + 2 = 11
    assert out[0, 11].tolist() == [(0.5 + 2) * 8, (0.5 + 1) * 8, 30.0, 40.0, 0.5, 0.5]
    assert out[0, 0].tolist() == [4.0, 4.0, 10.0, 20.0, 0.5, 0.5]


def test_decode_extreme_logits() -> None:
    raw = [torch.full((1, 1, 1, 1, 6), 50.0)]  # sigmoid -> 1
    out = decode(raw, torch.tensor([[[10.0, 20.0]]]), torch.tensor([16.0]))
    # cx = (2 - 0.5 + 0) * 16 = 24; w = (2 * 1)^2 * 10 = 40
    assert out[0, 0].tolist() == [24.0, 24.0, 40.0, 80.0, 1.0, 1.0]


def test_filter_requires_objectness_and_score_above_threshold() -> None:
    pred = torch.tensor(
        [[10, 10, 4, 8, 0.9, 0.9], [10, 10, 4, 8, 0.9, 0.5], [10, 10, 4, 8, 0.4, 1.0], [20, 20, 2, 2, 0.8, 0.7]]
    )
    xyxy, score = filter_scores(pred, 0.5)
    # row 1: 0.45 <= 0.5 dropped; row 2: obj 0.4 dropped; row 3: 0.56 kept
    assert score.tolist() == pytest.approx([0.81, 0.56], abs=1e-6)
    assert xyxy.tolist() == [[8, 6, 12, 14], [19, 19, 21, 21]]


def test_diou_matrix_hand_computed() -> None:
    b = torch.tensor([[0.0, 0, 10, 10], [1, 0, 11, 10]])
    m = diou_matrix(b)
    # IoU = 90 / 110; rho^2 = 1; enclosing diagonal^2 = 11^2 + 10^2 = 221
    expected = 90 / 110 - (1 / (221 + 1e-7)) ** 0.7
    assert math.isclose(float(m[0, 1]), expected, rel_tol=1e-5)
    assert float(m[1, 0]) == 0.0 and float(m[0, 0]) == 0.0


def test_cluster_nms_suppressed_boxes_do_not_suppress() -> None:
    boxes = torch.tensor(
        [
            [0.0, 0, 10, 10],  # A 0.9
            [1, 0, 11, 10],  # B 0.8: DIoU(A, B) = 0.795 > 0.6 -> suppressed by A
            [20, 0, 30, 10],  # C 0.6: no overlap
            [2.5, 0, 12.5, 10],  # E 0.7: DIoU(A, E) = 0.526 (kept); DIoU(B, E) = 0.700 but B is gone
        ]
    )
    scores = torch.tensor([0.9, 0.8, 0.6, 0.7])
    keep = cluster_diou_nms(boxes, scores, 0.6)
    assert keep.tolist() == [0, 3, 2]  # descending score


def test_cluster_nms_empty_and_max_det() -> None:
    assert cluster_diou_nms(np.zeros((0, 4)), np.zeros(0), 0.6).shape == (0,)
    far = np.array([[i * 20.0, 0, i * 20 + 10, 10] for i in range(5)])
    assert cluster_diou_nms(far, np.linspace(1, 0.5, 5), 0.6, max_det=3).tolist() == [0, 1, 2]
    # equal scores keep the input order
    assert cluster_diou_nms(far, np.full(5, 0.7), 0.6).tolist() == [0, 1, 2, 3, 4]


def test_gather_clamps_to_the_map_and_normalises() -> None:
    h, w, d = 4, 6, 3
    emb = torch.arange(h * w * d, dtype=torch.float32).view(h, w, d) + 1
    boxes = torch.tensor(
        [
            [-20.0, -20, 10, 10],  # centre (-5, -5) -> cell (0, 0) (SOTS would wrap around, Q2)
            [190, 190, 210, 210],  # centre (200, 200) -> clamped to (row 3, col 5)
            [8, 16, 16, 24],  # centre (12, 20) -> col floor(12/8) = 1, row floor(20/8) = 2
        ]
    )
    out = gather_embeddings(emb, boxes.numpy())
    expected = torch.nn.functional.normalize(torch.stack([emb[0, 0], emb[3, 5], emb[2, 1]]), dim=1).numpy()
    assert out.dtype == np.float32 and np.allclose(out, expected, atol=1e-7)
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0)
    # a NumPy map gives the same rows as a tensor map
    assert np.array_equal(gather_embeddings(emb.numpy(), boxes.numpy()), out)


def test_postprocess_image_from_tensors_and_arrays_agree() -> None:
    """The decoded output of a real model path: tensors (eager) and arrays (ONNX Runtime) give the
    same detections, by descending score, each embedding of unit length."""
    g = torch.Generator().manual_seed(0)
    n = 500
    ctr = torch.rand(n, 2, generator=g) * torch.tensor([200.0, 120.0])  # crowded: NMS has work
    wh = 10 + torch.rand(n, 2, generator=g) * 60
    conf = torch.rand(n, 2, generator=g)
    pred = torch.cat([ctr, wh, conf], dim=1)
    emb = torch.randn(40, 72, 16, generator=g)
    cfg = PostprocessConfig(conf_thres=0.5, nms_thres=0.6)
    a = postprocess_image(pred, emb, cfg)
    b = postprocess_image(pred.numpy(), emb.numpy(), cfg)
    for x, y in zip(a, b, strict=True):
        assert x.dtype == np.float32 and np.array_equal(x, y)
    xyxy, score, e = a
    assert 0 < len(score) < int(((conf[:, 0] * conf[:, 1]) > 0.5).sum())  # NMS removed some
    assert np.all(np.diff(score) <= 0) and np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-6)
    # no kept pair overlaps beyond the threshold
    m = diou_matrix(xyxy)
    assert m.max() <= 0.6


# --- the compiled kernels against the reference

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


def test_kernels_read_the_settings_record() -> None:
    """``nms_settings`` gives the kernel's types (float32 thresholds: a float64 0.6 would compare
    differently with float32 DIoU values); calling the kernels with a record directly is
    :func:`postprocess_image`."""
    cfg = PostprocessConfig(conf_thres=0.4, nms_thres=0.3, max_det=3)
    nms = nms_settings(cfg)
    assert nms == NmsSettings(np.float32(0.4), np.float32(0.3), np.float32(0.7), 200, 3)
    assert all(type(v) is np.float32 for v in nms[:3]) and nms_settings(cfg) is nms
    rng = np.random.default_rng(1)
    pred = np.empty((50, 6), np.float32)
    pred[:, :2] = rng.uniform(0, 80, (50, 2))
    pred[:, 2:4] = rng.uniform(8, 30, (50, 2))
    pred[:, 4:] = rng.uniform(0.5, 1.0, (50, 2))
    emb = rng.standard_normal((10, 10, 6)).astype(np.float32)
    xyxy, score = select_boxes(pred, nms)
    assert len(xyxy) == 3  # max_det cuts
    want = postprocess_image_reference(pred, emb, cfg)
    np.testing.assert_array_equal(xyxy, want[0])
    np.testing.assert_array_equal(score, want[1])
    np.testing.assert_allclose(gather_normalised(emb, xyxy, 8), want[2], rtol=0, atol=1e-6)
