"""What the optimised detectors share: reused input buffers and the common post-processing.

Input buffers live in a ring of ``slots`` (letterbox canvas + network input each), so
:meth:`preprocess` allocates nothing per frame, and a prefetch thread may prepare the next frames
while the current one is in the network: at most ``slots - 1`` prepared frames may be alive at
once (a :class:`~cstrack.infer.prefetch.Prefetcher` of depth ``d`` keeps ``d + 2``, so ``d <=
slots - 2``).
"""

from __future__ import annotations

import threading
from typing import Any, Literal

import numpy as np
import torch

from cstrack.data.letterbox import LetterboxMeta, boxes_to_frame, boxes_to_net, letterbox
from cstrack.detection import Detections
from cstrack.model.postprocess import PostprocessConfig, gather_embeddings, postprocess_image

Layout = Literal["nchw", "nhwc"]
DEFAULT_SLOTS = 4  # a prefetch depth of 2 plus the frame in the network and the one being made
_U8_MAX = np.float32(255.0)  # inputs are pixel / 255 (spec §1)


class InputRing:
    """``slots`` pairs of (uint8 letterbox canvas ``[H, W, 3]`` BGR, float32 network input).

    The network input is ``[1, 3, H, W]`` RGB in [0, 1] (spec §1), stored NCHW (``layout="nchw"``,
    for ONNX Runtime) or NHWC (``"nhwc"``: a channels-last torch tensor).  ``fill`` returns the
    input of the next slot, computed exactly as :func:`cstrack.data.letterbox.to_input` does.
    """

    def __init__(self, input_size: tuple[int, int], layout: Layout, slots: int = DEFAULT_SLOTS) -> None:
        if slots < 2:
            raise ValueError(f"slots: need at least 2, got {slots}")
        w, h = input_size
        self.input_size = input_size
        self.layout = layout
        self.slots = slots
        self._canvas = [np.empty((h, w, 3), np.uint8) for _ in range(slots)]
        self._tensors = [
            torch.empty((1, 3, h, w), dtype=torch.float32, memory_format=torch.channels_last if layout == "nhwc" else torch.contiguous_format)
            for _ in range(slots)
        ]
        # writable NumPy views in storage order: [1, H, W, 3] (nhwc) or [1, 3, H, W] (nchw)
        self._arrays = [t.permute(0, 2, 3, 1).numpy() if layout == "nhwc" else t.numpy() for t in self._tensors]
        self._next = 0
        self._lock = threading.Lock()

    def fill(self, frame_bgr: np.ndarray) -> tuple[torch.Tensor, np.ndarray, LetterboxMeta]:
        """Letterbox ``frame_bgr`` (uint8 ``[h0, w0, 3]``) into the next slot.

        Returns ``(tensor [1, 3, H, W], array, meta)``: the tensor and a NumPy view of the same
        memory in storage order.
        """
        with self._lock:
            i = self._next
            self._next = (i + 1) % self.slots
        canvas, arr = self._canvas[i], self._arrays[i]
        img, meta = letterbox(frame_bgr, self.input_size, out=canvas)
        if self.layout == "nhwc":
            np.divide(img[None, :, :, ::-1], _U8_MAX, out=arr)
        else:
            np.divide(img.transpose(2, 0, 1)[None, ::-1], _U8_MAX, out=arr)
        return self._tensors[i], arr, meta


def postprocess_outputs(emb: Any, pred: Any, meta: LetterboxMeta, post: PostprocessConfig) -> Detections:
    """Detections of one image from ``emb [1, H/8, W/8, D]`` and ``pred [1, N, 6]`` (network px,
    NumPy arrays or CPU tensors): score filter, Cluster-DIoU NMS, embedding gather, then boxes
    mapped to frame pixels.  The same calls as the eager
    :class:`~cstrack.model.detector.ModelDetector`, so every path post-processes identically."""
    xyxy, score, e = postprocess_image(pred[0], emb[0], post)
    return Detections(boxes_to_frame(xyxy, meta), score, e)


def embed_boxes(emb: Any, meta: LetterboxMeta, xyxy: np.ndarray) -> np.ndarray:
    """L2-normalised embeddings ``[K, D]`` at the centres of frame-pixel boxes ``xyxy [K, 4]``."""
    return gather_embeddings(emb[0], boxes_to_net(np.asarray(xyxy, np.float32).reshape(-1, 4), meta))
