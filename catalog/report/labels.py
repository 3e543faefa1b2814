"""Label runs by their ablation setting, in the words of the paper's Tables I, II, III and V.

A run takes part in an ablation table when its config says so::

    {"ablation": {"table": "II"}}                         # or "tables": ["I", "II"], or just "II"
    {"ablation": {"table": "II", "setting": "my words"}}  # an explicit label wins

Otherwise the label is derived from the switches the config carries (``config["model"]`` holds
:class:`cstrack.model.config.ModelConfig` fields, ``config["loss"]["eta"]`` the ID-loss weight;
missing switches take the ``ModelConfig``/loss defaults, i.e. the CSTrack setting).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ABLATION_TABLES: tuple[str, ...] = ("I", "II", "III", "V")

# Defaults of the switches (cstrack.model.config.ModelConfig and cstrack.losses.loss: the CSTrack
# setting of the paper).
_DEFAULTS: dict[str, Any] = {
    "trunk": "yolov5", "ren": "ren", "ren_self": True, "ren_cross": True, "ren_lambda": None,
    "emb_head": "saan", "saan_level_sam": (True, True, True), "saan_level_cam": (False, False, False),
    "saan_fused": "cam", "eta": 0.02,
}


def _lookup(config: Mapping[str, Any], key: str) -> Any:
    for section in ("model", "loss", "train"):
        sub = config.get(section)
        if isinstance(sub, Mapping) and key in sub:
            return sub[key]
        if isinstance(sub, Mapping) and isinstance(sub.get("loss"), Mapping) and key in sub["loss"]:
            return sub["loss"][key]
    return config.get(key, _DEFAULTS[key])


def _any(v: Any) -> bool:
    return any(v) if isinstance(v, list | tuple) else bool(v)


def ablation_tables(config: Mapping[str, Any]) -> tuple[str, ...]:
    """The ablation tables a run's config puts it in (possibly none)."""
    ab = config.get("ablation")
    if isinstance(ab, str):
        tables: list[Any] = [ab]
    elif isinstance(ab, Mapping):
        tables = list(ab.get("tables") or ([ab["table"]] if "table" in ab else []))
    else:
        tables = []
    return tuple(t for t in (str(x).upper() for x in tables) if t in ABLATION_TABLES)


def setting_label(config: Mapping[str, Any], table: str) -> str:
    """The run's setting in the vocabulary of ablation ``table`` (I, II, III or V)."""
    ab = config.get("ablation")
    if isinstance(ab, Mapping) and ab.get("setting"):
        return str(ab["setting"])
    ren = str(_lookup(config, "ren"))
    head = str(_lookup(config, "emb_head"))
    if table == "I":
        trunk = str(_lookup(config, "trunk"))
        parts = [p for p in ({"ren": "REN", "conv": "plain CNN"}.get(ren), "SAAN" if head == "saan" else None) if p]
        base = "JDE " + ("yolov5" if trunk.startswith("yolov5") else trunk)
        return f"{base} + {' + '.join(parts)}" if parts else f"{base} (no REN no SAAN)"
    if table == "II":
        if ren == "none":
            return "without REN"
        if ren == "conv":
            return "REN replaced by plain CNN"
        sr, cr = bool(_lookup(config, "ren_self")), bool(_lookup(config, "ren_cross"))
        if sr and not cr:
            return "REN self-relation only"
        if cr and not sr:
            return "REN cross-relation only"
        lam = _lookup(config, "ren_lambda")
        return "REN SR+CR " + ("learned lambda" if lam is None else f"fixed lambda {float(lam):g}")
    if table == "III":
        if head != "saan":
            return "basic ReID head (no SAAN)"
        sam, cam = _any(_lookup(config, "saan_level_sam")), _any(_lookup(config, "saan_level_cam"))
        level = {(False, False): "no attention", (True, False): "SAM per resolution",
                 (False, True): "CAM per resolution", (True, True): "SAM+CAM per resolution"}[(sam, cam)]
        fused = {"sam": " + SAM after concat", "cam": " + CAM after concat",
                 "both": " + SAM+CAM after concat"}.get(str(_lookup(config, "saan_fused")), "")
        return f"SAAN {level}{fused}"
    if table == "V":
        return f"eta={float(_lookup(config, 'eta')):g}"
    raise ValueError(f"unknown ablation table {table!r}")
