"""The tuning search space, declared once per tracker preset.

A :class:`Param` is one dimension: a :class:`~cstrack.tracker.TrackerConfig` field or the detection
score threshold (``conf_thres``, replayed from cached detections above their score floor).  The
ranges bracket the spec's values (§10-§11) on both sides; a trial's parameters become a tracker
configuration with :func:`apply`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from cstrack.errors import ConfigError
from cstrack.tracker import TrackerConfig, preset

DEFAULT_CONF_THRES = 0.5  # spec §11 conf_thres (the detector's default, PostprocessConfig)


@dataclass(frozen=True)
class Param:
    """One dimension: ``name`` in ``[low, high]``; ``kind`` float or int; ``target`` says where the
    value goes (``tracker``: a TrackerConfig field; ``detection``: the replay score threshold)."""

    name: str
    low: float
    high: float
    kind: Literal["float", "int"] = "float"
    target: Literal["tracker", "detection"] = "tracker"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise ConfigError(f"Param {self.name}: need finite low < high, got [{self.low}, {self.high}]")


# The cascade's thresholds (§10.3), the lost-track buffer (§11), the appearance/motion fusion
# weight and template momentum (§10.1), the birth threshold and the detection threshold.
_JDE_SPACE: tuple[Param, ...] = (
    Param("conf_thres", 0.2, 0.7, target="detection"),   # §11: 0.5
    Param("det_thresh", 0.2, 0.8),                        # §11: 0.5 (birth)
    Param("appearance_thresh", 0.2, 0.8),                 # §10.3 stage 1: 0.4
    Param("motion_weight", 0.0, 0.2),                     # §10.3 stage 1: 0.02
    Param("iou_thresh", 0.3, 0.9),                        # §10.3 stage 2: 0.5
    Param("unconfirmed_thresh", 0.4, 0.9),                # §10.3 stage 3: 0.7
    Param("track_buffer", 10, 90, kind="int"),            # §11: 30
    Param("template_momentum", 0.5, 0.98),                # §10.1: 0.9
)

SEARCH_SPACES: dict[str, tuple[Param, ...]] = {
    "default": _JDE_SPACE,
    "mot17": _JDE_SPACE,
    "mot20": _JDE_SPACE,
    "original": _JDE_SPACE,
    "sots": _JDE_SPACE,
}


def base_preset(preset_name: str) -> str:
    """The built-in preset a name stands for: itself, or a preset file's ``base``."""
    from cstrack.tracker.presetfile import looks_like_file, read_preset_file

    return read_preset_file(preset_name).base if looks_like_file(preset_name) else preset_name


def search_space(preset_name: str) -> tuple[Param, ...]:
    """The declared space of a built-in preset (a preset file: its base's); :class:`ConfigError` for others."""
    try:
        return SEARCH_SPACES[base_preset(preset_name)]
    except KeyError:
        raise ConfigError(f"--preset: no search space for {preset_name!r}; "
                          f"choose from {', '.join(SEARCH_SPACES)}") from None


def default_params(preset_name: str, conf_thres: float | None = None) -> dict[str, Any]:
    """The baseline tuning is compared against: the preset's own values of every dimension of its
    space (a preset file's values over its base) and the detection threshold the run would use
    otherwise: the preset file's, else ``conf_thres`` (the checkpoint's own, from its record), else
    :data:`DEFAULT_CONF_THRES`."""
    from cstrack.tracker.presetfile import looks_like_file, read_preset_file

    cfg = preset(preset_name)
    file_conf = read_preset_file(preset_name).conf_thres if looks_like_file(preset_name) else None
    conf = file_conf if file_conf is not None else conf_thres if conf_thres is not None else DEFAULT_CONF_THRES
    out: dict[str, Any] = {}
    for p in search_space(preset_name):
        out[p.name] = float(conf) if p.target == "detection" else getattr(cfg, p.name)
    return out


def apply(preset_name: str, params: Mapping[str, Any]) -> tuple[TrackerConfig, float]:
    """``(tracker config, conf_thres)`` of a trial: the preset with the tracker parameters replaced;
    unknown names raise :class:`ConfigError`."""
    space = {p.name: p for p in search_space(preset_name)}
    unknown = sorted(set(params) - set(space))
    if unknown:
        raise ConfigError(f"params: not in the {preset_name!r} search space: {unknown}")
    tracker = {k: (int(v) if space[k].kind == "int" else float(v)) for k, v in params.items()
               if space[k].target == "tracker"}
    conf = float(params.get("conf_thres", DEFAULT_CONF_THRES))
    return preset(preset_name, **tracker), conf


def split_params(preset_name: str, params: Mapping[str, Any]) -> tuple[dict[str, Any], float | None]:
    """``(tracker overrides, conf_thres or None)``: the content of a preset file."""
    space = {p.name: p for p in search_space(preset_name)}
    tracker = {k: (int(v) if space[k].kind == "int" else float(v)) for k, v in params.items()
               if space[k].target == "tracker"}
    conf = params.get("conf_thres")
    return tracker, None if conf is None else float(conf)
