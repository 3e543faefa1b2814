"""The inference graph: a CSTrack model specialised to one input size, for the fast, ONNX and
int8 paths.

:func:`inference_model` returns an :class:`InferenceModel` that computes, for ``x`` float32
``[B, 3, H, W]`` (RGB in [0, 1]) at the size it was built for::

    (emb [B, H/8, W/8, D], pred [B, N, 6])   pred rows = (cx, cy, w, h, obj, cls), network px

i.e. ``model(x)`` followed by ``model.decode(raw)``, with these rewrites (same function up to float
rounding):

- batch norms folded into the convolutions (:mod:`cstrack.infer.fold`), and the CSP blocks'
  activation moved in front of their concatenation (fusable into the convolutions);
- REN's adaptive average pool (6 x 10 bins, possibly overlapping) as two constant averaging
  matrices, ``Y = P_h X P_w^T``: exportable to ONNX for any input size (the ONNX exporter only
  handles bins that tile the input), and cheap (two thin GEMMs);
- REN's two channel mixes ``A_k X~`` as one GEMM with the stacked ``[2C, C]`` matrix (X is read
  once);
- attention outputs ``x * a + x`` as ``x * (1 + a)`` (the add on the small gate ``a``): one pass
  over the feature map instead of two;
- the box decoder inside the graph with its grid and anchors precomputed for the input size.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from cstrack.infer.fold import fold_batchnorm
from cstrack.model.blocks import BottleneckCSP
from cstrack.model.detect import STRIDES, Detect
from cstrack.model.input_size import checked_size
from cstrack.model.network import CSTrackModel
from cstrack.model.ren import DESCRIPTOR_HW, REN
from cstrack.model.saan import SAAN, ChannelAttention, SpatialAttention


def adaptive_pool_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """``[n_out, n_in]`` averaging matrix of PyTorch's adaptive average pooling along one axis:
    bin ``i`` covers ``[floor(i n_in / n_out), ceil((i + 1) n_in / n_out))``."""
    m = torch.zeros(n_out, n_in, dtype=torch.float32)
    for i in range(n_out):
        start = (i * n_in) // n_out
        end = math.ceil((i + 1) * n_in / n_out)
        m[i, start:end] = 1.0 / (end - start)
    return m


class FixedAdaptiveAvgPool2d(nn.Module):
    """Adaptive average pooling of a fixed input size ``in_hw`` to ``out_hw`` as two matrix
    products (``[B, C, H, W] -> [B, C, oh, ow]``)."""

    ph: torch.Tensor  # buffers, registered in __init__
    pwt: torch.Tensor

    def __init__(self, in_hw: tuple[int, int], out_hw: tuple[int, int]) -> None:
        super().__init__()
        self.in_hw = in_hw
        self.register_buffer("ph", adaptive_pool_matrix(in_hw[0], out_hw[0]))  # [oh, H]
        self.register_buffer("pwt", adaptive_pool_matrix(in_hw[1], out_hw[1]).t().contiguous())  # [W, ow]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
            # channels-last: rows first as one GEMM over [H, W*C], then columns; no copy of x
            xs = x.permute(0, 2, 3, 1).reshape(b, h, w * c)
            t = torch.matmul(self.ph, xs).view(b, -1, w, c)  # [B, oh, W, C]
            y = torch.matmul(self.pwt.t(), t)  # [B, oh, ow, C]
            return y.permute(0, 3, 1, 2)
        return torch.matmul(torch.matmul(self.ph, x), self.pwt)


class InferenceREN(nn.Module):

    """:class:`~cstrack.model.ren.REN` at a fixed feature size: the same function, with

    - the two branch convolutions as one ``C -> 2C`` convolution (one pass over the descriptor, one
      weight read; InstanceNorm and LeakyReLU act per channel, so they apply to the stack);
    - the four relations from one Gram matrix ``G = T T^T`` of the stacked ``T = [T1; T2]``
      (``[2C, 2C]``): viewed as ``[2C, 2, C]``, a softmax over the last axis gives
      ``S1, R1`` (top rows) and ``R2, S2`` (bottom rows) at once;
    - ``A_k`` mixed with per-row weights (``lambda``, or 1 / 0 for the self- / cross-only
      ablations) and the residual folded in: ``F_k = (A_k + I) X~``, so applying REN is one GEMM
      per task with no separate add.
    """

    eye: torch.Tensor  # buffer, registered in __init__

    def __init__(self, ren: REN, in_hw: tuple[int, int]) -> None:
        super().__init__()
        c = ren.c
        b1, b2 = ren.branch1, ren.branch2
        self.c = c
        self.pool = FixedAdaptiveAvgPool2d(in_hw, DESCRIPTOR_HW)
        self.conv = nn.Conv2d(c, 2 * c, 3, 1, 1, bias=True)
        if self.conv.bias is None or b1.conv.bias is None or b2.conv.bias is None:  # pragma: no cover
            raise ValueError("REN branch convolutions have a bias (spec §4)")
        with torch.no_grad():
            self.conv.weight.copy_(torch.cat((b1.conv.weight, b2.conv.weight)))
            self.conv.bias.copy_(torch.cat((b1.conv.bias, b2.conv.bias)))
        if b1.norm.affine or b1.norm.track_running_stats:  # pragma: no cover - REN's definition (spec §4)
            raise ValueError("REN branches use InstanceNorm without affine parameters or running statistics")
        self.norm = nn.InstanceNorm2d(2 * c, eps=b1.norm.eps, affine=False, track_running_stats=False)
        self.act = b1.act
        self.self_relation = ren.self_relation
        self.cross_relation = ren.cross_relation
        self.lam1: torch.Tensor | None
        self.lam2: torch.Tensor | None
        for name in ("lam1", "lam2"):
            value = getattr(ren, name)
            if value is None or isinstance(value, nn.Parameter):
                setattr(self, name, value)
            else:
                self.register_buffer(name, value.clone())
        self.register_buffer("eye", torch.eye(c).unsqueeze(0))

    def _weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Weights of (self, cross) for A1 and of (cross, self) for A2 (the ``[2C, 2, C]`` order)."""
        if self.lam1 is not None and self.lam2 is not None:
            a1, a2 = self.lam1, self.lam2
        else:
            a1 = a2 = torch.tensor(1.0 if self.self_relation else 0.0)
        return torch.stack((a1, 1 - a1)), torch.stack((1 - a2, a2))

    def relations(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(A1 + I, A2 + I)``, each ``[B, C, C]``."""
        b, c = x.shape[:2]
        t = self.act(self.norm(self.conv(self.pool(x)))).flatten(2)  # [B, 2C, 60]
        p = torch.softmax(torch.bmm(t, t.transpose(1, 2)).view(b, 2 * c, 2, c), dim=-1)
        w1, w2 = self._weights()
        a1 = (p[:, :c] * w1.view(1, 1, 2, 1)).sum(dim=2) + self.eye
        a2 = (p[:, c:] * w2.view(1, 1, 2, 1)).sum(dim=2) + self.eye
        return a1, a2

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, c, h, w = x.shape
        a1, a2 = self.relations(x)
        if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
            xs = x.permute(0, 2, 3, 1).reshape(b, h * w, c)  # a view: [B, HW, C]
            f_det = torch.matmul(xs, a1.transpose(1, 2)).view(b, h, w, c).permute(0, 3, 1, 2)
            f_id = torch.matmul(xs, a2.transpose(1, 2)).view(b, h, w, c).permute(0, 3, 1, 2)
            return f_det, f_id
        flat = x.reshape(b, c, h * w)
        return torch.bmm(a1, flat).view(b, c, h, w), torch.bmm(a2, flat).view(b, c, h, w)


class InferenceCSP(nn.Module):
    """:class:`~cstrack.model.blocks.BottleneckCSP` (BN folded) with its activation moved in front of
    the concatenation: ``act(cat(a, b)) = cat(act(a), act(b))`` for an element-wise ``act``.

    Each half's activation then follows a convolution directly, so ONNX Runtime fuses it into that
    convolution and concatenates in its blocked (NCHWc) layout, instead of reordering the whole
    concatenation to NCHW for the activation and back for ``cv4``.
    """

    def __init__(self, csp: BottleneckCSP) -> None:
        super().__init__()
        if not isinstance(csp.bn, nn.Identity):
            raise ValueError("InferenceCSP needs a BN-folded BottleneckCSP")
        self.cv1, self.cv2, self.cv3, self.cv4, self.m, self.act = csp.cv1, csp.cv2, csp.cv3, csp.cv4, csp.m, csp.act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.act(self.cv3(self.m(self.cv1(x))))
        b = self.act(self.cv2(x))
        return self.cv4(torch.cat((a, b), dim=1))


class InferenceSpatialAttention(nn.Module):
    """:class:`~cstrack.model.saan.SpatialAttention` with ``x * a + x`` computed as ``x * (1 + a)``."""

    def __init__(self, att: SpatialAttention) -> None:
        super().__init__()
        self.squeeze = att.squeeze
        self.conv = att.conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.squeeze(x)
        desc = torch.cat((s.mean(dim=1, keepdim=True), s.amax(dim=1, keepdim=True)), dim=1)
        return x * (torch.sigmoid(self.conv(desc)) + 1)


class InferenceChannelAttention(nn.Module):
    """:class:`~cstrack.model.saan.ChannelAttention` with ``x * w + x`` computed as ``x * (1 + w)``."""

    def __init__(self, att: ChannelAttention) -> None:
        super().__init__()
        self.att = att

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.att.channel_weights(x)  # [B, C]
        return x * (w[:, :, None, None] + 1)


class DecodedDetect(nn.Module):
    """Detection convolutions + the box decoder of spec §6 for fixed grid sizes.

    ``feats`` (P3, P4, P5 detection maps) -> ``pred [B, N, 5 + nc]`` in (anchor, row, col) order per
    level, levels concatenated, exactly as :func:`cstrack.model.detect.decode` orders them.
    """

    def __init__(self, detect: Detect, grid_hw: list[tuple[int, int]]) -> None:
        super().__init__()
        self.m = detect.m
        self.na, self.no = detect.na, detect.no
        self.strides = [float(s) for s in STRIDES[: detect.nl]]
        for i, (h, w) in enumerate(grid_hw):
            gy, gx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
            # the cell offset (gx - 0.5, gy - 0.5): same rounding as the eager decoder's (2 sigma - 0.5 + g)
            self.register_buffer(f"grid{i}", torch.stack((gx, gy), dim=-1).view(1, 1, h, w, 2))
            self.register_buffer(f"anchor{i}", detect.anchors_px[i].float().view(1, self.na, 1, 1, 2).clone())

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        outs = []
        for i, (conv, x) in enumerate(zip(self.m, feats, strict=True)):
            b, _, h, w = x.shape
            y = conv(x).view(b, self.na, self.no, h, w).permute(0, 1, 3, 4, 2).sigmoid()
            xy = (y[..., 0:2] * 2 - 0.5 + getattr(self, f"grid{i}")) * self.strides[i]
            wh = (y[..., 2:4] * 2) ** 2 * getattr(self, f"anchor{i}")
            outs.append(torch.cat((xy, wh, y[..., 4:]), dim=-1).reshape(b, -1, self.no))
        return torch.cat(outs, dim=1)


class InferenceModel(nn.Module):
    """A model specialised to ``input_size = (W, H)``: ``x [B, 3, H, W] -> (emb, pred)``.

    - ``emb``: ``[B, H/8, W/8, D]`` embedding map (not normalised)
    - ``pred``: ``[B, N, 5 + nc]`` decoded boxes (cx, cy, w, h, obj, cls) in network pixels
    """

    def __init__(self, model: CSTrackModel, input_size: tuple[int, int]) -> None:
        super().__init__()
        input_size = checked_size(input_size)
        self.input_size: tuple[int, int] = input_size
        self.emb_dim = model.emb_dim
        self.variant = model.config.variant
        net = fold_batchnorm(model)
        for i, layer in enumerate(net.trunk):
            if isinstance(layer, BottleneckCSP):
                net.trunk[i] = InferenceCSP(layer)
        w, h = input_size
        level_hw = [(h // s, w // s) for s in STRIDES]
        net.ren = nn.ModuleList(
            InferenceREN(r, hw) if isinstance(r, REN) else r for r, hw in zip(net.ren, level_hw, strict=True)
        )
        if isinstance(net.emb_head, SAAN):
            _rewrite_attention(net.emb_head)
        self.net = net
        self.head = DecodedDetect(net.detect, level_hw)
        self.eval()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pairs = [dec(f) for dec, f in zip(self.net.ren, self.net.features(x), strict=True)]
        emb = self.net.emb_head([p[1] for p in pairs])
        pred = self.head([p[0] for p in pairs])
        return emb, pred


def _rewrite_attention(module: nn.Module) -> None:
    for name, child in list(module.named_children()):
        if isinstance(child, SpatialAttention):
            setattr(module, name, InferenceSpatialAttention(child))
        elif isinstance(child, ChannelAttention):
            setattr(module, name, InferenceChannelAttention(child))
        else:
            _rewrite_attention(child)


def inference_model(model: CSTrackModel, input_size: tuple[int, int]) -> InferenceModel:
    """The rewritten, BN-folded model for ``input_size = (W, H)`` (``model`` is not modified)."""
    return InferenceModel(model, input_size)


@torch.no_grad()
def to_channels_last(module: nn.Module) -> nn.Module:
    """Store every 2-D convolution weight channels-last (NHWC) in place; other tensors unchanged.

    With a channels-last input, oneDNN then runs the convolutions in NHWC with no layout reorders.
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            m.weight.data = m.weight.data.contiguous(memory_format=torch.channels_last)
    return module
