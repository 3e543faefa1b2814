"""CPU inference paths that replace the eager model in ``cstrack track`` / ``track-all``.

- ``fast``: the specialised PyTorch graph, BN folded, channels-last, ``inference_mode``, reused
  input buffers (:mod:`cstrack.infer.fast`);
- ``onnx``: the same graph exported to ONNX and run by ONNX Runtime (:mod:`cstrack.infer.ort`);
- ``int8``: that export statically quantised (QDQ, per-channel int8 weights, calibrated on shipped
  frames) and run by ONNX Runtime (:mod:`cstrack.infer.quantize`).  Opt-in only: see the
  accuracy note in ``docs/cpu_speed.md``.

Every path is a :class:`~cstrack.detection.FrameDetector` with the eager detector's outputs and
post-processing.  Frame decode + letterbox overlap with compute through
:mod:`cstrack.infer.prefetch` (used by the runner's prefetching frame reader).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cstrack.data.images import read_image
from cstrack.detection import FrameDetector
from cstrack.errors import ConfigError, DatasetError
from cstrack.model.input_size import checked_size
from cstrack.model.network import CSTrackModel
from cstrack.model.postprocess import PostprocessConfig

OPTIMISED_PATHS = ("fast", "onnx", "int8")


def shipped_calibration_images() -> list[Path]:
    """The real frames shipped in ``shared/data`` used to calibrate int8 ranges: PETS09-S2L1
    frames 1-8 and the MOT17-mini frames (18 images, two scenes and resolutions)."""
    from cstrack.paths import shared_data

    root = shared_data()
    folders = [root / "mot15" / "PETS09-S2L1-head8" / "img1", *sorted((root / "mot17-mini" / "train").glob("*/img1"))]
    files = [p for folder in folders if folder.is_dir() for p in sorted(folder.glob("*.jpg"))]
    if not files:
        raise DatasetError("no calibration frames found (shared data missing?)", root)
    return files


def calibration_inputs(files: Sequence[str | Path], input_size: tuple[int, int]) -> list[np.ndarray]:
    """Network inputs float32 ``[1, 3, H, W]`` of ``files``, letterboxed as at inference."""
    from cstrack.infer.frames import InputRing

    ring = InputRing(input_size, "nchw", slots=2)
    out = []
    for f in files:
        out.append(ring.fill(read_image(f))[1].copy())
    return out


def onnx_file(model: CSTrackModel, input_size: tuple[int, int]) -> Path:
    """The cached fp32 export of ``model`` at ``input_size`` (exported on first use)."""
    from cstrack.infer.cache import cache_path
    from cstrack.infer.onnx_export import export_onnx

    path = cache_path(model, input_size, "onnx")
    if not path.is_file():
        export_onnx(model, input_size, path)
    return path


def int8_file(model: CSTrackModel, input_size: tuple[int, int], calibration: Sequence[str | Path] | None = None) -> Path:
    """The cached int8 quantisation of ``model`` at ``input_size``, calibrated on ``calibration``
    image files (default: :func:`shipped_calibration_images`)."""
    from cstrack.fsutil import sha256_file
    from cstrack.infer.cache import cache_path
    from cstrack.infer.quantize import quantize_int8

    files = list(calibration) if calibration is not None else shipped_calibration_images()
    path = cache_path(model, input_size, "int8", [sha256_file(f) for f in files])
    if not path.is_file():
        quantize_int8(onnx_file(model, input_size), path, calibration_inputs(files, input_size))
    return path


def build_optimised_detector(
    model: CSTrackModel,
    input_size: tuple[int, int],
    path: str,
    post: PostprocessConfig | None = None,
) -> FrameDetector:
    """The detector of an optimised ``path`` (``fast``, ``onnx`` or ``int8``) for ``model`` at
    ``input_size = (W, H)``; ONNX files are exported / quantised once and cached
    (:mod:`cstrack.infer.cache`)."""
    input_size = checked_size(input_size)
    if path == "fast":
        from cstrack.infer.fast import FastDetector

        return FastDetector(model, input_size, post)
    if path in ("onnx", "int8"):
        from cstrack.infer.ort import OrtDetector

        file = onnx_file(model, input_size) if path == "onnx" else int8_file(model, input_size)
        return OrtDetector(file, post, path=path)
    raise ConfigError(f"expected one of {OPTIMISED_PATHS}, got {path!r}", "path")
