"""Output shapes, input-size validation and gradient flow of the model family."""

from __future__ import annotations

import pytest
import torch

from cstrack.errors import ConfigError
from cstrack.losses import CSTrackLoss
from cstrack.model import build_model
from cstrack.model.complexity import count_flops


@pytest.mark.parametrize("variant", ["jde-l", "cstrack-l", "cstrack-s", "cstrack-n"])
@pytest.mark.parametrize(("w", "h"), [(1088, 608), (576, 320)])
def test_output_shapes(variant: str, w: int, h: int) -> None:
    _, _, shapes = count_flops(build_model(variant), (w, h))  # runs the forward on the meta device
    d = {"cstrack-n": 128}.get(variant, 512)
    assert shapes["emb"] == [1, h // 8, w // 8, d]
    for level, s in zip((3, 4, 5), (8, 16, 32), strict=True):
        assert shapes[f"P{level}"] == [1, 3, h // s, w // s, 6]


def test_real_forward_shapes_and_decode_count() -> None:
    model = build_model("cstrack-n").eval()
    with torch.no_grad():
        emb, raw = model(torch.rand(2, 3, 320, 576))
        pred = model.decode(raw)
    assert emb.shape == (2, 40, 72, 128)
    assert [tuple(r.shape) for r in raw] == [(2, 3, 40, 72, 6), (2, 3, 20, 36, 6), (2, 3, 10, 18, 6)]
    assert pred.shape == (2, 3 * (40 * 72 + 20 * 36 + 10 * 18), 6)


@pytest.mark.parametrize(("w", "h"), [(1000, 600), (1088, 600), (100, 64)])
def test_sizes_not_multiple_of_32_are_rejected_naming_the_size(w: int, h: int) -> None:
    model = build_model("cstrack-n")
    with pytest.raises(ConfigError, match=f"{w}x{h}"):
        model(torch.zeros(1, 3, h, w))
    with pytest.raises(ConfigError, match=f"{w}x{h}"):
        count_flops(model, (w, h))


def test_unknown_variant_and_field_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="cstrack-xl"):
        build_model("cstrack-xl")
    with pytest.raises(ConfigError, match="bogus"):
        build_model("cstrack-n", bogus=1)


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"ren": "none", "emb_head": "jde"},
        {"ren": "conv", "saan_fused": "both", "saan_level_cam": True},
        {"ren_lambda": 0.5},
        {"ren_cross": False},
    ],
    ids=["cstrack", "jde", "conv+both", "fixed-lambda", "self-only"],
)
def test_every_parameter_receives_a_gradient(overrides: dict) -> None:
    torch.manual_seed(0)
    model = build_model("cstrack-n", **overrides).train()
    loss_fn = CSTrackLoss(model.emb_dim, num_ids=6, anchors_grid=model.detect.anchors_grid())
    x = torch.rand(2, 3, 128, 160)
    # (image, identity, cx, cy, w, h), normalised; identity 0 = unlabelled box
    targets = torch.tensor(
        [[0, 1, 0.30, 0.50, 0.10, 0.40], [0, 2, 0.62, 0.45, 0.12, 0.50], [1, 3, 0.50, 0.50, 0.20, 0.60],
         [1, 0, 0.20, 0.30, 0.05, 0.20], [1, 5, 0.80, 0.70, 0.30, 0.55]]
    )
    emb, raw = model(x)
    total, parts = loss_fn(emb, raw, targets)
    total.backward()
    assert torch.isfinite(total)
    assert all(float(v) > 0 for k, v in parts.items())
    params = list(model.named_parameters()) + [("classifier." + n, p) for n, p in loss_fn.named_parameters()]
    missing = [n for n, p in params if p.grad is None or not torch.isfinite(p.grad).all() or p.grad.abs().sum() == 0]
    assert missing == []
