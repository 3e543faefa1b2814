"""Explicit module registry: builds trunk layers from resolved :class:`LayerSpec` rows (no ``eval``).

A resolved row names its block and carries absolute numbers, in the order of the original code's
resolved arguments (``c_in`` first):

=============  ==========================================
block          args
=============  ==========================================
Conv           (c_in, c_out, k, s) or (c_in, c_out, k, s, p)
Focus          (c_in, c_out, k)
BottleneckCSP  (c_in, c_out, n, shortcut)   n = Bottleneck repeats
C3             (c_in, c_out, n, shortcut)
SPP            (c_in, c_out, (k1, k2, k3))
SPPF           (c_in, c_out, k)
Upsample       (scale,)
Concat         ()
=============  ==========================================

:func:`cstrack.model.architecture.resolve_rows` turns nominal YAML rows (scaled by a variant's
multiples, spec §3) into such rows; :func:`build_trunk` only instantiates them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from torch import nn

from cstrack.errors import ConfigError
from cstrack.model.blocks import C3, SPP, SPPF, BottleneckCSP, Concat, Conv, Focus, Upsample


@dataclass(frozen=True)
class LayerSpec:
    """One resolved trunk layer: block name, absolute input indices (``(-1,)`` = the image) and
    resolved arguments (see the module docstring)."""

    block: str
    inputs: tuple[int, ...]
    args: tuple

    @property
    def c_out(self) -> int:
        """Output channels (derived for Upsample / Concat by :func:`output_channels`)."""
        return int(self.args[1])

    def describe(self) -> str:
        return f"{self.block}{list(self.args)} from {list(self.inputs)}"


def _conv(a: tuple, act: str) -> nn.Module:
    return Conv(a[0], a[1], a[2], a[3], a[4] if len(a) > 4 else None, act=act)


# block name -> (number of args, builder(args, activation)); Upsample / Concat carry no weights.
MODULES: dict[str, tuple[tuple[int, ...], Callable[[tuple, str], nn.Module]]] = {
    "Conv": ((4, 5), _conv),
    "Focus": ((3,), lambda a, act: Focus(a[0], a[1], a[2], act=act)),
    "BottleneckCSP": ((4,), lambda a, act: BottleneckCSP(a[0], a[1], a[2], bool(a[3]), act=act)),
    "C3": ((4,), lambda a, act: C3(a[0], a[1], a[2], bool(a[3]), act=act)),
    "SPP": ((3,), lambda a, act: SPP(a[0], a[1], tuple(a[2]), act=act)),
    "SPPF": ((3,), lambda a, act: SPPF(a[0], a[1], a[2], act=act)),
    "Upsample": ((1,), lambda a, act: Upsample(a[0])),
    "Concat": ((0,), lambda a, act: Concat()),
}


def output_channels(specs: Sequence[LayerSpec], in_channels: int = 3) -> list[int]:
    """Output channels of every layer; checks that each layer's ``c_in`` equals what its producer
    layers give (SOTS's off-by-one channel bookkeeping, spec Q6, cannot creep in)."""
    channels: list[int] = []
    for i, spec in enumerate(specs):
        if spec.block not in MODULES:
            raise ConfigError(f"architecture layer {i}: unknown block {spec.block!r}; registry has {sorted(MODULES)}")
        nargs, _ = MODULES[spec.block]
        if len(spec.args) not in nargs:
            raise ConfigError(f"architecture layer {i}: {spec.block} takes {nargs} arguments, got {list(spec.args)}")
        if any((a != -1 and not 0 <= a < i) or (a == -1 and i > 0) for a in spec.inputs) or not spec.inputs:
            raise ConfigError(f"architecture layer {i}: inputs {list(spec.inputs)} do not refer to earlier layers")
        given = [in_channels if a == -1 else channels[a] for a in spec.inputs]
        if spec.block == "Concat":
            channels.append(sum(given))
            continue
        if len(given) != 1:
            raise ConfigError(f"architecture layer {i}: {spec.block} takes one input, got {list(spec.inputs)}")
        if spec.block == "Upsample":
            channels.append(given[0])
            continue
        if int(spec.args[0]) != given[0]:
            raise ConfigError(
                f"architecture layer {i}: {spec.block} expects {spec.args[0]} input channels but layer "
                f"{spec.inputs[0]} gives {given[0]}"
            )
        channels.append(spec.c_out)
    return channels


@dataclass
class BuiltTrunk:
    layers: nn.ModuleList
    froms: list[list[int]]  # absolute input indices of each layer ([-1] = the image)
    channels: list[int]  # output channels of each layer


def build_trunk(specs: Sequence[LayerSpec], activation: str, in_channels: int = 3) -> BuiltTrunk:
    """Instantiate resolved rows with the trunk's activation (``lrelu`` or ``silu``)."""
    channels = output_channels(specs, in_channels)
    layers = [MODULES[s.block][1](tuple(s.args), activation) for s in specs]
    return BuiltTrunk(nn.ModuleList(layers), [list(s.inputs) for s in specs], channels)
