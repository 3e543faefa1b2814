"""The inference settings a checkpoint carries: one schema, read from a weights record's ``inference`` key.

A checkpoint is only meaningful at the settings it was trained or validated at: a cstrack-n fine-tuned
at 512x384 loses a third of its MOTA at 1088x608 (issue 16).  Its record (``X.json`` beside ``X.pt``,
:mod:`cstrack.model.weights`) therefore holds::

    "inference": {"input_size": [W, H], "conf_thres": float, "nms_thres": float,
                  "tracker_preset": str, "frame_rate": float | null}

Every key is optional; a missing key (or a record without the block) takes the value of
:data:`DEFAULTS`.  Commands use :func:`settings_for_weights` and then
:meth:`InferenceSettings.override` with whatever the user gave on the command line, so an explicit
flag always wins.  Only this module knows the schema.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cstrack.errors import ConfigError
from cstrack.model.input_size import STRIDE, InputSize

RECORD_KEY = "inference"  # the weights record's key holding the block


# Two cells of the coarsest (stride-32) map.  Issue 20: at 32x32 a 768x576 frame shrinks 24 times,
# people become ~5 px tall and the detector silently found nothing.
MIN_INPUT_SIDE = 2 * STRIDE


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


@dataclass(frozen=True)
class InferenceSettings:
    """How to run a checkpoint.

    - ``input_size``: network input ``(width, height)``, multiples of 32.
    - ``conf_thres`` / ``nms_thres``: the detection score threshold and the Cluster-DIoU NMS IoU
      threshold (:class:`cstrack.model.postprocess.PostprocessConfig`).
    - ``tracker_preset``: a :func:`cstrack.tracker.preset` name or preset file.
    - ``frame_rate``: frames per second of the footage the checkpoint was trained on (``None``:
      unknown).  Used as the tracker's frame rate when a source does not report one.
    """

    input_size: tuple[int, int] = (1088, 608)  # spec §11 test size
    conf_thres: float = 0.5  # spec §11
    nms_thres: float = 0.6  # spec §11
    tracker_preset: str = "default"  # cstrack.tracker.config: the spec's values with the §15 fixes
    frame_rate: float | None = None  # unknown unless the checkpoint's record says

    def __post_init__(self) -> None:
        size = self.input_size
        if (
            not isinstance(size, tuple | list) or len(size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in size)
        ):
            raise ConfigError(f"expected (width, height) integers, got {size!r}", "input_size")
        w, h = int(size[0]), int(size[1])
        if w <= 0 or h <= 0 or w % STRIDE or h % STRIDE:
            raise ConfigError(f"width and height must be positive multiples of {STRIDE}, got {w}x{h}", "input_size")
        if min(w, h) < MIN_INPUT_SIDE:
            raise ConfigError(f"{w}x{h} is too small to detect people; each side must be at least {MIN_INPUT_SIDE}",
                              "input_size")
        object.__setattr__(self, "input_size", InputSize(w, h))  # checked: the detectors take it as it is
        for name in ("conf_thres", "nms_thres"):
            v = getattr(self, name)
            if not _is_number(v) or not 0.0 <= v <= 1.0:
                raise ConfigError(f"must be a number in [0, 1], got {v!r}", name)
        from cstrack.tracker.config import PRESET_NAMES
        from cstrack.tracker.presetfile import is_preset

        if not isinstance(self.tracker_preset, str) or not is_preset(self.tracker_preset):
            raise ConfigError(f"unknown preset {self.tracker_preset!r}; choose from {', '.join(PRESET_NAMES)} or a "
                              "preset file", "tracker_preset")
        fr = self.frame_rate
        if fr is not None and (not _is_number(fr) or not math.isfinite(fr) or fr <= 0):
            raise ConfigError(f"must be None or a number > 0, got {fr!r}", "frame_rate")

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored under a record's ``inference`` key (and with results)."""
        return {
            "input_size": list(self.input_size),
            "conf_thres": float(self.conf_thres),
            "nms_thres": float(self.nms_thres),
            "tracker_preset": self.tracker_preset,
            "frame_rate": None if self.frame_rate is None else float(self.frame_rate),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "inference settings") -> InferenceSettings:
        """Settings from their JSON form; missing keys take :data:`DEFAULTS`' values, an unknown key
        or a bad value raises :class:`ConfigError` naming ``source`` and the key."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{source}: expected an object with {', '.join(_FIELDS)}, got {type(data).__name__}")
        unknown = sorted(set(data) - set(_FIELDS))
        if unknown:
            raise ConfigError(f"{source}: unknown key(s) {unknown}; expected some of {', '.join(_FIELDS)}")
        values = dict(data)
        if "input_size" in values:
            values["input_size"] = _parse_size(values["input_size"], source)
        try:
            return cls(**values)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None

    def override(self, **changes: Any) -> InferenceSettings:
        """A copy with the given fields replaced; ``None`` means "not given" and keeps the current
        value (so CLI options defaulting to ``None`` can be passed straight through)."""
        unknown = sorted(set(changes) - set(_FIELDS))
        if unknown:
            raise ConfigError(f"InferenceSettings: no such field(s) {unknown}")
        given = {k: v for k, v in changes.items() if v is not None}
        return dataclasses.replace(self, **given) if given else self

    def postprocess_config(self) -> Any:
        """The detector's :class:`~cstrack.model.postprocess.PostprocessConfig`."""
        from cstrack.model.postprocess import PostprocessConfig

        return PostprocessConfig(conf_thres=self.conf_thres, nms_thres=self.nms_thres)

    def describe(self) -> str:
        """One line for the console, e.g. ``input 512x384, conf 0.5, nms 0.6, preset default, trained at 7 fps``."""
        w, h = self.input_size
        fr = "unknown" if self.frame_rate is None else f"{self.frame_rate:g} fps"
        return (f"input {w}x{h}, conf {self.conf_thres:g}, nms {self.nms_thres:g}, "
                f"preset {self.tracker_preset}, trained at {fr}")


