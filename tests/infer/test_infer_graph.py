"""The specialised inference graph: pooling matrices, NCHW and channels-last equivalence with the
eager model + decoder, and the fast detector on real frames."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cstrack.infer.fast import FastDetector
from cstrack.infer.graph import (
    FixedAdaptiveAvgPool2d,
    InferenceChannelAttention,
    adaptive_pool_matrix,
    inference_model,
    to_channels_last,
)
from cstrack.model import CSTrackModel, build_model
from cstrack.model.detector import ModelDetector
from cstrack.model.saan import ChannelAttention
from tests.infer.conftest import N_SIZE


def test_pool_matrix_hand_computed_overlapping_bins() -> None:
    """5 inputs into 3 bins: [0, 2), [1, 4), [3, 5) (PyTorch's floor/ceil rule; bins overlap)."""
    expected = torch.tensor([
        [1 / 2, 1 / 2, 0, 0, 0],
        [0, 1 / 3, 1 / 3, 1 / 3, 0],
        [0, 0, 0, 1 / 2, 1 / 2],
    ])
    torch.testing.assert_close(adaptive_pool_matrix(5, 3), expected)


@pytest.mark.parametrize("hw", [(76, 136), (40, 72), (19, 34), (10, 18), (6, 10), (5, 9)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_fixed_pool_equals_adaptive_avg_pool(hw: tuple[int, int], channels_last: bool) -> None:
    x = torch.randn(2, 7, *hw)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    out = FixedAdaptiveAvgPool2d(hw, (6, 10))(x)
    torch.testing.assert_close(out, F.adaptive_avg_pool2d(x, (6, 10)), rtol=1e-5, atol=1e-6)


def _eager(model: CSTrackModel, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    emb, raw = model(x)
    return emb, model.decode(raw)


@pytest.mark.parametrize(("variant", "size"), [("cstrack-n", (576, 320)), ("cstrack-s", (320, 192)), ("jde-l", (192, 128))])
def test_inference_model_nchw_and_channels_last_match_eager(variant: str, size: tuple[int, int]) -> None:
    torch.manual_seed(3)
    model = build_model(variant).eval()
    x = torch.rand(1, 3, size[1], size[0])
    net = inference_model(model, size)
    with torch.inference_mode():
        emb, pred = _eager(model, x)
        emb1, pred1 = net(x)
        net_cl = to_channels_last(inference_model(model, size))
        x_cl = x.contiguous(memory_format=torch.channels_last)
        emb2, pred2 = net_cl(x_cl)
    assert net_cl.net.trunk[1].conv.weight.is_contiguous(memory_format=torch.channels_last)
    for e, p in ((emb1, pred1), (emb2, pred2)):
        assert e.shape == emb.shape and p.shape == pred.shape
        torch.testing.assert_close(e, emb, rtol=1e-4, atol=1e-5)
        # boxes are pixels (up to a few hundred): 1e-4 relative is float32 rounding
        torch.testing.assert_close(p, pred, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "switches",
    [{"ren_self": False}, {"ren_cross": False}, {"ren_lambda": 0.3}, {"ren": "conv"}, {"ren": "none"},
     {"saan_fused": "both"}, {"emb_head": "jde"}],
)
def test_inference_model_matches_eager_for_ablation_switches(switches: dict) -> None:
    torch.manual_seed(4)
    model = build_model("cstrack-n", **switches).eval()
    x = torch.rand(1, 3, 192, 320)
    with torch.inference_mode():
        emb, pred = _eager(model, x)
        for net, xx in ((inference_model(model, (320, 192)), x),
                        (to_channels_last(inference_model(model, (320, 192))), x.contiguous(memory_format=torch.channels_last))):
            e, p = net(xx)
            torch.testing.assert_close(e, emb, rtol=1e-4, atol=1e-5)
            torch.testing.assert_close(p, pred, rtol=1e-4, atol=1e-4)


def test_fast_detector_matches_eager_on_real_frames(coco_n: CSTrackModel, head8_frames: list[np.ndarray]) -> None:
    eager = ModelDetector(coco_n, N_SIZE)
    fast = FastDetector(coco_n, N_SIZE)
    total = 0
    for frame in head8_frames[:4]:
        pe, pf = eager.preprocess(frame), fast.preprocess(frame)
        # the reused NHWC input buffer holds exactly the eager input (same letterbox, same /255)
        assert torch.equal(pf.tensor, pe.tensor)
        de = eager.postprocess(eager.forward(pe), pe)
        df = fast.postprocess(fast.forward(pf), pf)
        assert len(df) == len(de)
        np.testing.assert_allclose(df.xyxy, de.xyxy, atol=1e-3)
        np.testing.assert_allclose(df.scores, de.scores, atol=1e-5)
        np.testing.assert_allclose(df.embeddings, de.embeddings, atol=1e-4)
        total += len(de)
    assert total > 4  # real pedestrians were found, so the comparison had boxes to compare


def test_channel_attention_weights_are_public_and_shared_by_the_inference_graph() -> None:
    torch.manual_seed(0)
    att = ChannelAttention(6).eval()
    x = torch.randn(2, 6, 5, 4)
    with torch.no_grad():
        w = att.channel_weights(x)
        # by hand: the shared MLP over the pooled vectors (a 1-channel sequence of length C)
        mlp = [att.fc(att.act(att.norm(att.conv(v.unsqueeze(1))))) for v in (x.mean(dim=(2, 3)), x.amax(dim=(2, 3)))]
        expected = torch.sigmoid(mlp[0] + mlp[1]).squeeze(1)
        assert w.shape == (2, 6)
        torch.testing.assert_close(w, expected, rtol=0, atol=0)
        torch.testing.assert_close(att(x), x * w[:, :, None, None] + x)
        torch.testing.assert_close(InferenceChannelAttention(att)(x), att(x), rtol=1e-6, atol=1e-6)
