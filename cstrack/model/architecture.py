"""Architectures from numbers: the resolved description every CSTrack model is built from.

An :class:`Architecture` holds what the original code's YAML config resolves to: per trunk layer
the block, its inputs and absolute arguments (channels, kernel, stride, Bottleneck repeats), the
REN channels per level, SAAN's internal width, the embedding dimension, anchors and strides.

Three sources give one:

- :func:`cstrack.model.config.resolve` — a :class:`~cstrack.model.config.ModelConfig` (a named
  variant's trunk YAML, :func:`load_trunk`, scaled by its depth and width multiples with
  :func:`resolve_rows`, spec §3, or the explicit architecture the config carries);
- :func:`from_sots_config` — the resolved description printed from the original code
  (``tiny_config.json`` of the parity fixtures has this layout);
- :meth:`Architecture.from_dict` — our own JSON form (:meth:`Architecture.to_dict`).

:class:`cstrack.model.network.CSTrackModel` builds every model through :func:`resolve`, so named
variants, imported checkpoints and the parity fixture's tiny model share one code path.  This module
imports nothing above it (the config imports it).
"""

from __future__ import annotations

import ast
import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from cstrack.errors import ConfigError
from cstrack.fsutil import load_yaml
from cstrack.model.registry import LayerSpec, output_channels

STRIDES = (8, 16, 32)
TRUNKS = ("yolov5_v3", "yolov5_v6")
ACTIVATIONS = ("lrelu", "silu")


@dataclass(frozen=True)
class Scale:
    """YOLOv5 scaling of nominal rows (spec §3)."""

    depth: float
    width: float

    def ch(self, c: int) -> int:
        """``ceil(c * width / 8) * 8``."""
        return math.ceil(c * self.width / 8) * 8

    def n(self, n: int) -> int:
        """``max(round(n * depth), 1)`` when n > 1."""
        return max(round(n * self.depth), 1) if n > 1 else n


_DEPTH_SCALED = {"BottleneckCSP", "C3"}


def resolve_rows(rows: Sequence[Sequence[Any]], scale: Scale, in_channels: int = 3) -> tuple[LayerSpec, ...]:
    """Nominal YAML rows ``[from, repeats, module, args]`` -> resolved :class:`LayerSpec` rows."""
    specs: list[LayerSpec] = []
    channels: list[int] = []
    for i, row in enumerate(rows):
        if len(row) != 4:
            raise ConfigError(f"architecture row {i}: expected [from, repeats, module, args], got {row!r}")
        frm, n, name, args = row
        src = [frm] if isinstance(frm, int) else list(frm)
        inputs = tuple(-1 if i == 0 else (i + f if f < 0 else f) for f in src)
        if any(not 0 <= a < i for a in inputs) and i > 0:
            raise ConfigError(f"architecture row {i}: input {frm!r} does not refer to an earlier layer")
        if name not in _DEPTH_SCALED and n != 1:
            raise ConfigError(f"architecture row {i}: module {name} takes repeats 1, got {n}")
        cin = [in_channels if a == -1 else channels[a] for a in inputs]
        a = list(args)
        if name == "Conv":
            resolved: tuple = (cin[0], scale.ch(a[0]), a[1] if len(a) > 1 else 1, a[2] if len(a) > 2 else 1)
            if len(a) > 3:
                resolved += (a[3],)
        elif name == "Focus":
            resolved = (cin[0], scale.ch(a[0]), a[1] if len(a) > 1 else 3)
        elif name in _DEPTH_SCALED:
            resolved = (cin[0], scale.ch(a[0]), scale.n(n), bool(a[1]) if len(a) > 1 else True)
        elif name == "SPP":
            resolved = (cin[0], scale.ch(a[0]), tuple(a[1]))
        elif name == "SPPF":
            resolved = (cin[0], scale.ch(a[0]), a[1] if len(a) > 1 else 5)
        elif name == "Upsample":
            resolved = (a[0] if a else 2,)
        elif name == "Concat":
            resolved = ()
        else:
            raise ConfigError(f"architecture row {i}: unknown module {name!r}")
        specs.append(LayerSpec(name, inputs, resolved))
        channels.append(sum(cin) if name == "Concat" else cin[0] if name == "Upsample" else resolved[1])
    output_channels(specs, in_channels)  # validates every row once
    return tuple(specs)


def _anchors(value: Any) -> tuple[tuple[tuple[float, float], ...], ...]:
    """Anchors as ``((w, h), ...)`` per level from nested pairs or flat ``[w, h, w, h, ...]`` rows."""
    levels = []
    for level in value:
        flat = [float(v) for pair in level for v in (pair if isinstance(pair, list | tuple) else [pair])]
        if len(flat) % 2:
            raise ConfigError(f"anchors: a level needs (w, h) pairs, got {level!r}")
        levels.append(tuple((flat[j], flat[j + 1]) for j in range(0, len(flat), 2)))
    return tuple(levels)


