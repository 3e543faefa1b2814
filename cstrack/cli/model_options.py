"""What every command that builds a detector shares: the ``--variant`` / ``--weights`` / ``--size``
/ ``--conf`` / ``--nms`` options, turning them into a model (:func:`resolve_model`) and effective
inference settings (:func:`effective_settings`), and the settings record stored with results.

Used by ``cstrack track`` (:mod:`cstrack.cli.track_cmds`), its cached replay
(:mod:`cstrack.cli.cached_track`), ``cstrack bench-speed`` and ``cstrack export``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from cstrack.cli.common import parse_size

DEFAULT_VARIANT = "cstrack-l"  # a --variant without --weights and not the shipped checkpoint's: random init
VARIANT_HELP = "jde-l, cstrack-l, cstrack-s or cstrack-n; default: the checkpoint's"


def variant_option(help: str = VARIANT_HELP) -> Any:
    return typer.Option(None, "--variant", help=help)


def weights_option(default_note: str = "") -> Any:
    """``--weights``; ``default_note`` says more about the default (the shipped checkpoint)."""
    note = f" {default_note}" if default_note else ""
    return typer.Option(None, "--weights", help=f"checkpoint path, 'coco' (cstrack-n) or 'random'; default: the "
                        f"shipped CPU checkpoint{note}")


def size_option(note: str = "") -> Any:
    """``--size WxH``; ``note`` goes after "multiples of 32" (e.g. ", fixed in the file")."""
    return typer.Option(None, "--size", help=f"network input WxH (multiples of 32){note}; default: the "
                        "checkpoint's (1088x608 when it has none)")


def conf_option() -> Any:
    return typer.Option(None, "--conf", min=0.0, max=1.0, help="detection score threshold; default: the "
                        "checkpoint's record (the shipped cstrack-n_cpu.pt: 0.4), else a preset file's, else 0.5")


def nms_option() -> Any:
    return typer.Option(None, "--nms", min=0.0, max=1.0, help="NMS IoU threshold; default: the checkpoint's (0.6)")


def resolve_model(variant: str | None, weights: str | None) -> tuple[str, str | Path | None]:
    """``(variant, weights argument of build_detector)`` from the CLI options.

    No ``--weights``: the shipped CPU checkpoint (:func:`cstrack.paths.shipped_weights`), unless a
    ``--variant`` other than its own is asked for (then random init, for timing).  ``--weights
    random``: random init.  ``coco``: the COCO YOLOv5n weights.  A path: that checkpoint, whose
    variant is taken from its record when ``--variant`` is not given.
    """
    from cstrack.model.weights import read_record
    from cstrack.paths import shipped_weights

    if weights is None:
        shipped = shipped_weights()
        record = read_record(shipped) if shipped.is_file() else None
        shipped_variant = record.get("variant") if record else None
        if record is not None and variant in (None, shipped_variant):
            return str(shipped_variant), shipped
        return variant or DEFAULT_VARIANT, None
    if weights == "random":
        return variant or DEFAULT_VARIANT, None
    if weights == "coco":
        return variant or "cstrack-n", "coco"
    path = Path(weights)
    record = read_record(path) if path.is_file() else None
    return variant or (record or {}).get("variant") or DEFAULT_VARIANT, path


def effective_settings(weights: str | Path | None, size: str | None, conf: float | None, nms: float | None,
                       preset_name: str | None) -> Any:
    """The checkpoint's inference settings with the options the user gave."""
    from cstrack.model.inference_settings import settings_for_weights
    from cstrack.tracker import preset

    if preset_name is not None:
        preset(preset_name)  # an unknown name fails naming the option's values
        if conf is None:  # a tuned preset file carries the detection threshold it was tuned with
            from cstrack.tracker.presetfile import looks_like_file, read_preset_file

            conf = read_preset_file(preset_name).conf_thres if looks_like_file(preset_name) else None
    return settings_for_weights(weights).override(
        input_size=parse_size(size) if size is not None else None, conf_thres=conf, nms_thres=nms,
        tracker_preset=preset_name,
    )


def settings_record(settings: Any, variant: str | None, weights: str | Path | None, path: str | None) -> dict[str, Any]:
    """What is stored with results: the effective settings plus the model they apply to."""
    from cstrack.fsutil import sha256_file

    sha = None
    if weights is not None and weights != "coco":
        from cstrack.model.weights import read_record

        sha = (read_record(weights) or {}).get("sha256") or sha256_file(weights)
    return {"weights": None if weights is None else str(weights), "weights_sha256": sha, "variant": variant,
            "path": path, **settings.to_dict()}


def describe_settings(rec: dict[str, Any], settings: Any) -> str:
    if rec["variant"] is None:
        return f"settings: no model, preset {settings.tracker_preset}"
    w = rec["weights"] or "random init"
    return f"settings: {rec['variant']} {w}, path {rec['path']}, {settings.describe()}"
