"""What every command that builds a detector shares: the ``--variant`` / ``--weights`` / ``--size``
/ ``--conf`` / ``--nms`` options, turning them into a model (:func:`resolve_model`) and effective
inference settings (:func:`effective_settings`), and the settings record stored with results.

Used by ``cstrack track`` (:mod:`cstrack.cli.track_cmds`), its cached replay
(:mod:`cstrack.cli.cached_track`), ``cstrack bench-speed`` and ``cstrack export``.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import typer

from cstrack.cli.common import parse_size
from cstrack.errors import ConfigError

if TYPE_CHECKING:
    from cstrack.detection import FrameDetector
    from cstrack.model.device import Device
    from cstrack.model.inference_settings import InferenceSettings
    from cstrack.model.ref import ModelRef

P = ParamSpec("P")
R = TypeVar("R")

# The library names parameters (cstrack.errors.ConfigError.param); the CLI speaks of its flags.
PARAM_FLAGS: dict[str, str] = {
    "variant": "--variant", "weights": "--weights", "path": "--path", "device": "--device",
    "input_size": "--size", "conf_thres": "--conf", "nms_thres": "--nms", "tracker_preset": "--preset",
    "max_frames": "--max-frames", "duration": "--duration", "prefetch": "--prefetch", "threads": "--threads",
    "frames": "--frames", "video": "--save-video", "queue_size": "--queue", "reconnects": "--reconnects",
}


def speaks_flags(fn: Callable[P, R]) -> Callable[P, R]:
    """A command whose library errors name its flags: a :class:`ConfigError` naming a parameter of
    :data:`PARAM_FLAGS` is raised again naming the flag (``path`` -> ``--path``).  Put it under
    :func:`~cstrack.cli.common.guarded`."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except ConfigError as exc:
            renamed = exc.renamed(PARAM_FLAGS)
            if renamed is exc:
                raise
            raise renamed from None

    return wrapper


def device_option() -> Any:
    return typer.Option("auto", "--device", help="auto (CUDA when present, else the CPU), cpu, cuda or cuda:N")


def path_option() -> Any:
    return typer.Option("auto", "--path", help="model path: auto (the fastest proven identical to eager; eager on "
                        "a GPU), eager, fast (folded channels-last torch), onnx or int8 (ONNX Runtime; changes boxes)")

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
                       preset_name: str | None) -> InferenceSettings:
    """The checkpoint's inference settings with the options the user gave
    (:func:`cstrack.model.inference_settings.effective`: the one rule)."""
    from cstrack.model.inference_settings import effective, settings_for_weights

    return effective(settings_for_weights(weights), input_size=parse_size(size) if size is not None else None,
                     conf_thres=conf, nms_thres=nms, tracker_preset=preset_name)


def model_ref(variant: str | None, weights: str | None, path: str = "auto", device: str = "auto") -> ModelRef:
    """The :class:`~cstrack.model.ref.ModelRef` of the options (:func:`resolve_model` picks variant
    and weights), path and device resolved to concrete values."""
    from cstrack.model.ref import ModelRef

    var, weights_arg = resolve_model(variant, weights)
    return ModelRef(var, None if weights_arg is None else str(weights_arg), path, device)


def resolve_ref(ref: ModelRef) -> tuple[ModelRef, Device]:
    """``ref.resolve()``: the concrete reference and its device (whose note, ``auto`` that fell back
    to the CPU, :func:`describe_settings` prints on the settings line)."""
    return ref.resolve()


@contextlib.contextmanager
def model_warnings() -> Iterator[None]:
    """The library's model warnings (random weights) raised in the block, echoed as one line each."""
    from cstrack.model.detector import RandomWeightsWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RandomWeightsWarning)
        yield
    for w in caught:
        if issubclass(w.category, RandomWeightsWarning):
            typer.echo(f"warning: {w.message}", err=True)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def build(ref: ModelRef, settings: InferenceSettings, post: Any = None) -> FrameDetector:
    """``ref.build_detector(settings, post)``, a random-weights warning echoed as one line."""
    with model_warnings():
        return ref.build_detector(settings, post)


def settings_record(settings: InferenceSettings, variant: str | None, weights: str | Path | None, path: str | None,
                    device: Device | None = None) -> dict[str, Any]:
    """What is stored with results: the effective settings plus the model they apply to (and the
    device it ran on: ``device`` and ``device_name``)."""
    from cstrack.model.ref import weights_identity

    sha = None
    if weights is not None and weights != "coco":
        sha = weights_identity(weights)
    rec: dict[str, Any] = {"weights": None if weights is None else str(weights), "weights_sha256": sha,
                           "variant": variant, "path": path, **settings.to_dict()}
    if device is not None:
        rec["device"], rec["device_name"] = device.spec, device.name
    return rec


def describe_settings(rec: dict[str, Any], settings: InferenceSettings, device: Device | None = None) -> str:
    """The one settings line (stderr): model, path, device (with the note of an ``auto`` that fell
    back to the CPU) and the inference settings."""
    if rec["variant"] is None:
        return f"settings: no model, preset {settings.tracker_preset}"
    w = rec["weights"] or "random init"
    dev = f", device {rec['device']} ({rec['device_name']})" if rec.get("device") else ""
    if device is not None and device.note:
        dev += f" [{device.note}]"
    return f"settings: {rec['variant']} {w}, path {rec['path']}{dev}, {settings.describe()}"


@contextlib.contextmanager
def flag_names() -> Iterator[None]:
    """The block's library errors name the CLI's flags (:func:`speaks_flags` as a context)."""
    try:
        yield
    except ConfigError as exc:
        renamed = exc.renamed(PARAM_FLAGS)
        if renamed is exc:
            raise
        raise renamed from None
