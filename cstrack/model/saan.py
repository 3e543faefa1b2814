"""Embedding heads: SAAN (scale-aware attention network, spec §5) and the plain JDE head.

Both take the three identity feature maps ``[P3 [B,C3,H/8,W/8], P4 [B,C4,H/16,W/16],
P5 [B,C5,H/32,W/32]]`` and return the embedding map ``[B, H/8, W/8, D]`` (channels last, not
normalised: the loss and the tracker L2-normalise).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from cstrack.model.blocks import Conv

FusedAttention = Literal["none", "sam", "cam", "both"]

# Spec §5: ChannelAttention MLP activation LeakyReLU(0.3); SpatialAttention squeeze to c/4.
CAM_SLOPE = 0.3
SAM_REDUCTION = 4
SAM_KERNEL = 7


class SpatialAttention(nn.Module):
    """``x * a + x`` with ``a = sigmoid(conv7x7([mean_c(s), max_c(s)]))``, ``s = Conv(c, c/4, 1)(x)``."""

    def __init__(self, c: int, act: str = "lrelu") -> None:
        super().__init__()
        self.squeeze = Conv(c, max(c // SAM_REDUCTION, 1), 1, 1, act=act)
        self.conv = nn.Conv2d(2, 1, SAM_KERNEL, padding=SAM_KERNEL // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.squeeze(x)
        desc = torch.cat((s.mean(dim=1, keepdim=True), s.amax(dim=1, keepdim=True)), dim=1)
        return x * torch.sigmoid(self.conv(desc)) + x


class ChannelAttention(nn.Module):
    """``x * w + x`` with ``w = sigmoid(mlp(avgpool(x)) + mlp(maxpool(x)))`` (shared MLP).

    The MLP treats the pooled vector as a 1-channel sequence of length c: Conv1d(1, 1, 3) ->
    LayerNorm((1, c)) -> LeakyReLU(0.3) -> Linear(c, c, no bias).
    """

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 1, 3, padding=1, bias=False)
        self.norm = nn.LayerNorm((1, c), eps=1e-5)
        self.act = nn.LeakyReLU(CAM_SLOPE, inplace=True)
        self.fc = nn.Linear(c, c, bias=False)

    def _mlp(self, v: torch.Tensor) -> torch.Tensor:  # v [B, 1, C]
        return self.fc(self.act(self.norm(self.conv(v))))

    def channel_weights(self, x: torch.Tensor) -> torch.Tensor:
        """``w = sigmoid(mlp(avgpool(x)) + mlp(maxpool(x)))``: ``x [B, C, H, W]`` -> ``w [B, C]``
        (the inference graph applies it as ``x * (1 + w)``, :mod:`cstrack.infer.graph`)."""
        avg = x.mean(dim=(2, 3)).unsqueeze(1)
        mx = x.amax(dim=(2, 3)).unsqueeze(1)
        return torch.sigmoid(self._mlp(avg) + self._mlp(mx)).squeeze(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.channel_weights(x)[:, :, None, None] + x


def _attention(c: int, sam: bool, cam: bool, act: str) -> nn.Module:
    """CBAM order when both are on: channel attention, then spatial attention."""
    mods: list[nn.Module] = []
    if cam:
        mods.append(ChannelAttention(c))
    if sam:
        mods.append(SpatialAttention(c, act=act))
    return nn.Sequential(*mods)


class SAAN(nn.Module):
    """Scale-aware attention network (spec §5) with the Table III ablation switches.

    Args:
        in_channels: (C3, C4, C5) of the identity maps.
        width: internal width (256 in the paper; scaled down in cstrack-n).
        emb_dim: embedding dimension D (512 in the paper).
        level_sam / level_cam: attention per resolution, one flag per level (P3, P4, P5).
        fused: attention after the concatenation: none / sam / cam / both (paper: cam).
    """

    def __init__(
        self,
        in_channels: tuple[int, int, int],
        width: int = 256,
        emb_dim: int = 512,
        level_sam: tuple[bool, bool, bool] = (True, True, True),
        level_cam: tuple[bool, bool, bool] = (False, False, False),
        fused: FusedAttention = "cam",
        act: str = "lrelu",
    ) -> None:
        super().__init__()
        c3, c4, c5 = in_channels
        self.proj3 = Conv(c3, width, 3, 1, act=act)
        self.proj4 = Conv(c4, width, 3, 1, act=act)
        self.proj5 = Conv(c5, width, 3, 1, act=act)
        # depthwise transposed convolutions bring P4 (x2) and P5 (x4) to 1/8
        self.up4 = nn.ConvTranspose2d(width, width, 4, stride=2, padding=1, groups=width, bias=False)
        self.up5 = nn.ConvTranspose2d(width, width, 8, stride=4, padding=2, groups=width, bias=False)
        self.att3, self.att4, self.att5 = (
            _attention(width, s, c, act) for s, c in zip(level_sam, level_cam, strict=True)
        )
        fused_c = 3 * width
        self.fused_att = _attention(fused_c, fused in ("sam", "both"), fused in ("cam", "both"), act)
        self.fuse = Conv(fused_c, width, 3, 1, act=act)
        self.out = nn.Conv2d(width, emb_dim, 1, bias=True)
        self.emb_dim = emb_dim

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        p3, p4, p5 = feats
        a = self.att3(self.proj3(p3))
        b = self.att4(self.up4(self.proj4(p4)))
        c = self.att5(self.up5(self.proj5(p5)))
        x = self.fused_att(torch.cat((a, b, c), dim=1))
        return self.out(self.fuse(x)).permute(0, 2, 3, 1).contiguous()


class JDEEmbedding(nn.Module):
    """The plain JDE embedding head (Table I baseline, Table III row 8): a 3x3 convolution with
    bias from the P3 identity map to D channels; P4 and P5 are not used."""

    def __init__(self, in_channels: tuple[int, int, int], emb_dim: int = 512) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels[0], emb_dim, 3, 1, 1, bias=True)
        self.emb_dim = emb_dim

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        return self.conv(feats[0]).permute(0, 2, 3, 1).contiguous()
