"""The CSTrack network: trunk (backbone + neck) -> per-level decoupler (REN) -> embedding head
(SAAN) and detection head."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from cstrack.errors import ConfigError
from cstrack.model.architecture import Architecture
from cstrack.model.config import ModelConfig, resolve, variant_config
from cstrack.model.detect import Detect, decode
from cstrack.model.input_size import check_input_size
from cstrack.model.registry import build_trunk
from cstrack.model.ren import REN, NoDecoupler, PlainDecoupler
from cstrack.model.saan import SAAN, JDEEmbedding


class CSTrackModel(nn.Module):
    """One-shot detector + ReID network.

    ``forward(x)`` with ``x`` float32 [B, 3, H, W] (RGB in [0, 1], H and W multiples of 32) returns
    ``(emb, raw)``:

    - ``emb``: [B, H/8, W/8, D] embedding map (channels last, not normalised)
    - ``raw``: list of 3 tensors [B, A, H/s, W/s, 5 + nc] for s = 8, 16, 32 (see :func:`decode`)
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        arch = resolve(config)
        self.architecture: Architecture = arch
        built = build_trunk(arch.layers, arch.activation)
        self.trunk = built.layers
        self._froms = built.froms
        self.outputs: tuple[int, ...] = tuple(arch.outputs)
        self.backbone_layers: int = arch.backbone_layers
        needed = {a for f in built.froms for a in f if a >= 0} | set(self.outputs)
        self._keep = frozenset(needed)
        level_ch: tuple[int, int, int] = arch.ren_channels
        self.level_channels = level_ch

        if config.ren == "ren":
            self.ren = nn.ModuleList(
                REN(c, config.ren_self, config.ren_cross, config.ren_lambda) for c in level_ch
            )
        elif config.ren == "conv":
            self.ren = nn.ModuleList(PlainDecoupler(c) for c in level_ch)
        else:
            self.ren = nn.ModuleList(NoDecoupler() for _ in level_ch)

        if config.emb_head == "saan":
            self.emb_head: nn.Module = SAAN(
                level_ch, arch.saan_width, arch.emb_dim, config.saan_level_sam,
                config.saan_level_cam, config.saan_fused, act="lrelu",
            )
        else:
            self.emb_head = JDEEmbedding(level_ch, arch.emb_dim)
        anchors = [list(level) for level in arch.anchors]
        self.detect = Detect(level_ch, anchors, arch.nc)

    @property
    def emb_dim(self) -> int:
        return self.config.emb_dim

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Trunk outputs P3, P4, P5."""
        cache: dict[int, torch.Tensor] = {}
        y = x
        for i, (layer, frm) in enumerate(zip(self.trunk, self._froms, strict=True)):
            if i == 0 or frm == [i - 1]:
                inp: Any = y
            elif len(frm) == 1:
                inp = cache[frm[0]]
            else:
                inp = [y if a == i - 1 else cache[a] for a in frm]
            y = layer(inp)
            if i in self._keep:
                cache[i] = y
        return [cache[i] for i in self.outputs]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        if not torch.jit.is_tracing() and not torch.compiler.is_compiling():
            if x.dim() != 4 or x.shape[1] != 3:
                raise ConfigError(f"input: expected a [B, 3, H, W] tensor, got shape {tuple(x.shape)}")
            check_input_size(int(x.shape[3]), int(x.shape[2]))
        pairs = [dec(f) for dec, f in zip(self.ren, self.features(x), strict=True)]
        emb = self.emb_head([p[1] for p in pairs])
        raw = self.detect([p[0] for p in pairs])
        return emb, raw

    def decode(self, raw: list[torch.Tensor]) -> torch.Tensor:
        """``[B, N, 5 + nc]`` boxes (cx, cy, w, h, obj, cls) in network pixels."""
        return decode(raw, self.detect.anchors_px, self.detect.strides)

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Parameters of backbone / neck / ren / emb / detect (for reports)."""
        nb = self.backbone_layers
        return {
            "backbone": [p for layer in self.trunk[:nb] for p in layer.parameters()],
            "neck": [p for layer in self.trunk[nb:] for p in layer.parameters()],
            "ren": list(self.ren.parameters()),
            "emb": list(self.emb_head.parameters()),
            "detect": list(self.detect.parameters()),
        }


def build_model(variant: str | ModelConfig, **overrides: Any) -> CSTrackModel:
    """Build a variant (``jde-l``, ``cstrack-l``, ``cstrack-s``, ``cstrack-n``) with random init.

    ``overrides`` are :class:`ModelConfig` fields (the ablation switches), e.g.
    ``build_model("cstrack-l", ren="none", saan_fused="sam")``.
    """
    cfg = variant if isinstance(variant, ModelConfig) else variant_config(variant, **overrides)
    if isinstance(variant, ModelConfig) and overrides:
        cfg = cfg.replace(**overrides)
    return CSTrackModel(cfg)
