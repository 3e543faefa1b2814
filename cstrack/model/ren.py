"""REN, the reciprocal network (``CCN`` in SOTS), spec §4, and its ablation alternatives.

One instance per pyramid level turns a feature map X [B, C, H, W] into two task-specific maps
``(F_det, F_id)``, both [B, C, H, W]:

    Y = AdaptiveAvgPool(6, 10)(X)                          [B, C, 6, 10]
    T_k = LReLU_0.3(InstanceNorm(Conv3x3_k(Y)))            [B, C, 60]      k = 1 (det), 2 (id)
    S_k = softmax(T_k T_k^T)          (self relation)      [B, C, C]   rows sum to 1
    R_1 = softmax(T_1 T_2^T), R_2 = softmax(T_2 T_1^T)     (cross relation)
    A_k = lambda_k S_k + (1 - lambda_k) R_k
    F_k = A_k X~ + X                                        X~ = X flattened to [B, C, H*W]
"""

from __future__ import annotations

import torch
from torch import nn

# Spec §4: descriptor pooled to 6 rows x 10 columns; branch activation LeakyReLU(0.3).
DESCRIPTOR_HW = (6, 10)
BRANCH_SLOPE = 0.3


class _Branch(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, 1, 1, bias=True)
        self.norm = nn.InstanceNorm2d(c, eps=1e-5, affine=False, track_running_stats=False)
        self.act = nn.LeakyReLU(BRANCH_SLOPE, inplace=True)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(y))).flatten(2)  # [B, C, 60]


class REN(nn.Module):
    """Reciprocal network for one level.

    Args:
        c: channels of the input (derived from the producing layer, spec Q6/Q7).
        self_relation / cross_relation: ablation switches (Table II rows 1-2); at least one on.
        lam: ``None`` for learned lambdas (two ``nn.Parameter`` initialised to 0.5, spec §4) or a
            fixed value stored as a buffer (Table II row 3 uses 0.5); only used when both
            relations are on.
    """

    def __init__(self, c: int, self_relation: bool = True, cross_relation: bool = True, lam: float | None = None) -> None:
        super().__init__()
        if not (self_relation or cross_relation):
            raise ValueError("REN needs the self or the cross relation (switch REN off instead)")
        self.c = c
        self.self_relation = self_relation
        self.cross_relation = cross_relation
        self.pool = nn.AdaptiveAvgPool2d(DESCRIPTOR_HW)
        self.branch1 = _Branch(c)
        self.branch2 = _Branch(c)
        self.lam1: torch.Tensor | None
        self.lam2: torch.Tensor | None
        if self_relation and cross_relation:
            if lam is None:
                self.lam1 = nn.Parameter(torch.tensor(0.5))
                self.lam2 = nn.Parameter(torch.tensor(0.5))
            else:
                self.register_buffer("lam1", torch.tensor(float(lam)))
                self.register_buffer("lam2", torch.tensor(float(lam)))
        else:
            self.lam1 = self.lam2 = None

    def relations(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The two channel-mixing matrices ``(A1, A2)``, each [B, C, C]."""
        y = self.pool(x)
        t1, t2 = self.branch1(y), self.branch2(y)
        if self.self_relation and not self.cross_relation:
            return _rel(t1, t1), _rel(t2, t2)
        if self.cross_relation and not self.self_relation:
            return _rel(t1, t2), _rel(t2, t1)
        assert self.lam1 is not None and self.lam2 is not None  # both relations on: lambdas exist
        a1 = self.lam1 * _rel(t1, t1) + (1 - self.lam1) * _rel(t1, t2)
        a2 = self.lam2 * _rel(t2, t2) + (1 - self.lam2) * _rel(t2, t1)
        return a1, a2

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, c, h, w = x.shape
        a1, a2 = self.relations(x)
        flat = x.flatten(2)  # [B, C, H*W]
        f_det = torch.bmm(a1, flat).view(b, c, h, w) + x
        f_id = torch.bmm(a2, flat).view(b, c, h, w) + x
        return f_det, f_id


def _rel(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    return torch.softmax(torch.bmm(p, q.transpose(1, 2)), dim=-1)


class PlainDecoupler(nn.Module):
    """Table II row 6: REN replaced by a plain CNN of similar cost.

    Two 1x1 convolutions C -> C at full resolution (the same MACs as REN's C x C x HW channel mix),
    each with a residual: ``F_det = conv_det(X) + X``, ``F_id = conv_id(X) + X``.
    """

    def __init__(self, c: int) -> None:
        super().__init__()
        self.det = nn.Conv2d(c, c, 1, bias=True)
        self.id = nn.Conv2d(c, c, 1, bias=True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.det(x) + x, self.id(x) + x


class NoDecoupler(nn.Module):
    """REN switched off: both tasks share the neck output (Table I rows 1-2, Table II row 5)."""

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x, x
