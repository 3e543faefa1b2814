"""BN folding: hand-computed single conv, the CSP's BN over a concatenation, whole variants."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cstrack.infer.fold import fold_batchnorm, fold_conv_bn
from cstrack.model import build_model
from cstrack.model.blocks import BottleneckCSP, Conv


def _randomise_bn(model: nn.Module, seed: int = 0) -> None:
    """Non-trivial running statistics and affine parameters (a fresh BN is the identity-ish map)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(c, generator=g) + 0.5)
                m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.copy_(torch.randn(c, generator=g) * 0.1)


def test_fold_conv_bn_hand_computed() -> None:
    """1x1 conv, one channel: w = 2, BN(mean 1, var 3, eps 1, gamma 4, beta 5):
    y = (2x - 1) * 4 / sqrt(3 + 1) + 5 = 4x + 3 -> folded w = 4, b = 3."""
    conv = nn.Conv2d(1, 1, 1, bias=False)
    bn = nn.BatchNorm2d(1, eps=1.0)
    with torch.no_grad():
        conv.weight.fill_(2.0)
        bn.running_mean.fill_(1.0)
        bn.running_var.fill_(3.0)
        bn.weight.fill_(4.0)
        bn.bias.fill_(5.0)
    fold_conv_bn(conv, bn.eval())
    assert conv.weight.item() == pytest.approx(4.0)
    assert conv.bias is not None and conv.bias.item() == pytest.approx(3.0)


def test_fold_conv_block_and_csp_concat_bn() -> None:
    torch.manual_seed(0)
    block = nn.Sequential(Conv(8, 16, 3), BottleneckCSP(16, 32, n=2)).eval()
    _randomise_bn(block)
    x = torch.randn(2, 8, 12, 20)
    with torch.no_grad():
        ref = block(x)
        folded = fold_batchnorm(block)
        out = folded(x)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    # the CSP's BN over cat(cv3, cv2) went half into cv3 and half into cv2 (both gained a bias)
    csp = folded[1]
    assert csp.cv3.bias is not None and csp.cv2.bias is not None
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    # the original is untouched (a copy was folded)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in block.modules()) == 1 + 3 + 2 * 2  # Conv; CSP cv1, cv4, bn; 2 x 2 bottleneck Convs


@pytest.mark.parametrize(("variant", "size"), [("cstrack-n", (320, 192)), ("cstrack-s", (256, 160)), ("jde-l", (128, 96))])
def test_fold_whole_variant_same_outputs(variant: str, size: tuple[int, int]) -> None:
    torch.manual_seed(1)
    model = build_model(variant).eval()
    _randomise_bn(model, seed=2)
    x = torch.rand(1, 3, size[1], size[0])
    with torch.no_grad():
        emb, raw = model(x)
        f_emb, f_raw = fold_batchnorm(model)(x)
    torch.testing.assert_close(f_emb, emb, rtol=1e-4, atol=1e-5)
    for a, b in zip(f_raw, raw, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
