"""The eager PyTorch detection path: a :class:`~cstrack.detection.FrameDetector` over a model."""

from __future__ import annotations

import sys
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


def resolve_path(path: str) -> str:
    """``auto`` -> :data:`AUTO_PATH`; any other name of :data:`PATHS` as it is."""
    if path == "auto":
        return AUTO_PATH
    if path not in PATHS:
        raise ConfigError(f"--path: expected one of {', '.join(PATH_CHOICES)}, got {path!r}")
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
        raise ConfigError(f"--variant: unknown variant {variant!r}; known: {', '.join(variant_names())}")
    if weights is None:
        print(f"warning: {variant} with random weights (no --weights given)", file=sys.stderr)
        return build_model(variant)
    if str(weights) == "coco":
        # REN off: the COCO head must see the trunk features it was trained on.  A (random) REN feeds it
        # A1 X + X, ~70 % away from X, and each person became several oversized boxes (bench/coco_detector.py).
        model = build_model(variant, ren="none")
        if model.config.pretrained != "coco-yolov5n-v6":
            raise ConfigError(f"--weights coco: only variants with the YOLOv5n v6 trunk support it, not {variant}")
        return load_coco_yolov5n(model)
    model = load_weights(weights)
    if model.config.variant != variant:
        raise ConfigError(f"--weights {weights}: checkpoint is {model.config.variant!r}, not --variant {variant!r}")
    return model


def build_detector(
    variant: str,
    weights: str | Path | None,
    input_size: tuple[int, int],
    path: str = "eager",
    post: PostprocessConfig | None = None,
) -> FrameDetector:
    """The detector for a model path: ``eager`` (this module), the optimised ``fast`` /
    ``onnx`` / ``int8`` paths of :mod:`cstrack.infer`, or ``auto`` (:func:`resolve_path`)."""
    path = resolve_path(path)
    input_size = checked_size(input_size)  # checked here (before the weights load) or where it came from
    model = load_model(variant, weights)
    if path == "eager":
        return ModelDetector(model, input_size, post)
    from cstrack.infer import build_optimised_detector  # the CPU-speed paths

    return build_optimised_detector(model, input_size, path, post)
