"""postprocess_batch (torch ops on a batch, the accelerator path) against the compiled per-image
kernels: the same kept boxes in the same order, the same scores, embeddings equal to rounding."""

from __future__ import annotations

import numpy as np
import torch

from cstrack.model.postprocess import PostprocessConfig, postprocess_batch, postprocess_image


def clustered_predictions(rng: np.random.Generator, n: int, clusters: int) -> np.ndarray:
    """``[n, 6]`` decoded rows: boxes jittered around ``clusters`` centres (so that NMS suppresses
    chains of neighbours), scores spread across the threshold, some exact score ties."""
    centres = rng.uniform(40, 280, (clusters, 2))
    sizes = rng.uniform(15, 60, (clusters, 2))
    c = rng.integers(0, clusters, n)
    pred = np.empty((n, 6), np.float32)
    pred[:, :2] = centres[c] + rng.normal(0, 6, (n, 2))
    pred[:, 2:4] = sizes[c] * rng.uniform(0.8, 1.25, (n, 2))
    pred[:, 4] = rng.uniform(0.3, 1.0, n)
    pred[:, 5] = rng.uniform(0.5, 1.0, n)
    pred[::7, 4:] = pred[0, 4:]  # ties: the stable order must keep the input order
    return pred


def test_batch_equals_the_per_image_kernels() -> None:
    rng = np.random.default_rng(3)
    cfg = PostprocessConfig(conf_thres=0.4, nms_thres=0.6)
    preds = np.stack([clustered_predictions(rng, 300, k) for k in (3, 9, 1, 20)])
    preds[2, :, 4] = 0.1  # an image with no candidate at all
    embs = rng.standard_normal((4, 40, 40, 8)).astype(np.float32)
    got = postprocess_batch(torch.from_numpy(preds), torch.from_numpy(embs), cfg)
    assert len(got) == 4
    total = 0
    for b in range(4):
        xyxy, score, e = postprocess_image(preds[b], embs[b], cfg)
        gx, gs, ge = got[b]
        assert gx.shape == xyxy.shape and gs.shape == score.shape and ge.shape == e.shape
        np.testing.assert_array_equal(gx, xyxy)  # same set, same order, same float32 arithmetic
        np.testing.assert_array_equal(gs, score)
        np.testing.assert_allclose(ge, e, atol=1e-6)
        total += len(score)
    assert len(got[2][0]) == 0 and total > 10  # the test would be empty otherwise
    # NMS did suppress: fewer boxes than candidates above the threshold
    obj, s = preds[..., 4], preds[..., 4] * preds[..., 5]
    assert total < int(((obj > 0.4) & (s > 0.4)).sum())


def test_max_det_keeps_the_highest_scores() -> None:
    rng = np.random.default_rng(5)
    cfg = PostprocessConfig(conf_thres=0.3, nms_thres=0.6, max_det=4)
    pred = np.zeros((1, 50, 6), np.float32)
    pred[0, :, 0] = np.arange(50) * 100.0  # far apart: nothing suppressed
    pred[0, :, 1] = 50.0
    pred[0, :, 2:4] = 20.0
    pred[0, :, 4] = rng.uniform(0.5, 1.0, 50)
    pred[0, :, 5] = 1.0
    xyxy, score, _ = postprocess_batch(torch.from_numpy(pred), torch.ones(1, 10, 700, 2), cfg)[0]
    np.testing.assert_array_equal(score, np.sort(pred[0, :, 4])[::-1][:4])
    assert len(xyxy) == 4


def test_empty_batch_gives_empty_detections() -> None:
    got = postprocess_batch(torch.zeros(2, 10, 6), torch.zeros(2, 4, 4, 3), PostprocessConfig())
    assert [tuple(a.shape for a in g) for g in got] == [((0, 4), (0,), (0, 3))] * 2