def per_level(values: Iterable[Any], name: str) -> tuple[int, int, int]:
    """Three integers, one per pyramid level (strides 8, 16, 32); another count raises
    :class:`ConfigError` naming the field ``name``."""
    t = tuple(int(v) for v in values)
    if len(t) != 3:
        raise ConfigError(f"architecture {name}: three values expected (one per level), got {list(t)}")
    return t[0], t[1], t[2]


@dataclass(frozen=True)
class Architecture:
    """The resolved numbers of a CSTrack model (see the module docstring).

    ``anchors`` are (w, h) in network-input pixels, one tuple per level; ``ren_channels`` are the
    channels of the three decoupled levels and must equal the trunk outputs' channels (spec Q7).
    """

    layers: tuple[LayerSpec, ...]
    activation: str
    outputs: tuple[int, int, int]
    backbone_layers: int
    ren_channels: tuple[int, int, int]
    saan_width: int
    emb_dim: int
    anchors: tuple[tuple[tuple[float, float], ...], ...]
    strides: tuple[int, int, int] = STRIDES
    nc: int = 1

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"architecture activation: expected one of {ACTIVATIONS}, got {self.activation!r}")
        channels = output_channels(self.layers)
        if len(self.outputs) != 3 or any(not 0 <= o < len(self.layers) for o in self.outputs):
            raise ConfigError(f"architecture outputs: three trunk layers expected, got {list(self.outputs)}")
        level = tuple(channels[o] for o in self.outputs)
        if tuple(self.ren_channels) != level:
            raise ConfigError(
                f"architecture ren_channels {list(self.ren_channels)} differ from the channels of trunk layers "
                f"{list(self.outputs)}: {list(level)}"
            )
        if tuple(self.strides) != STRIDES:
            raise ConfigError(f"architecture strides: only {list(STRIDES)} are supported, got {list(self.strides)}")
        if len(self.anchors) != 3 or len({len(a) for a in self.anchors}) != 1:
            raise ConfigError(f"architecture anchors: three levels with equal anchor counts expected, got {self.anchors!r}")
        for name in ("saan_width", "emb_dim", "nc", "backbone_layers"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ConfigError(f"architecture {name}: must be a positive integer, got {v!r}")

    @property
    def level_channels(self) -> tuple[int, int, int]:
        return self.ren_channels

    def to_dict(self) -> dict[str, Any]:
        return {
            "layers": [
                {"block": s.block, "from": list(s.inputs), "args": [list(a) if isinstance(a, tuple) else a for a in s.args]}
                for s in self.layers
            ],
            "activation": self.activation,
            "outputs": list(self.outputs),
            "backbone_layers": self.backbone_layers,
            "ren_channels": list(self.ren_channels),
            "saan_width": self.saan_width,
            "emb_dim": self.emb_dim,
            "anchors": [[list(a) for a in level] for level in self.anchors],
            "strides": list(self.strides),
            "nc": self.nc,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Architecture:
        known = {"layers", "activation", "outputs", "backbone_layers", "ren_channels", "saan_width", "emb_dim",
                 "anchors", "strides", "nc"}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"architecture: unknown field(s) {sorted(unknown)}")
        missing = known - {"strides", "nc"} - set(d)
        if missing:
            raise ConfigError(f"architecture: missing field(s) {sorted(missing)}")
        layers = []
        for i, row in enumerate(d["layers"]):
            try:
                args = tuple(tuple(a) if isinstance(a, list) else a for a in row["args"])
                layers.append(LayerSpec(str(row["block"]), tuple(int(f) for f in row["from"]), args))
            except (KeyError, TypeError) as exc:
                raise ConfigError(f"architecture layer {i}: expected {{block, from, args}}, got {row!r} ({exc})") from None
        return cls(
            layers=tuple(layers),
            activation=d["activation"],
            outputs=per_level(d["outputs"], "outputs"),
            backbone_layers=int(d["backbone_layers"]),
            ren_channels=per_level(d["ren_channels"], "ren_channels"),
            saan_width=int(d["saan_width"]),
            emb_dim=int(d["emb_dim"]),
            anchors=_anchors(d["anchors"]),
            strides=per_level(d.get("strides", STRIDES), "strides"),
            nc=int(d.get("nc", 1)),
        )


@functools.cache
def load_trunk(name: str) -> dict[str, Any]:
    """The nominal YAML rows of a trunk (``yolov5_v3`` or ``yolov5_v6``, ``architectures/*.yaml``)."""
    if name not in TRUNKS:
        raise ConfigError(f"trunk: unknown {name!r}, expected one of {TRUNKS}")
    text = resources.files("cstrack.model").joinpath(f"architectures/{name}.yaml").read_text()
    return load_yaml(text)


# ---------------------------------------------------------------------------------------------
# The original code's resolved description (tiny_config.json layout)

# SOTS's CSTrack: trunk layers 0-23, REN (CCN) at 24-26 on layers 17/20/23, SAAN 27, Detect 28.
SOTS_TRUNK_LAYERS = 24
SOTS_OUTPUTS = (17, 20, 23)
SOTS_BACKBONE_LAYERS = 10


def _sots_args(block: str, args: list[Any], i: int) -> tuple:
    if block == "Conv":
        return tuple(int(a) for a in args[:4]) + ((int(args[4]),) if len(args) > 4 and args[4] is not None else ())
    if block == "Focus":
        return (int(args[0]), int(args[1]), int(args[2]) if len(args) > 2 else 1)
    if block in _DEPTH_SCALED:
        return (int(args[0]), int(args[1]), int(args[2]) if len(args) > 2 else 1, bool(args[3]) if len(args) > 3 else True)
    if block == "SPP":
        return (int(args[0]), int(args[1]), tuple(int(k) for k in args[2]))
    if block == "SPPF":
        return (int(args[0]), int(args[1]), int(args[2]) if len(args) > 2 else 5)
    if block == "Upsample":  # nn.Upsample(size, scale_factor, mode)
        if len(args) > 2 and args[2] != "nearest":
            raise ConfigError(f"architecture layer {i}: only nearest upsampling is supported, got {args!r}")
        return (int(args[1]) if len(args) > 1 else 2,)
    if block == "Concat":
        if args and int(args[0]) != 1:
            raise ConfigError(f"architecture layer {i}: only channel concatenation is supported, got {args!r}")
        return ()
    raise ConfigError(f"architecture layer {i}: unknown block {block!r}")


def from_sots_config(d: Mapping[str, Any]) -> Architecture:
    """The architecture described by a resolved SOTS config (the fixture's ``tiny_config.json``).

    Trunk rows come from ``layers[i].args_resolved`` (literal Python lists, parsed with
    ``ast.literal_eval``); REN channels from the CCN rows' output shapes; SAAN width and embedding
    dimension, anchors (``anchors_px``, flat per level) and strides from their own keys.
    """
    try:
        rows = d["layers"]
        layers: list[LayerSpec] = []
        for i, row in enumerate(rows[:SOTS_TRUNK_LAYERS]):
            args = row["args_resolved"]
            args = ast.literal_eval(args) if isinstance(args, str) else list(args)
            src = row["source"]
            src = [src] if isinstance(src, int) else list(src)
            inputs = tuple(-1 if i == 0 else (i + f if f < 0 else f) for f in src)
            layers.append(LayerSpec(str(row["block"]), inputs, _sots_args(str(row["block"]), args, i)))
        ccn = [r for r in rows if r["block"] == "CCN"]
        if len(ccn) != 3:
            raise ConfigError(f"architecture: expected 3 CCN (REN) rows, found {len(ccn)}")
        ren = tuple(int(r["output_shape_at_1x3x320x576"][0][1]) if "output_shape_at_1x3x320x576" in r
                    else int(ast.literal_eval(str(r["args_resolved"]))[1]) for r in ccn)
        return Architecture(
            layers=tuple(layers),
            activation="lrelu",
            outputs=per_level((r["source"] for r in ccn), "outputs"),
            backbone_layers=SOTS_BACKBONE_LAYERS,
            ren_channels=per_level(ren, "ren_channels"),
            saan_width=int(d["saan_internal_width"]),
            emb_dim=int(d["id_embedding_dim"]),
            anchors=_anchors(d["anchors_px"]),
            strides=per_level(d.get("strides", STRIDES), "strides"),
            nc=int(d.get("nc", 1)),
        )
    except (KeyError, TypeError, ValueError, SyntaxError, IndexError) as exc:
        raise ConfigError(f"not a resolved SOTS architecture description: {type(exc).__name__}: {exc}") from None


def load_description(d: Mapping[str, Any]) -> Architecture:
    """Either JSON form: ours (:meth:`Architecture.to_dict`) or the original's resolved config."""
    if "args_resolved" in str(d.get("layers", [{}])[:1]):
        return from_sots_config(d)
    return Architecture.from_dict(d)


def first_difference(a: Architecture, b: Architecture) -> str | None:
    """A sentence naming the first field or trunk layer where ``a`` and ``b`` differ (``None`` if equal)."""
    if len(a.layers) != len(b.layers):
        return f"trunk has {len(a.layers)} layers vs {len(b.layers)}"
    for i, (x, y) in enumerate(zip(a.layers, b.layers, strict=True)):
        if x != y:
            return f"layer {i}: {x.describe()} vs {y.describe()}"
    for name in ("activation", "outputs", "ren_channels", "saan_width", "emb_dim", "anchors", "strides", "nc"):
        if getattr(a, name) != getattr(b, name):
            return f"{name}: {getattr(a, name)} vs {getattr(b, name)}"
    return None
