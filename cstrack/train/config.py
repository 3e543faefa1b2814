"""Typed training configuration: a frozen, validated :class:`TrainConfig` read from YAML at the edge.

YAML layout (every section optional except ``data``; unknown keys are refused, naming the field)::

    name: pets09-n
    out_dir: runs/pets09-n
    model: {variant: cstrack-n, overrides: {ren: ren}}
    init: {kind: coco}                       # coco | checkpoint | random
    data:
      sequences: [{path: data/PETS09-S2L1, frames: [1, 397]}]
      input_size: [512, 384]
      resize: letterbox                      # stretch (spec §8) | letterbox (Q11)
    epochs: 30
    batch: 8
    nominal_batch: 64
    optim: {name: sgd, lr0: 0.005, drop_epoch: 20}
    ema: {enabled: true}
    device: auto

Epochs are counted from 0 inside the trainer; ``drop_epoch: 20`` means epochs 0-19 (the first 20)
run at ``lr0`` and the rest at ``lr0 * drop_factor`` (spec §8 "step drop after epoch 20 of 30").
"""

from __future__ import annotations

import dataclasses
import math
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import yaml

from cstrack.errors import ConfigError
from cstrack.fsutil import load_yaml, plain, stable_hash
from cstrack.names import MAX_NAME, is_name

InitKind = Literal["coco", "checkpoint", "random"]
ResizeMode = Literal["stretch", "letterbox"]
ZeroMarked = Literal["drop", "no_identity"]
OptimName = Literal["sgd", "adamw"]


def _err(field_name: str, rule: str, value: Any) -> ConfigError:
    return ConfigError(f"{field_name}: {rule}, got {value!r}")


def _qual(owner: str, name: str) -> str:
    return f"{owner}.{name}" if owner else name


