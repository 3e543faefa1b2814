"""YOLOv5 building blocks of both families used here (spec §1-§2).

- v3 family (CSTrack's full model, YOLOv5 v1-v3): Focus stem, BottleneckCSP, SPP, LeakyReLU(0.1).
- v6 family (the shipped COCO YOLOv5n checkpoint): 6x6 stem Conv, C3, SPPF, SiLU.

Sub-module attribute names follow YOLOv5's (``conv``, ``bn``, ``cv1``..``cv4``, ``m``) so that
state-dict keys of the public checkpoints map one to one.  All tensors are NCHW.
"""

from __future__ import annotations

import torch
from torch import nn

# SOTS / YOLOv5 set these after construction (spec §1); PyTorch defaults would be 1e-5 / 0.1.
BN_EPS = 1e-3
BN_MOMENTUM = 0.03
LRELU_SLOPE = 0.1  # spec §1: the conv blocks' LeakyReLU of the v1-v3 family


def make_act(name: str) -> nn.Module:
    """``lrelu`` = LeakyReLU(0.1) (v1-v3 family), ``silu`` = SiLU (v6 family)."""
    if name == "lrelu":
        return nn.LeakyReLU(LRELU_SLOPE, inplace=True)
    if name == "silu":
        return nn.SiLU(inplace=True)
    raise ValueError(f"unknown activation {name!r}")


def batch_norm(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=BN_EPS, momentum=BN_MOMENTUM)


class Conv(nn.Module):
    """Conv2d(no bias, padding k//2 unless given) -> BatchNorm2d -> activation."""

    def __init__(self, c1: int, c2: int, k: int = 1, s: int = 1, p: int | None = None, act: str = "lrelu") -> None:
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, k // 2 if p is None else p, bias=False)
        self.bn: nn.BatchNorm2d | nn.Identity = batch_norm(c2)  # Identity once folded (cstrack.infer.fold)
        self.act = make_act(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class Focus(nn.Module):
    """Space-to-depth (4 parity sub-images -> 4x channels at half resolution) then Conv."""

    def __init__(self, c1: int, c2: int, k: int = 3, act: str = "lrelu") -> None:
        super().__init__()
        self.conv = Conv(c1 * 4, c2, k, 1, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (even row, even col), (odd, even), (even, odd), (odd, odd)
        return self.conv(
            torch.cat([x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]], dim=1)
        )


class Bottleneck(nn.Module):
    """Conv 1x1 -> Conv 3x3, plus the input when ``shortcut`` (expansion ``e`` of c2)."""

    def __init__(self, c1: int, c2: int, shortcut: bool = True, e: float = 1.0, act: str = "lrelu") -> None:
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, 1, 1, act=act)
        self.cv2 = Conv(c_, c2, 3, 1, act=act)
        self.add = shortcut and c1 == c2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class BottleneckCSP(nn.Module):
    """CSP block of YOLOv5 v1-v3 (spec §2): two paths, concat, BN + LeakyReLU, Conv."""

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = True, act: str = "lrelu") -> None:
        super().__init__()
        c_ = c2 // 2
        self.cv1 = Conv(c1, c_, 1, 1, act=act)
        self.cv2 = nn.Conv2d(c1, c_, 1, 1, bias=False)
        self.cv3 = nn.Conv2d(c_, c_, 1, 1, bias=False)
        self.cv4 = Conv(2 * c_, c2, 1, 1, act=act)
        self.bn: nn.BatchNorm2d | nn.Identity = batch_norm(2 * c_)  # Identity once folded (cstrack.infer.fold)
        self.act = make_act(act)
        self.m = nn.Sequential(*(Bottleneck(c_, c_, shortcut, 1.0, act=act) for _ in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.cv3(self.m(self.cv1(x)))
        b = self.cv2(x)
        return self.cv4(self.act(self.bn(torch.cat((a, b), dim=1))))


class C3(nn.Module):
    """CSP block of YOLOv5 v4+ (three Convs): cv3(cat(m(cv1(x)), cv2(x)))."""

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = True, act: str = "silu") -> None:
        super().__init__()
        c_ = c2 // 2
        self.cv1 = Conv(c1, c_, 1, 1, act=act)
        self.cv2 = Conv(c1, c_, 1, 1, act=act)
        self.cv3 = Conv(2 * c_, c2, 1, 1, act=act)
        self.m = nn.Sequential(*(Bottleneck(c_, c_, shortcut, 1.0, act=act) for _ in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), dim=1))


class SPP(nn.Module):
    """Spatial pyramid pooling with parallel max-pools k = (5, 9, 13) (v1-v3)."""

    def __init__(self, c1: int, c2: int, k: tuple[int, ...] = (5, 9, 13), act: str = "lrelu") -> None:
        super().__init__()
        c_ = c1 // 2
        self.cv1 = Conv(c1, c_, 1, 1, act=act)
        self.cv2 = Conv(c_ * (len(k) + 1), c2, 1, 1, act=act)
        self.m = nn.ModuleList(nn.MaxPool2d(kernel_size=x, stride=1, padding=x // 2) for x in k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.cv1(x)
        return self.cv2(torch.cat([x] + [m(x) for m in self.m], dim=1))


class SPPF(nn.Module):
    """Fast SPP (v6): three chained max-pools of size k, equivalent to SPP(k, 2k-1, 3k-2)."""

    def __init__(self, c1: int, c2: int, k: int = 5, act: str = "silu") -> None:
        super().__init__()
        c_ = c1 // 2
        self.cv1 = Conv(c1, c_, 1, 1, act=act)
        self.cv2 = Conv(c_ * 4, c2, 1, 1, act=act)
        self.m = nn.MaxPool2d(kernel_size=k, stride=1, padding=k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.cv1(x)
        y1 = self.m(x)
        y2 = self.m(y1)
        return self.cv2(torch.cat((x, y1, y2, self.m(y2)), dim=1))


class Concat(nn.Module):
    """Channel concatenation in the listed order."""

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(xs, dim=1)


class Upsample(nn.Module):
    """Nearest-neighbour upsampling by an integer factor."""

    def __init__(self, scale: int = 2) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.interpolate(x, scale_factor=self.scale, mode="nearest")
