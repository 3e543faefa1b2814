"""Batch-norm folding: every inference-mode BatchNorm2d merged into the convolution in front of it.

For a convolution ``y = W x + b`` followed by ``BN(y) = (y - mu) g / sqrt(var + eps) + beta`` the
folded convolution has ``W' = W s`` and ``b' = (b - mu) s + beta`` with ``s = g / sqrt(var + eps)``
(one scale per output channel).  Two places in the model family carry a BN:

- :class:`~cstrack.model.blocks.Conv` (conv -> BN -> act): folded into ``conv``;
- :class:`~cstrack.model.blocks.BottleneckCSP`'s BN over ``cat(cv3(...), cv2(x))``: its first half
  is folded into ``cv3``, its second half into ``cv2`` (a per-channel affine map commutes with the
  concatenation).

The BN modules are replaced by ``nn.Identity`` so the modules' own ``forward`` keeps working.
"""

from __future__ import annotations

import copy
from typing import TypeVar

import torch
from torch import nn

from cstrack.model.blocks import BottleneckCSP, Conv

M = TypeVar("M", bound=nn.Module)


@torch.no_grad()
def fold_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d, channels: slice | None = None) -> None:
    """Fold ``bn`` (or its ``channels`` slice, matching ``conv``'s outputs) into ``conv`` in place.

    ``conv`` gains a bias when it had none.  ``bn`` must be in inference form (running statistics).
    """
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("fold_conv_bn: a BN without running statistics (track_running_stats=False) cannot be folded")
    sl = channels if channels is not None else slice(0, bn.num_features)
    mean = bn.running_mean[sl]
    var = bn.running_var[sl]
    gamma = bn.weight[sl] if bn.affine else torch.ones_like(mean)
    beta = bn.bias[sl] if bn.affine else torch.zeros_like(mean)
    if mean.numel() != conv.out_channels:
        raise ValueError(f"BN slice has {mean.numel()} channels, conv produces {conv.out_channels}")
    scale = gamma / torch.sqrt(var + bn.eps)
    w = conv.weight
    conv.weight.copy_(w * scale.view(-1, *([1] * (w.dim() - 1))).to(w.dtype))
    bias = conv.bias if conv.bias is not None else torch.zeros_like(mean)
    new_bias = (bias - mean) * scale + beta
    if conv.bias is None:
        conv.bias = nn.Parameter(new_bias.to(w.dtype), requires_grad=False)
    else:
        conv.bias.copy_(new_bias)


def fold_batchnorm(model: M, inplace: bool = False) -> M:
    """Return ``model`` (a copy unless ``inplace``) in eval mode with every BN folded away.

    The result computes the same function as ``model.eval()`` up to float rounding.  It is for
    inference only (the BN statistics are gone).
    """
    m = model if inplace else copy.deepcopy(model)
    m.eval()
    for mod in m.modules():
        if isinstance(mod, Conv) and isinstance(mod.bn, nn.BatchNorm2d):
            fold_conv_bn(mod.conv, mod.bn)
            mod.bn = nn.Identity()
        elif isinstance(mod, BottleneckCSP) and isinstance(mod.bn, nn.BatchNorm2d):
            half = mod.cv3.out_channels
            fold_conv_bn(mod.cv3, mod.bn, slice(0, half))
            fold_conv_bn(mod.cv2, mod.bn, slice(half, 2 * half))
            mod.bn = nn.Identity()
    left = [name for name, mod in m.named_modules() if isinstance(mod, nn.modules.batchnorm._BatchNorm)]
    if left:
        raise ValueError(f"fold_batchnorm: BN layers not preceded by a foldable conv: {left}")
    return m