def _positive_int(owner: str, name: str, value: Any, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _err(_qual(owner, name), f"must be an integer >= {minimum}", value)


def _number(owner: str, name: str, value: Any, lo: float, hi: float = math.inf, lo_open: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _err(_qual(owner, name), "must be a finite number", value)
    if value < lo or value > hi or (lo_open and value == lo):
        bracket = "(" if lo_open else "["
        raise _err(_qual(owner, name), f"must be in {bracket}{lo}, {hi}]", value)


def _choice(owner: str, name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise _err(_qual(owner, name), f"must be one of {choices}", value)


@dataclass(frozen=True)
class ModelSection:
    """The network: a registered variant plus :class:`~cstrack.model.ModelConfig` overrides."""

    variant: str = "cstrack-n"  # our CPU variant (variants.yaml); the paper trains cstrack-l
    overrides: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        from cstrack.model import variant_config

        if not isinstance(self.overrides, Mapping):
            raise _err("model.overrides", "must be a mapping of ModelConfig fields", self.overrides)
        object.__setattr__(self, "overrides", dict(self.overrides))
        try:
            variant_config(self.variant, **self.overrides)
        except ConfigError as exc:
            raise ConfigError(f"model: {exc}") from None


@dataclass(frozen=True)
class InitSection:
    """Where the starting weights come from.

    - ``coco``: the shipped COCO YOLOv5n trunk + detect head (cstrack-n); REN/SAAN random (spec §8 init).
    - ``checkpoint``: a ``save_weights`` checkpoint at ``path``; ``ignore`` lists key prefixes that
      keep their fresh initialisation (e.g. ``["ren."]`` after a REN-off warm start).
    - ``random``: no pretrained weights.
    """

    kind: InitKind = "coco"
    path: str | None = None
    ignore: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _choice("init", "kind", self.kind, get_args(InitKind))
        if self.kind == "checkpoint" and not self.path:
            raise _err("init.path", "is required when init.kind is 'checkpoint'", self.path)
        if self.kind != "checkpoint" and self.path is not None:
            raise _err("init.path", "is only used with init.kind 'checkpoint'", self.path)
        object.__setattr__(self, "ignore", tuple(str(p) for p in self.ignore))


@dataclass(frozen=True)
class SequenceSource:
    """One MOTChallenge sequence folder and an inclusive, 1-based frame range (``None`` = all)."""

    path: str
    frames: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.path, str) or not self.path:
            raise _err("data.sequences.path", "must be a non-empty path", self.path)
        if self.frames is not None:
            fr = tuple(self.frames)
            if len(fr) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in fr) or not 1 <= fr[0] <= fr[1]:
                raise _err("data.sequences.frames", "must be [first, last] with 1 <= first <= last", self.frames)
            object.__setattr__(self, "frames", (int(fr[0]), int(fr[1])))


@dataclass(frozen=True)
class DataSection:
    """Training data and its preprocessing.

    Sources (at least one): MOT ``sequences`` with frame ranges, JDE ``label_lists`` (list files of
    image paths under ``root``) or a named ``mixture`` of the dataset registry (``S``, ``M``, ``B``).
    """

    sequences: tuple[SequenceSource, ...] = ()
    label_lists: tuple[str, ...] = ()
    mixture: str | None = None
    root: str | None = None
    input_size: tuple[int, int] = (1088, 608)  # spec §8: 1088x608 training input (W, H)
    resize: ResizeMode = "stretch"  # spec §8 stretches; inference letterboxes (Q11)
    augment: bool = True  # spec §8: HSV jitter + horizontal flip
    hsv_gains: tuple[float, float, float] = (0.015, 0.5, 0.4)  # spec §8 (h, s, v)
    flip: float = 0.5  # spec §8: horizontal flip probability
    workers: int = 0  # DataLoader worker processes (0 = load in the training process)
    # MOT sequences: gt rows with flag 0 ("ignore" in evaluation) are dropped as MOT counts boxes
    # (default), or kept as detection targets without identity (they are still people).
    zero_marked: ZeroMarked = "drop"
    visibility: float = 0.0  # MOT sequences: drop boxes whose known visibility is below this

    def __post_init__(self) -> None:
        seqs = tuple(s if isinstance(s, SequenceSource) else _build(SequenceSource, s, "data.sequences") for s in self.sequences)
        object.__setattr__(self, "sequences", seqs)
        object.__setattr__(self, "label_lists", tuple(str(p) for p in self.label_lists))
        if not (seqs or self.label_lists or self.mixture):
            raise _err("data", "needs at least one of sequences, label_lists or mixture", "nothing")
        size = tuple(self.input_size)
        if len(size) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 and v % 32 == 0 for v in size):
            raise _err("data.input_size", "must be [width, height], both positive multiples of 32", self.input_size)
        object.__setattr__(self, "input_size", (int(size[0]), int(size[1])))
        _choice("data", "resize", self.resize, get_args(ResizeMode))
        if not isinstance(self.augment, bool):
            raise _err("data.augment", "must be a bool", self.augment)
        gains = tuple(self.hsv_gains)
        if len(gains) != 3:
            raise _err("data.hsv_gains", "must be three gains (h, s, v)", self.hsv_gains)
        for g in gains:
            _number("data", "hsv_gains", g, 0.0, 1.0)
        object.__setattr__(self, "hsv_gains", tuple(float(g) for g in gains))
        _number("data", "flip", self.flip, 0.0, 1.0)
        _positive_int("data", "workers", self.workers, minimum=0)
        _choice("data", "zero_marked", self.zero_marked, get_args(ZeroMarked))
        _number("data", "visibility", self.visibility, 0.0, 1.0)
        if self.mixture is not None and not self.root:
            raise _err("data.root", "is required with data.mixture (the folder the datasets were prepared under)", self.root)