_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(InferenceSettings))
DEFAULTS = InferenceSettings()


def _parse_size(value: Any, source: str) -> tuple[int, int]:
    """``[W, H]`` or ``"WxH"`` -> ``(W, H)``."""
    if isinstance(value, str):
        parts = value.lower().split("x")
        if len(parts) == 2 and all(p.strip().isdigit() for p in parts):
            return int(parts[0]), int(parts[1])
    elif isinstance(value, list | tuple) and len(value) == 2:
        return tuple(value)  # element types checked by __post_init__
    raise ConfigError(f"{source}: input_size: expected [width, height] or 'WxH', got {value!r}")


def from_record(record: Mapping[str, Any] | None, source: str = "weights record") -> InferenceSettings:
    """The settings of a weights record (its ``inference`` block), :data:`DEFAULTS` when it has none."""
    if record is None or record.get(RECORD_KEY) is None:
        return DEFAULTS
    return InferenceSettings.from_dict(record[RECORD_KEY], f"{source}: {RECORD_KEY}")


def settings_for_weights(weights: str | Path | None) -> InferenceSettings:
    """The settings carried by the checkpoint ``weights`` (its record ``X.json``); :data:`DEFAULTS`
    for ``None`` (random init), ``"coco"`` and checkpoints whose record has no ``inference`` block."""
    if weights is None or str(weights) == "coco":
        return DEFAULTS
    from cstrack.model.weights import read_record, record_path

    return from_record(read_record(weights), str(record_path(weights)))


def effective(base: InferenceSettings, *, input_size: tuple[int, int] | None = None, conf_thres: float | None = None,
              nms_thres: float | None = None, tracker_preset: str | None = None) -> InferenceSettings:
    """``base`` (a checkpoint's settings) with what a user gave (``None``: keep ``base``'s), by the
    one rule every surface follows (``cstrack track``, track-all, tune, training's evaluation):

    - a tuned preset *file* carries the detection threshold it was tuned with: it becomes
      ``conf_thres`` unless one is given explicitly;
    - the tracker's birth threshold (``det_thresh``) is the preset's own, independent of
      ``conf_thres`` (:func:`tracker_config`): the checkpoint's record sets the detection threshold,
      the preset the birth threshold, and tuning searches both.
    """
    if tracker_preset is not None:
        from cstrack.tracker import preset
        from cstrack.tracker.presetfile import looks_like_file, read_preset_file

        preset(tracker_preset)  # an unknown name fails listing the choices
        if conf_thres is None and looks_like_file(tracker_preset):
            conf_thres = read_preset_file(tracker_preset).conf_thres
    return base.override(input_size=input_size, conf_thres=conf_thres, nms_thres=nms_thres,
                         tracker_preset=tracker_preset)


def tracker_config(settings: InferenceSettings) -> Any:
    """The :class:`~cstrack.tracker.TrackerConfig` that goes with ``settings``: its preset, birth
    threshold included (see :func:`effective` for why ``conf_thres`` does not move it)."""
    from cstrack.tracker import preset

    return preset(settings.tracker_preset)


def with_settings(record: Mapping[str, Any], settings: InferenceSettings) -> dict[str, Any]:
    """A copy of the weights ``record`` carrying ``settings`` (the checkpoint file is untouched, so
    the record's sha256 stays valid)."""
    out = dict(record)
    out[RECORD_KEY] = settings.to_dict()
    return out
