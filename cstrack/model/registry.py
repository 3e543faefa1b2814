"""Explicit module registry: resolves YAML architecture rows into modules (no ``eval``).

A row is ``[from, repeats, module, args]``.  ``from`` is ``-1`` (previous layer), a layer index or
a list of them.  Channel arguments are nominal and scaled by the variant's width multiple; repeats
by its depth multiple (YOLOv5 rules, spec §3).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from cstrack.errors import ConfigError
from cstrack.model.blocks import C3, SPP, SPPF, BottleneckCSP, Concat, Conv, Focus, Upsample


@dataclass(frozen=True)
class Scale:
    depth: float
    width: float
    act: str

    def ch(self, c: int) -> int:
        """``ceil(c * width / 8) * 8``."""
        return math.ceil(c * self.width / 8) * 8

    def n(self, n: int) -> int:
        """``max(round(n * depth), 1)`` when n > 1."""
        return max(round(n * self.depth), 1) if n > 1 else n


# builder(c_in: list of input channels, n: scaled repeats, args, scale) -> (module, c_out)
Builder = Callable[[list[int], int, list, Scale], tuple[nn.Module, int]]


def _conv(cin: list[int], n: int, args: list, s: Scale) -> tuple[nn.Module, int]:
    c2 = s.ch(args[0])
    k = args[1] if len(args) > 1 else 1
    st = args[2] if len(args) > 2 else 1
    p = args[3] if len(args) > 3 else None
    return Conv(cin[0], c2, k, st, p, act=s.act), c2


def _focus(cin: list[int], n: int, args: list, s: Scale) -> tuple[nn.Module, int]:
    c2 = s.ch(args[0])
    return Focus(cin[0], c2, args[1] if len(args) > 1 else 3, act=s.act), c2


def _csp(cin: list[int], n: int, args: list, s: Scale) -> tuple[nn.Module, int]:
    c2 = s.ch(args[0])
    shortcut = bool(args[1]) if len(args) > 1 else True
    return BottleneckCSP(cin[0], c2, n, shortcut, act=s.act), c2


def _c3(cin: list[int], n: int, args: list, s: Scale) -> tuple[nn.Module, int]:
    c2 = s.ch(args[0])
    shortcut = bool(args[1]) if len(args) > 1 else True
    return C3(cin[0], c2, n, shortcut, act=s.act), c2


def _spp(cin: list[int], n: int, args: list, s: Scale) -> tuple[nn.Module, int]:
    c2 = s.ch(args[0])
    return SPP(cin[0], c2, tuple(args[1]), act=s.act), c2


def _sppf(cin: list[int], n: int, args: list, s: Scale) -> tuple[nn.Module, int]:
    c2 = s.ch(args[0])
    return SPPF(cin[0], c2, args[1] if len(args) > 1 else 5, act=s.act), c2


def _upsample(cin: list[int], n: int, args: list, s: Scale) -> tuple[nn.Module, int]:
    return Upsample(args[0] if args else 2), cin[0]


def _concat(cin: list[int], n: int, args: list, s: Scale) -> tuple[nn.Module, int]:
    return Concat(), sum(cin)


MODULES: dict[str, Builder] = {
    "Conv": _conv,
    "Focus": _focus,
    "BottleneckCSP": _csp,
    "C3": _c3,
    "SPP": _spp,
    "SPPF": _sppf,
    "Upsample": _upsample,
    "Concat": _concat,
}

# Blocks whose repeat count is a depth (scaled), not a number of stacked copies.
_DEPTH_SCALED = {"BottleneckCSP", "C3"}


@dataclass
class BuiltTrunk:
    layers: nn.ModuleList
    froms: list[list[int]]  # absolute input indices of each layer
    channels: list[int]  # output channels of each layer


def build_trunk(rows: list[list], scale: Scale, in_channels: int = 3) -> BuiltTrunk:
    """Resolve YAML rows into layers.  Unknown module names raise :class:`ConfigError`."""
    layers: list[nn.Module] = []
    froms: list[list[int]] = []
    channels: list[int] = []
    for i, row in enumerate(rows):
        if len(row) != 4:
            raise ConfigError(f"architecture row {i}: expected [from, repeats, module, args], got {row!r}")
        frm, n, name, args = row
        if name not in MODULES:
            raise ConfigError(f"architecture row {i}: unknown module {name!r}; registry has {sorted(MODULES)}")
        src = [frm] if isinstance(frm, int) else list(frm)
        absolute = [i + f if f < 0 else f for f in src]
        if any(a < 0 or a >= i for a in absolute) and i > 0:
            raise ConfigError(f"architecture row {i}: input {frm!r} does not refer to an earlier layer")
        cin = [in_channels] if i == 0 else [channels[a] for a in absolute]
        n_scaled = scale.n(n) if name in _DEPTH_SCALED else n
        if name not in _DEPTH_SCALED and n != 1:
            raise ConfigError(f"architecture row {i}: module {name} takes repeats 1, got {n}")
        module, cout = MODULES[name](cin, n_scaled, list(args), scale)
        layers.append(module)
        froms.append(absolute if i > 0 else [-1])
        channels.append(cout)
    return BuiltTrunk(nn.ModuleList(layers), froms, channels)