@dataclass(frozen=True)
class OptimSection:
    """Optimiser and learning-rate schedule (spec §8, with the effective schedule of Q18).

    Warm-up lasts ``max(warmup_epochs * iterations per epoch, warmup_min_iters)`` iterations: lr
    ramps linearly from 0 (biases from ``warmup_bias_lr``) to ``lr0 * f(epoch) * step(epoch)``,
    ``f(e) = lrf + (1 - lrf)(1 + cos(pi e / epochs)) / 2``; momentum from ``warmup_momentum`` to
    ``momentum``; gradient accumulation from 1 to ``nominal_batch / batch``.  After warm-up the lr
    is ``lr0 * step(epoch)`` with ``step(e) = drop_factor`` for ``e >= drop_epoch`` else 1.
    """

    name: OptimName = "sgd"  # spec §8: SGD; AdamW is our option
    lr0: float = 0.005  # spec §8
    momentum: float = 0.95  # spec §8 (AdamW: beta1)
    nesterov: bool = True  # spec §8
    weight_decay: float = 5e-4  # spec §8, on non-BN *.weight tensors
    warmup_epochs: float = 3.0  # spec §8: max(3 epochs, 1000 iterations)
    warmup_min_iters: int = 1000  # spec §8
    warmup_momentum: float = 0.9  # spec §8: momentum 0.9 -> 0.95 during warm-up
    warmup_bias_lr: float = 0.1  # spec §8: bias lr starts at 0.1
    lrf: float = 0.1  # spec §8: floor of the cosine factor f used as the warm-up target
    drop_epoch: int = 20  # spec §8: lr0 x 0.1 after epoch 20 (0-based epochs >= 20)
    drop_factor: float = 0.1  # spec §8
    adam_beta2: float = 0.999  # AdamW only

    def __post_init__(self) -> None:
        _choice("optim", "name", self.name, get_args(OptimName))
        _number("optim", "lr0", self.lr0, 0.0, 10.0, lo_open=True)
        _number("optim", "momentum", self.momentum, 0.0, 1.0)
        _number("optim", "warmup_momentum", self.warmup_momentum, 0.0, 1.0)
        _number("optim", "weight_decay", self.weight_decay, 0.0, 1.0)
        _number("optim", "warmup_epochs", self.warmup_epochs, 0.0)
        _positive_int("optim", "warmup_min_iters", self.warmup_min_iters, minimum=0)
        _number("optim", "warmup_bias_lr", self.warmup_bias_lr, 0.0, 10.0)
        _number("optim", "lrf", self.lrf, 0.0, 1.0)
        _positive_int("optim", "drop_epoch", self.drop_epoch, minimum=0)
        _number("optim", "drop_factor", self.drop_factor, 0.0, 1.0)
        _number("optim", "adam_beta2", self.adam_beta2, 0.0, 1.0, lo_open=True)
        if not isinstance(self.nesterov, bool):
            raise _err("optim.nesterov", "must be a bool", self.nesterov)
        if self.nesterov and self.name == "sgd" and self.momentum == 0:
            raise _err("optim.momentum", "must be > 0 with nesterov SGD", self.momentum)


@dataclass(frozen=True)
class EmaSection:
    """Model EMA (spec §8): ``decay(u) = decay * (1 - exp(-u / tau))`` after ``u`` optimiser steps."""

    enabled: bool = True  # spec §8: EMA weights are saved/evaluated
    decay: float = 0.9999  # spec §8
    tau: float = 2000.0  # spec §8

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise _err("ema.enabled", "must be a bool", self.enabled)
        _number("ema", "decay", self.decay, 0.0, 1.0)
        _number("ema", "tau", self.tau, 0.0, lo_open=True)


