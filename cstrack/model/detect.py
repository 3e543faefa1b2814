"""Detection head (spec §6): one 1x1 convolution per level and the box decoder.

Raw output per level: ``[B, A, h, w, 5 + nc]`` with A = 3 anchors and channels
(tx, ty, tw, th, objectness, class...).  Decoding (sigma = sigmoid on every channel, grid cell
(gx, gy), stride s, pixel anchor (aw, ah)):

    cx = (2 sigma(tx) - 0.5 + gx) s      w = (2 sigma(tw))^2 aw      obj = sigma(to)
    cy = (2 sigma(ty) - 0.5 + gy) s      h = (2 sigma(th))^2 ah      cls = sigma(tc)

SOTS' learnable ``k`` and its alternative xy formula are dropped (spec Q5).
"""

from __future__ import annotations

import math

import torch
from torch import nn

STRIDES = (8, 16, 32)


class Detect(nn.Module):
    """Per-level 1x1 Conv2d (with bias) to ``A * (5 + nc)`` channels.

    Args:
        in_channels: channels of the three detection maps (P3, P4, P5).
        anchors: pixel anchors, ``[[(w, h)] * A] * 3`` (network-input pixels).
        nc: number of classes (1: pedestrian).
    """

    anchors_px: torch.Tensor  # [nl, na, 2] pixels (non-persistent buffer)
    strides: torch.Tensor  # [nl] (non-persistent buffer)

    def __init__(self, in_channels: tuple[int, int, int], anchors: list[list[tuple[float, float]]], nc: int = 1) -> None:
        super().__init__()
        self.nc = nc
        self.no = 5 + nc
        self.na = len(anchors[0])
        self.nl = len(anchors)
        self.m = nn.ModuleList(nn.Conv2d(c, self.na * self.no, 1) for c in in_channels)
        a = torch.tensor(anchors, dtype=torch.float32)  # [nl, na, 2] pixels
        self.register_buffer("anchors_px", a, persistent=False)
        self.register_buffer("strides", torch.tensor(STRIDES[: self.nl], dtype=torch.float32), persistent=False)
        self._init_biases()

    @torch.no_grad()
    def _init_biases(self) -> None:
        """Spec §6: objectness logit += ln(8 / (640 / s)^2); class logit += ln(0.6 / (nc - 0.99))."""
        for conv, s in zip(self.m, STRIDES, strict=False):
            assert isinstance(conv, nn.Conv2d) and conv.bias is not None
            b = conv.bias.view(self.na, self.no)
            b[:, 4] += math.log(8 / (640 / s) ** 2)
            b[:, 5:] += math.log(0.6 / (self.nc - 0.99))

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        out = []
        for conv, x in zip(self.m, feats, strict=True):
            b, _, h, w = x.shape
            out.append(conv(x).view(b, self.na, self.no, h, w).permute(0, 1, 3, 4, 2).contiguous())
        return out

    def anchors_grid(self) -> torch.Tensor:
        """Anchors in grid units (pixels / stride), ``[nl, na, 2]`` (what the loss uses)."""
        return self.anchors_px / self.strides[:, None, None]


def decode(raw: list[torch.Tensor], anchors_px: torch.Tensor, strides: torch.Tensor) -> torch.Tensor:
    """Decode raw head outputs into ``[B, N, 5 + nc]`` rows (cx, cy, w, h, obj, cls...) in
    network-input pixels, flattened per level in (anchor, row, col) order, levels P3, P4, P5.

    ``anchors_px`` [nl, na, 2] and ``strides`` [nl] come from :class:`Detect`.
    """
    outs = []
    for i, p in enumerate(raw):
        b, na, h, w, no = p.shape
        s = strides[i]
        gy, gx = torch.meshgrid(
            torch.arange(h, device=p.device, dtype=p.dtype), torch.arange(w, device=p.device, dtype=p.dtype),
            indexing="ij",
        )
        y = p.sigmoid()
        xy = (y[..., 0:2] * 2 - 0.5 + torch.stack((gx, gy), dim=-1)) * s
        wh = (y[..., 2:4] * 2) ** 2 * anchors_px[i].to(p.dtype).view(1, na, 1, 1, 2)
        outs.append(torch.cat((xy, wh, y[..., 4:]), dim=-1).view(b, -1, no))
    return torch.cat(outs, dim=1)
