"""Tracker configuration: a frozen, validated :class:`TrackerConfig` and named presets.

Every threshold of the JDE cascade (spec §10.3) lives here.  All association thresholds are
*maximum costs*: a pair is matched only if its cost is below the threshold.

Presets (:func:`builtin_preset`; :func:`cstrack.tracker.preset` also reads preset files):

- ``default``: the spec's values (§10-§11) with the fixes of §15: the first frame of a confirmed
  track is reported (Q9), no output filter (Q10).
- ``mot17``: identical to ``default``; SOTS tests MOT16/17 with the §11 values.
- ``mot20``: identical to ``default``; SOTS's MOT20 test section is empty so §11 applies (§16).
- ``original`` (alias ``sots``): SOTS's observable output for comparison: new tracks are not
  reported before their second matched frame and boxes pass SOTS's test-script filter
  (``w·h > 100`` and ``w / h <= 0.6``, §9.8).  IDs still start at 1 per tracker (Q1 is a bug, not
  behaviour worth reproducing).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np

from cstrack.errors import ConfigError
from cstrack.tracker.kalman import CHI2_95_4DOF, KalmanParams

NewTrackReport = Literal["backfill", "next_frame", "immediate"]


def _field_error(owner: str, name: str, rule: str, value: Any) -> ConfigError:
    return ConfigError(f"{owner}.{name}: {rule}, got {value!r}")


@dataclass(frozen=True)
class OutputFilter:
    """Which tracked boxes are reported (spec §9.8, Q10); ``None`` disables a rule.

    A box (tlwh) passes when ``w·h > min_area`` and ``w / h <= max_aspect``.
    """

    min_area: float | None = 100.0  # §9.8 / §11 min_box_area
    max_aspect: float | None = 0.6  # §9.8: SOTS's upright-pedestrian rule (w/h <= 0.6)

    def __post_init__(self) -> None:
        for name in ("min_area", "max_aspect"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
                raise _field_error("OutputFilter", name, "must be None or a finite number >= 0", v)

    def keep(self, tlwh: np.ndarray) -> np.ndarray:
        """bool [N]: which of the ``[N, 4]`` tlwh boxes pass."""
        b = np.asarray(tlwh, dtype=np.float64).reshape(-1, 4)
        w, h = b[:, 2], b[:, 3]
        ok = np.ones(len(b), dtype=bool)
        if self.min_area is not None:
            ok &= w * h > self.min_area
        if self.max_aspect is not None:
            with np.errstate(divide="ignore", invalid="ignore"):
                ok &= (h > 0) & (w / h <= self.max_aspect)
        return ok


@dataclass(frozen=True)
class TrackerConfig:
    """Thresholds and switches of :class:`cstrack.tracker.Tracker` (validated on construction)."""

    # §10.3 step 6: an unmatched detection starts a track if score >= det_thresh (= conf_thres, §11).
    det_thresh: float = 0.5
    # §10.3 stage 1: max fused appearance+motion cost.
    appearance_thresh: float = 0.4
    # §10.3 stage 1: cost = (1 - w)·cosine + w·mahalanobis², w = 1 - 0.98.
    motion_weight: float = 0.02
    # §10.2: squared-Mahalanobis gate, chi-square 0.95 quantile with 4 dof.
    gating_thresh: float = CHI2_95_4DOF
    # §10.3 stage 2: max 1 - IoU between remaining tracked tracks and detections.
    iou_thresh: float = 0.5
    # §10.3 stage 3: max 1 - IoU between unconfirmed tracks and detections.
    unconfirmed_thresh: float = 0.7
    # Not in SOTS (it always has embeddings): stage 1 when detections carry none (gt mode, public
    # boxes without a model) matches the whole pool, lost tracks included, by max 1 - IoU against
    # the Kalman prediction; 0.7 is SORT's IoU >= 0.3.
    motion_only_thresh: float = 0.7
    # Not in SOTS: also apply the Mahalanobis gate in that motion-only stage 1.
    motion_only_gating: bool = True
    # Use embeddings when detections carry them (False forces motion-only association).
    use_appearance: bool = True
    # §11 track_buffer; §10.3 step 7: max_time_lost = int(frame_rate / buffer_fps · track_buffer).
    track_buffer: int = 30
    buffer_fps: float = 30.0
    # §10.3 step 8: a (tracked, lost) pair closer than this 1 - IoU is a duplicate.
    duplicate_thresh: float = 0.15
    # §10.1: template <- m·template + (1 - m)·embedding, re-normalised.
    template_momentum: float = 0.9
    # Q9.  "backfill": a new track is confirmed by a second match (as in SOTS) and its birth box is
    # then reported too, for the birth frame; "next_frame": SOTS, the birth box is never reported;
    # "immediate": reported (and confirmed) from the birth frame on, no confirmation stage.
    new_track_report: NewTrackReport = "backfill"
    # Q10: SOTS's pedestrian output filter is off by default (see the ``original`` preset).
    output_filter: OutputFilter | None = None
    # §10.2 noise model.
    kalman: KalmanParams = field(default_factory=KalmanParams)

    def __post_init__(self) -> None:
        def number(name: str) -> float:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise _field_error("TrackerConfig", name, "must be a finite number", v)
            return float(v)

        def in_range(name: str, lo: float, hi: float, lo_open: bool = False) -> None:
            v = number(name)
            if v < lo or v > hi or (lo_open and v == lo):
                bracket = "(" if lo_open else "["
                raise _field_error("TrackerConfig", name, f"must be in {bracket}{lo}, {hi}]", v)

        in_range("det_thresh", 0.0, 1.0)
        in_range("iou_thresh", 0.0, 1.0, lo_open=True)
        in_range("unconfirmed_thresh", 0.0, 1.0, lo_open=True)
        in_range("motion_only_thresh", 0.0, 1.0, lo_open=True)
        in_range("duplicate_thresh", 0.0, 1.0)
        in_range("motion_weight", 0.0, 1.0)
        in_range("template_momentum", 0.0, 1.0)
        for name in ("appearance_thresh", "gating_thresh", "buffer_fps"):
            if number(name) <= 0:
                raise _field_error("TrackerConfig", name, "must be > 0", getattr(self, name))
        if isinstance(self.track_buffer, bool) or not isinstance(self.track_buffer, int) or self.track_buffer < 0:
            raise _field_error("TrackerConfig", "track_buffer", "must be an integer >= 0", self.track_buffer)
        for name in ("motion_only_gating", "use_appearance"):
            if not isinstance(getattr(self, name), bool):
                raise _field_error("TrackerConfig", name, "must be a bool", getattr(self, name))
        if self.new_track_report not in get_args(NewTrackReport):
            raise _field_error(
                "TrackerConfig", "new_track_report", f"must be one of {get_args(NewTrackReport)}",
                self.new_track_report,
            )
        if self.output_filter is not None and not isinstance(self.output_filter, OutputFilter):
            raise _field_error("TrackerConfig", "output_filter", "must be an OutputFilter or None", self.output_filter)
        if not isinstance(self.kalman, KalmanParams):
            raise _field_error("TrackerConfig", "kalman", "must be a KalmanParams", self.kalman)

    def max_time_lost(self, frame_rate: float) -> int:
        """Frames a lost track survives at ``frame_rate`` (spec §10.3 step 7)."""
        if not (math.isfinite(frame_rate) and frame_rate > 0):
            raise ConfigError(f"frame_rate: must be a positive number, got {frame_rate!r}")
        return int(frame_rate / self.buffer_fps * self.track_buffer)

    def replace(self, **changes: Any) -> TrackerConfig:
        """A copy with ``changes`` applied (validated); unknown names raise :class:`ConfigError`."""
        known = {f.name for f in dataclasses.fields(self)}
        for name in changes:
            if name not in known:
                raise ConfigError(f"TrackerConfig.{name}: no such field")
        return dataclasses.replace(self, **changes)


def _original() -> TrackerConfig:
    return TrackerConfig(new_track_report="next_frame", output_filter=OutputFilter(min_area=100.0, max_aspect=0.6))


_PRESETS: dict[str, TrackerConfig] = {
    "default": TrackerConfig(),
    "mot17": TrackerConfig(),
    "mot20": TrackerConfig(),
    "original": _original(),
    "sots": _original(),
}

PRESET_NAMES: tuple[str, ...] = tuple(_PRESETS)


def builtin_preset(name: str, **overrides: Any) -> TrackerConfig:
    """The built-in preset ``name`` (see the module docstring) with optional field ``overrides``.
    :func:`cstrack.tracker.preset` also accepts preset files (:mod:`cstrack.tracker.presetfile`)."""
    try:
        cfg = _PRESETS[name]
    except KeyError:
        raise ConfigError(f"preset: unknown tracker preset {name!r}; choose from {', '.join(PRESET_NAMES)} "
                          "or a preset file (.yaml/.json)") from None
    return cfg.replace(**overrides) if overrides else cfg


def is_builtin(name: str) -> bool:
    """True for a built-in preset name (:data:`PRESET_NAMES`)."""
    return name in _PRESETS
