"""The eager PyTorch detection path: a :class:`~cstrack.detection.FrameDetector` over a model."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from cstrack.data.letterbox import boxes_to_frame, boxes_to_net, letterbox, to_input
from cstrack.detection import Detections, FrameDetector, Prepared
from cstrack.errors import ConfigError
from cstrack.model.input_size import checked_size
from cstrack.model.network import CSTrackModel, build_model
from cstrack.model.postprocess import PostprocessConfig, gather_embeddings, postprocess_image

PATHS = ("eager", "fast", "onnx", "int8")
# ``--path auto``: the fastest path whose tracks equal the eager path's (issue 16; checked by
# tests/infer/test_auto_path.py on a PETS09 segment with the shipped checkpoint).  int8 is faster
# but changes boxes, so it stays opt-in.
AUTO_PATH = "onnx"
PATH_CHOICES = ("auto", *PATHS)


CPU_ONLY_PATHS = ("fast", "onnx", "int8")  # the CPU-speed paths of cstrack.infer


class RandomWeightsWarning(UserWarning):
    """A model built without trained weights (timing only): its boxes mean nothing."""


def resolve_path(path: str, device: str = "cpu") -> str:
    """``auto`` -> :data:`AUTO_PATH` on the CPU, ``eager`` on a GPU; any other name of :data:`PATHS`
    as it is (a CPU-only path on a GPU is an error naming the parameter ``path``)."""
    on_gpu = device.startswith("cuda")
    if path == "auto":
        return "eager" if on_gpu else AUTO_PATH
    if path not in PATHS:
        raise ConfigError(f"expected one of {', '.join(PATH_CHOICES)}, got {path!r}", "path")
    if on_gpu and path in CPU_ONLY_PATHS:
        raise ConfigError(f"{path!r} runs on the CPU only; use eager (or auto) with device {device}", "path")
    return path


class ModelDetector:
    """Letterbox -> forward -> decode + Cluster-DIoU NMS + embedding gather, on one frame.

    ``input_size`` is the network (width, height); boxes come back in frame pixels.
    """

    def __init__(
        self,
        model: CSTrackModel,
        input_size: tuple[int, int],
        post: PostprocessConfig | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        input_size = checked_size(input_size)
        self.model = model.eval().to(device)
        self.device = torch.device(device)
        self.input_size: tuple[int, int] = input_size
        self.emb_dim = model.emb_dim
        self.post = post or PostprocessConfig()
        w, h = input_size
        self._canvas = np.empty((h, w, 3), dtype=np.uint8)  # reused letterbox buffer

    def preprocess(self, frame_bgr: np.ndarray) -> Prepared:
        img, meta = letterbox(frame_bgr, self.input_size, out=self._canvas)
        return Prepared(torch.from_numpy(to_input(img)).to(self.device), meta)

    @torch.inference_mode()
    def forward(self, prep: Prepared) -> tuple[torch.Tensor, torch.Tensor]:
        """``(emb [1, H/8, W/8, D], pred [1, N, 6])``."""
        emb, raw = self.model(prep.tensor)
        return emb, self.model.decode(raw)

    @torch.inference_mode()
    def postprocess(self, out: tuple[torch.Tensor, torch.Tensor], prep: Prepared) -> Detections:
        emb, pred = out
        xyxy, score, e = postprocess_image(pred[0], emb[0], self.post)
        return Detections(boxes_to_frame(xyxy, prep.meta), score, e)

    @torch.inference_mode()
    def embed_boxes(self, out: tuple[torch.Tensor, torch.Tensor], prep: Prepared, xyxy: np.ndarray) -> np.ndarray:
        """L2-normalised embeddings ``[K, D]`` at the centres of frame-pixel boxes ``xyxy [K, 4]``."""
        return gather_embeddings(out[0][0], boxes_to_net(np.asarray(xyxy, np.float32).reshape(-1, 4), prep.meta))


def _own_variant(variant: str, weights: str | Path | None) -> bool:
    """Whether ``variant`` is the name a checkpoint's record gives its own architecture (an imported
    original checkpoint that no named variant resolves to is ``custom``)."""
    from cstrack.model.weights import read_record

    if weights is None or str(weights) == "coco" or not Path(weights).is_file():
        return False
    record = read_record(weights)
    return record is not None and record.get("variant") == variant and "architecture" in record.get("config", {})


def load_model(variant: str, weights: str | Path | None) -> CSTrackModel:
    """A model for inference: ``weights`` is a checkpoint path, ``"coco"`` (cstrack-n only: the
    shipped COCO YOLOv5n trunk + head, REN off, embedding head random) or ``None`` (random init, for
    timing)."""
    from cstrack.model.config import variant_names
    from cstrack.model.weights import load_coco_yolov5n, load_weights

    if variant not in variant_names() and not _own_variant(variant, weights):  # the message lists the choices
        raise ConfigError(f"unknown variant {variant!r}; known: {', '.join(variant_names())}", "variant")
    if weights is None:
        warnings.warn(f"{variant} with random weights (no weights given)", RandomWeightsWarning, stacklevel=2)
        return build_model(variant)
    if str(weights) == "coco":
        # REN off: the COCO head must see the trunk features it was trained on.  A (random) REN feeds it
        # A1 X + X, ~70 % away from X, and each person became several oversized boxes (bench/coco_detector.py).
        model = build_model(variant, ren="none")
        if model.config.pretrained != "coco-yolov5n-v6":
            raise ConfigError(f"'coco' works only with variants of the YOLOv5n v6 trunk, not {variant}", "weights")
        return load_coco_yolov5n(model)
    model = load_weights(weights)
    if model.config.variant != variant:
        raise ConfigError(f"{weights} is a {model.config.variant!r} checkpoint, not variant {variant!r}", "weights")
    return model


def build_detector(
    variant: str,
    weights: str | Path | None,
    input_size: tuple[int, int],
    path: str = "eager",
    post: PostprocessConfig | None = None,
    device: str = "cpu",
) -> FrameDetector:
    """The detector for a model path: ``eager`` (this module), the optimised ``fast`` /
    ``onnx`` / ``int8`` paths of :mod:`cstrack.infer`, or ``auto`` (:func:`resolve_path`), with the
    model (and each frame's input tensor) on the concrete torch ``device`` (``cpu`` or ``cuda:N``;
    :func:`cstrack.model.device.resolve_device` resolves ``auto``)."""
    path = resolve_path(path, device)
    input_size = checked_size(input_size)  # checked here (before the weights load) or where it came from
    model = load_model(variant, weights)
    if path == "eager":
        return ModelDetector(model, input_size, post, device=device)
    from cstrack.infer import build_optimised_detector  # the CPU-speed paths

    return build_optimised_detector(model, input_size, path, post)
