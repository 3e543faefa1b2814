"""Typed model configuration: a variant's architecture plus the paper's ablation switches."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Literal

from cstrack.errors import ConfigError
from cstrack.fsutil import load_yaml
from cstrack.model.architecture import (
    TRUNKS,
    Architecture,
    Scale,
    load_trunk,
    output_channels,
    per_level,
    resolve_rows,
)

RenMode = Literal["ren", "none", "conv"]
EmbHead = Literal["saan", "jde"]
Fused = Literal["none", "sam", "cam", "both"]

_TRUNKS = TRUNKS


@dataclass(frozen=True)
class ModelConfig:
    """Everything that decides the built graph.  Validated at construction (``ConfigError``).

    Ablation switches (paper Tables I-III):

    - ``ren``: ``ren`` (reciprocal network), ``none`` (shared features, Table I rows 1-2 and
      Table II row 5) or ``conv`` (plain CNN of similar cost, Table II row 6).
    - ``ren_self`` / ``ren_cross``: self- and cross-relation (Table II rows 1-2).
    - ``ren_lambda``: ``None`` = learned lambdas (init 0.5, spec §4), a number = fixed (row 3).
    - ``emb_head``: ``saan`` or the plain ``jde`` head (Table I, Table III row 8).
    - ``saan_level_sam`` / ``saan_level_cam``: attention per resolution, one flag per level
      (P3, P4, P5); ``saan_fused``: attention after concatenation (Table III).
    - ``emb_dim``: embedding dimension D (512 in the paper).

    ``architecture``: an explicit resolved architecture (:mod:`cstrack.model.architecture`, e.g.
    imported from an original checkpoint); ``None`` resolves ``trunk`` with the multiples.  When
    given, its anchors, SAAN width, embedding dimension and class count must equal the fields here.
    """

    variant: str
    trunk: str
    depth_multiple: float
    width_multiple: float
    anchors: tuple[tuple[tuple[float, float], ...], ...]
    nc: int = 1
    ren: RenMode = "ren"
    ren_self: bool = True
    ren_cross: bool = True
    ren_lambda: float | None = None
    emb_head: EmbHead = "saan"
    saan_width: int = 256
    saan_level_sam: tuple[bool, bool, bool] = (True, True, True)
    saan_level_cam: tuple[bool, bool, bool] = (False, False, False)
    saan_fused: Fused = "cam"
    emb_dim: int = 512
    pretrained: str | None = field(default=None, compare=False)
    architecture: Architecture | None = None

    def __post_init__(self) -> None:
        if self.trunk not in _TRUNKS:
            raise ConfigError(f"trunk: unknown {self.trunk!r}, expected one of {_TRUNKS}")
        for name in ("depth_multiple", "width_multiple"):
            v = getattr(self, name)
            if not (0 < v <= 4):
                raise ConfigError(f"{name}: must be in (0, 4], got {v!r}")
        if self.ren not in ("ren", "none", "conv"):
            raise ConfigError(f"ren: expected 'ren', 'none' or 'conv', got {self.ren!r}")
        if self.ren == "ren" and not (self.ren_self or self.ren_cross):
            raise ConfigError("ren_self/ren_cross: at least one relation must be on (use ren='none' to switch REN off)")
        if self.ren_lambda is not None and not (0.0 <= float(self.ren_lambda) <= 1.0):
            raise ConfigError(f"ren_lambda: a fixed lambda must be in [0, 1], got {self.ren_lambda!r}")
        if self.emb_head not in ("saan", "jde"):
            raise ConfigError(f"emb_head: expected 'saan' or 'jde', got {self.emb_head!r}")
        if self.saan_fused not in ("none", "sam", "cam", "both"):
            raise ConfigError(f"saan_fused: expected none/sam/cam/both, got {self.saan_fused!r}")
        for name in ("saan_level_sam", "saan_level_cam"):
            v = getattr(self, name)
            if isinstance(v, bool):
                object.__setattr__(self, name, (v, v, v))
            elif len(tuple(v)) != 3 or not all(isinstance(b, bool) for b in v):
                raise ConfigError(f"{name}: expected a bool or three bools (P3, P4, P5), got {v!r}")
            else:
                object.__setattr__(self, name, tuple(v))
        for name in ("saan_width", "emb_dim", "nc"):
            v = getattr(self, name)
            if not isinstance(v, int) or v <= 0:
                raise ConfigError(f"{name}: must be a positive integer, got {v!r}")
        anchors = tuple(tuple((float(w), float(h)) for w, h in level) for level in self.anchors)
        if len(anchors) != 3 or len({len(a) for a in anchors}) != 1:
            raise ConfigError(f"anchors: expected 3 levels with the same number of anchors, got {self.anchors!r}")
        object.__setattr__(self, "anchors", anchors)
        if self.architecture is not None:
            arch = self.architecture
            if isinstance(arch, dict):
                arch = Architecture.from_dict(arch)
                object.__setattr__(self, "architecture", arch)
            if not isinstance(arch, Architecture):
                raise ConfigError(f"architecture: expected an Architecture or its dict, got {type(arch).__name__}")
            for name in ("anchors", "saan_width", "emb_dim", "nc"):
                if getattr(arch, name) != getattr(self, name):
                    raise ConfigError(f"{name}: {getattr(self, name)!r} differs from the architecture's {getattr(arch, name)!r}")

    def replace(self, **changes: Any) -> ModelConfig:
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ConfigError(f"unknown model config field(s): {sorted(unknown)}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["anchors"] = [[list(a) for a in level] for level in self.anchors]
        d["saan_level_sam"] = list(self.saan_level_sam)
        d["saan_level_cam"] = list(self.saan_level_cam)
        if self.architecture is None:
            del d["architecture"]  # configs without one hash as they did before the field existed
        else:
            d["architecture"] = self.architecture.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown model config field(s): {sorted(unknown)}")
        return cls(**d)


@functools.cache
def _variants() -> dict[str, dict[str, Any]]:
    text = resources.files("cstrack.model").joinpath("architectures/variants.yaml").read_text()
    return load_yaml(text)


def variant_names() -> list[str]:
    return list(_variants())


def variant_config(variant: str, **overrides: Any) -> ModelConfig:
    """The :class:`ModelConfig` of a named variant, with field overrides (ablation switches)."""
    table = _variants()
    if variant not in table:
        raise ConfigError(f"unknown variant {variant!r}; known: {', '.join(table)}")
    return ModelConfig.from_dict({"variant": variant, **table[variant]}).replace(**overrides)


def resolve(config: ModelConfig) -> Architecture:
    """The architecture a :class:`ModelConfig` builds: its explicit ``architecture`` when it carries
    one, else its trunk's YAML rows scaled by its multiples with its head settings."""
    if config.architecture is not None:
        return config.architecture
    spec = load_trunk(config.trunk)
    layers = resolve_rows(spec["layers"], Scale(config.depth_multiple, config.width_multiple))
    channels = output_channels(layers)
    outputs = per_level(spec["outputs"], "outputs")
    return Architecture(
        layers=layers,
        activation=spec["activation"],
        outputs=outputs,
        backbone_layers=int(spec["backbone_layers"]),
        ren_channels=per_level((channels[o] for o in outputs), "ren_channels"),
        saan_width=config.saan_width,
        emb_dim=config.emb_dim,
        anchors=config.anchors,
        nc=config.nc,
    )
