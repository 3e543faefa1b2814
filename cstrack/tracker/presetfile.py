"""Tracker preset files: a named preset plus field overrides, as written by ``cstrack tune``.

A preset file (YAML or JSON) names its base preset and the fields it changes::

    base: default              # a cstrack.tracker preset name
    tracker:                   # TrackerConfig fields (scalars only)
      det_thresh: 0.42
      track_buffer: 45
    detection:                 # optional: the detection score threshold the values were tuned with
      conf_thres: 0.35

``--preset FILE`` accepts such a file wherever a preset name is accepted
(:func:`preset`, exported as :func:`cstrack.tracker.preset`).  The ``detection`` block is read by the commands that build a
detector (:func:`read_preset_file`); the tracker itself only sees ``tracker``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cstrack.errors import ConfigError
from cstrack.fsutil import atomic_write_text, read_mapping
from cstrack.tracker.config import TrackerConfig, builtin_preset, is_builtin

SUFFIXES = (".yaml", ".yml", ".json")
_KEYS = ("base", "tracker", "detection", "comment")
_DETECTION_KEYS = ("conf_thres",)


def looks_like_file(name: str) -> bool:
    """True when a ``--preset`` value names a file rather than a built-in preset."""
    return name.lower().endswith(SUFFIXES) or "/" in name or "\\" in name


@dataclass(frozen=True)
class PresetFile:
    """A parsed preset file: ``base`` preset name, ``tracker`` overrides, ``conf_thres`` (or None)."""

    base: str
    tracker: Mapping[str, Any]
    conf_thres: float | None = None

    def config(self) -> TrackerConfig:
        """The :class:`~cstrack.tracker.TrackerConfig` (validated)."""
        return builtin_preset(self.base, **dict(self.tracker))


def preset(name: str, **overrides: Any) -> TrackerConfig:
    """The built-in preset ``name`` (:func:`cstrack.tracker.config.builtin_preset`) or the preset
    file ``name`` (a ``.yaml`` / ``.json`` path), with optional field ``overrides``."""
    if looks_like_file(name):
        cfg = read_preset_file(name).config()
        return cfg.replace(**overrides) if overrides else cfg
    return builtin_preset(name, **overrides)


def is_preset(name: str) -> bool:
    """True for a built-in preset name or a readable, valid preset file."""
    if is_builtin(name):
        return True
    if not looks_like_file(name):
        return False
    try:
        read_preset_file(name)
    except ConfigError:
        return False
    return True


def read_preset_file(path: str | Path) -> PresetFile:
    """Parse and validate the preset file ``path``; :class:`ConfigError` naming the file otherwise."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"--preset: no such preset file {p}")
    data = read_mapping(p, lambda reason: ConfigError(f"--preset {p}: {reason} (keys {', '.join(_KEYS)})"),
                        yaml_ok=True)
    unknown = sorted(set(data) - set(_KEYS))
    if unknown:
        raise ConfigError(f"--preset {p}: unknown key(s) {unknown}; expected some of {', '.join(_KEYS)}")
    base = data.get("base", "default")
    tracker = data.get("tracker") or {}
    detection = data.get("detection") or {}
    if not isinstance(base, str) or looks_like_file(base):
        raise ConfigError(f"--preset {p}: base: expected a built-in preset name, got {base!r}")
    if not isinstance(tracker, dict) or not isinstance(detection, dict):
        raise ConfigError(f"--preset {p}: tracker and detection must be mappings")
    bad = sorted(set(detection) - set(_DETECTION_KEYS))
    if bad:
        raise ConfigError(f"--preset {p}: detection: unknown key(s) {bad}; expected {', '.join(_DETECTION_KEYS)}")
    conf = detection.get("conf_thres")
    if conf is not None and (isinstance(conf, bool) or not isinstance(conf, int | float) or not 0 <= conf <= 1):
        raise ConfigError(f"--preset {p}: detection.conf_thres: must be a number in [0, 1], got {conf!r}")
    out = PresetFile(base, dict(tracker), None if conf is None else float(conf))
    try:
        out.config()
    except ConfigError as exc:
        raise ConfigError(f"--preset {p}: {exc}") from None
    return out


def write_preset_file(path: str | Path, base: str, tracker: Mapping[str, Any], conf_thres: float | None = None,
                      comment: str | None = None) -> Path:
    """Write a preset file atomically (YAML, or JSON for a ``.json`` path) after validating it."""
    PresetFile(base, dict(tracker), conf_thres).config()
    data: dict[str, Any] = {"base": base, "tracker": {k: _plain(v) for k, v in tracker.items()}}
    if conf_thres is not None:
        data["detection"] = {"conf_thres": float(conf_thres)}
    if comment:
        data["comment"] = comment
    text = json.dumps(data, indent=2) + "\n" if str(path).endswith(".json") else yaml.safe_dump(data, sort_keys=False)
    return atomic_write_text(path, text)


def _plain(v: Any) -> Any:
    if isinstance(v, bool | int | str) or v is None:
        return v
    return float(v)
