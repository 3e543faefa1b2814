"""Which model runs: the one reference every surface builds (CLI, tasks, flows, training's
evaluation, the cache keys), beside the one settings record
(:class:`~cstrack.model.inference_settings.InferenceSettings`: how it runs).

``ModelRef(variant, weights, path, device)``:

- ``variant``: a :func:`cstrack.model.config.variant_names` name (or ``custom`` for an imported
  original checkpoint whose record says so);
- ``weights``: a checkpoint path (with its ``.json`` sha256 record), ``"coco"`` (cstrack-n: the
  shipped COCO YOLOv5n) or ``None`` (random init: timing only, never cached);
- ``path``: the inference path, ``auto`` or one of :data:`cstrack.model.detector.PATHS`;
- ``device``: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (:mod:`cstrack.model.device`).

:meth:`ModelRef.resolve` turns ``auto`` into concrete values once (:meth:`ModelRef.pin` does
the same without probing CUDA, for work that runs on other machines) (the jobs, their cache keys and the
records see what really ran).  Errors name the parameter (``path``, ``device``, ``weights``), never a
command-line flag: each surface renames them (:meth:`cstrack.errors.ConfigError.renamed`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cstrack.errors import ConfigError
from cstrack.model.device import Device, check_device, resolve_device

if TYPE_CHECKING:
    from cstrack.detection import FrameDetector
    from cstrack.model.inference_settings import InferenceSettings
    from cstrack.model.postprocess import PostprocessConfig


@dataclass(frozen=True)
class ModelRef:
    """A model: variant, weights, inference path and device (see the module docstring)."""

    variant: str
    weights: str | None = None
    path: str = "auto"  # the fastest path proven identical to eager (cstrack.model.detector.AUTO_PATH)
    device: str = "auto"  # CUDA when present, else the CPU (the training rule)

    def __post_init__(self) -> None:
        from cstrack.model.detector import PATH_CHOICES

        if not isinstance(self.variant, str) or not self.variant:
            raise ConfigError(f"expected a variant name, got {self.variant!r}", "variant")
        if self.weights is not None and (not isinstance(self.weights, str) or not self.weights):
            raise ConfigError(f"expected a checkpoint path, 'coco' or None, got {self.weights!r}", "weights")
        if self.path not in PATH_CHOICES:
            raise ConfigError(f"expected one of {', '.join(PATH_CHOICES)}, got {self.path!r}", "path")
        check_device(self.device)

    @property
    def concrete(self) -> bool:
        """Whether path and device are resolved (no ``auto``, no bare ``cuda``)."""
        return self.path != "auto" and self.device not in ("auto", "cuda")

    def resolve(self) -> tuple[ModelRef, Device]:
        """``(this reference with a concrete path and device, the device's description)``; raises
        :class:`ConfigError` (parameter ``device``) for CUDA on a machine without it and
        (parameter ``path``) for a CPU-only path on a GPU."""
        from cstrack.model.detector import resolve_path

        dev = resolve_device(self.device)
        return dataclasses.replace(self, path=resolve_path(self.path, dev.spec), device=dev.spec), dev

    def pin(self) -> ModelRef:
        """This reference made concrete for work that runs elsewhere (a flow whose tasks run on
        Dask workers): ``cuda``/``cuda:N`` is kept as asked (``cuda`` -> ``cuda:0``, the path
        resolved for a GPU) without probing CUDA here, since the flow's host may have none; the
        worker checks it when it builds the detector (:meth:`build_detector`).  ``auto`` and
        ``cpu`` are resolved here, as :meth:`resolve` does."""
        from cstrack.model.detector import resolve_path

        if not self.device.startswith("cuda"):
            return self.resolve()[0]
        device = "cuda:0" if self.device == "cuda" else self.device
        return dataclasses.replace(self, path=resolve_path(self.path, device), device=device)

    def weights_sha256(self) -> str | None:
        """The weights' identity (:func:`weights_identity`); ``None`` for random init."""
        return None if self.weights is None else weights_identity(self.weights)

    def build_detector(self, settings: InferenceSettings, post: PostprocessConfig | None = None) -> FrameDetector:
        """The detector of this model at ``settings`` (input size, thresholds; ``post`` replaces the
        thresholds, e.g. a cache's score floor), on :attr:`device` (resolved here when it is not yet)."""
        from cstrack.model.detector import build_detector

        # Resolving also checks CUDA where the detector is built (a reference pinned on a host without it).
        ref = dataclasses.replace(self, device=resolve_device(self.device).spec) if self.concrete else self.resolve()[0]
        weights: str | Path | None = ref.weights
        if weights is not None and weights != "coco":
            weights = Path(weights)
        return build_detector(ref.variant, weights, settings.input_size, path=ref.path,
                              post=post or settings.postprocess_config(), device=ref.device)


def weights_identity(weights: str | Path) -> str:
    """The sha256 identifying ``weights``: ``coco:<sha>`` for the shipped COCO file, the sha256 of
    the checkpoint's record when it has one (verified again at load), else of the file."""
    if str(weights) == "coco":
        from cstrack.model.weights import COCO_YOLOV5N_SHA256

        return f"coco:{COCO_YOLOV5N_SHA256}"
    from cstrack.fsutil import sha256_file
    from cstrack.model.weights import read_record

    record = read_record(weights)
    if record is not None and "sha256" in record:
        return str(record["sha256"])
    if not Path(weights).is_file():
        raise ConfigError(f"no such file {weights}", "weights")
    return sha256_file(weights)