@dataclass(frozen=True)
class FreezeSection:
    """Keep parameters with these name prefixes fixed (no gradient, BN statistics frozen) during
    the first ``epochs`` epochs, e.g. ``prefixes: [trunk.]`` to adapt the new heads first."""

    epochs: int = 0
    prefixes: tuple[str, ...] = ("trunk.",)

    def __post_init__(self) -> None:
        _positive_int("freeze", "epochs", self.epochs, minimum=0)
        object.__setattr__(self, "prefixes", tuple(str(p) for p in self.prefixes))
        if self.epochs and not self.prefixes:
            raise _err("freeze.prefixes", "must name at least one prefix when freeze.epochs > 0", self.prefixes)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run.  Validated at construction (``ConfigError`` naming
    the field); built from YAML with :func:`load_train_config`."""

    data: DataSection
    name: str = "train"
    out_dir: str = "runs/train"
    model: ModelSection = field(default_factory=ModelSection)
    init: InitSection = field(default_factory=InitSection)
    optim: OptimSection = field(default_factory=OptimSection)
    ema: EmaSection = field(default_factory=EmaSection)
    freeze: FreezeSection = field(default_factory=FreezeSection)
    epochs: int = 30  # spec §8
    batch: int = 8  # spec §8: images per step and per process
    nominal_batch: int = 64  # spec §8: 8 x 8 accumulated
    eta: float = 0.02  # spec §7.5: ID loss weight
    device: str = "auto"  # auto = CUDA when present (with AMP), else CPU fp32
    amp: bool = True  # autocast + GradScaler, CUDA only (spec §8 mixed precision)
    seed: int = 2020  # spec §8
    deterministic: bool = False  # torch deterministic algorithms (needed for bit-exact resume)
    keep_checkpoints: int = 2  # newest per-epoch training checkpoints kept on disk
    steps_root: str | None = None  # catalog root for the train_steps table (None = <out_dir>/catalog)
    export_path: str | None = None  # final (EMA) weights (None = <out_dir>/weights/<name>.pt)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not is_name(self.name, MAX_NAME):
            raise _err("name", "must be 1-200 letters, digits, '.', '_' or '-' (it is the catalog run_id)", self.name)
        if not isinstance(self.out_dir, str) or not self.out_dir:
            raise _err("out_dir", "must be a non-empty path", self.out_dir)
        _positive_int("", "epochs", self.epochs)
        _positive_int("", "batch", self.batch)
        _positive_int("", "nominal_batch", self.nominal_batch)
        _positive_int("", "keep_checkpoints", self.keep_checkpoints)
        _positive_int("", "seed", self.seed, minimum=0)
        _number("", "eta", self.eta, 0.0)
        if not isinstance(self.device, str) or not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            raise _err("device", "must be auto, cpu, cuda or cuda:N", self.device)
        for name in ("amp", "deterministic"):
            if not isinstance(getattr(self, name), bool):
                raise _err(name, "must be a bool", getattr(self, name))
        if self.freeze.epochs > self.epochs:
            raise _err("freeze.epochs", f"must be <= epochs ({self.epochs})", self.freeze.epochs)

    # -- derived values -------------------------------------------------------------------------

    def accumulate(self, world_size: int = 1) -> int:
        """Steps accumulated per optimiser step after warm-up: ``round(nominal_batch / total batch)``."""
        return max(1, round(self.nominal_batch / (self.batch * world_size)))

    def steps_dir(self) -> Path:
        """The catalog root of this run's ``train_steps`` rows: ``steps_root``, else ``<out_dir>/catalog``."""
        return Path(self.steps_root) if self.steps_root else Path(self.out_dir) / "catalog"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-able dict (round-trips through :meth:`from_dict`)."""
        return plain(dataclasses.asdict(self))

    def config_hash(self) -> str:
        """sha256 of the canonical JSON of :meth:`to_dict` without the output locations
        (``out_dir``, ``steps_root``, ``export_path``), which do not change what is trained."""
        d = self.to_dict()
        for key in _OUTPUT_FIELDS:
            d.pop(key)
        return stable_hash(d)

    def replace(self, **changes: Any) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ConfigError(f"unknown train config field(s): {sorted(unknown)}")
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainConfig:
        return _build(cls, d, "")


_OUTPUT_FIELDS = ("out_dir", "steps_root", "export_path")

_SECTIONS: dict[str, type] = {
    "model": ModelSection, "init": InitSection, "data": DataSection, "optim": OptimSection,
    "ema": EmaSection, "freeze": FreezeSection,
}


def _build(cls: type, d: Any, where: str) -> Any:
    """Build dataclass ``cls`` from a mapping, refusing unknown keys (named with their path)."""
    if isinstance(d, cls):
        return d
    if not isinstance(d, Mapping):
        raise _err(where or cls.__name__, "must be a mapping", d)
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        prefix = f"{where}." if where else ""
        raise ConfigError(f"{prefix}{unknown[0]}: unknown field (known: {', '.join(sorted(names))})")
    kwargs: dict[str, Any] = {}
    for key, value in d.items():
        sub = f"{where}.{key}" if where else key
        if cls is TrainConfig and key in _SECTIONS:
            kwargs[key] = _build(_SECTIONS[key], value if value is not None else {}, sub)
        elif _is_tuple_hint(hints[key]) and isinstance(value, list):
            kwargs[key] = tuple(value)
        else:
            kwargs[key] = value
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required field missing
        raise ConfigError(f"{where or cls.__name__}: {exc}") from None


def _is_tuple_hint(hint: Any) -> bool:
    origin = get_origin(hint)
    if origin is tuple:
        return True
    if origin in (Union, types.UnionType):
        return any(_is_tuple_hint(a) for a in get_args(hint))
    return False


def load_train_config(path: str | Path, **overrides: Any) -> TrainConfig:
    """Read a YAML training config; relative data/init paths stay as written (resolved against the
    working directory when used).  ``overrides`` replace top-level fields."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config: {p} not found")
    try:
        raw = load_yaml(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"config: {p} is not valid YAML: {exc}") from None
    if not isinstance(raw, Mapping):
        raise ConfigError(f"config: {p} must hold a mapping at the top level")
    raw = {**raw, **overrides}
    try:
        return TrainConfig.from_dict(raw)
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from None


def dump_train_config(cfg: TrainConfig) -> str:
    """YAML text of ``cfg`` (what a run writes beside its checkpoints)."""
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
