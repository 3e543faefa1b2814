"""The per-frame detection interface shared by the model paths (eager, fast, ONNX, int8) and the
tracker front end.

A detector turns one BGR frame into :class:`Detections` in three timed stages, so that the
sequence runner can report ``preprocess`` / ``forward`` / ``postprocess`` separately::

    prep = det.preprocess(frame_bgr)       # letterbox + to tensor      (Prepared)
    out = det.forward(prep)                 # network                    (opaque model output)
    dets = det.postprocess(out, prep)       # decode + NMS + embeddings  (Detections)
    embs = det.embed_boxes(out, prep, xyxy) # embeddings at given boxes (public-detection mode)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from cstrack.data.letterbox import LetterboxMeta


@dataclass
class Detections:
    """Detections of one frame, in original-frame pixels.

    - ``xyxy``: float32 [N, 4] corners (x1, y1, x2, y2)
    - ``scores``: float32 [N] in [0, 1]
    - ``embeddings``: float32 [N, D], each row L2-normalised; ``None`` when the source has no
      appearance (ground-truth or public boxes without a model)
    """

    xyxy: np.ndarray
    scores: np.ndarray
    embeddings: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        if len(self.scores) != len(self.xyxy):
            raise ValueError(f"xyxy has {len(self.xyxy)} rows but scores has {len(self.scores)}")
        if self.embeddings is not None:
            emb = np.asarray(self.embeddings, dtype=np.float32)
            # reshape(0, -1) is ambiguous for NumPy: keep an already [N, D] array as it is.
            if emb.ndim != 2 or emb.shape[0] != len(self.xyxy):
                emb = emb.reshape(len(self.xyxy), -1)
            self.embeddings = emb

    def __len__(self) -> int:
        return len(self.xyxy)

    @classmethod
    def empty(cls, emb_dim: int | None = None) -> Detections:
        emb = None if emb_dim is None else np.zeros((0, emb_dim), np.float32)
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), emb)


@dataclass
class Prepared:
    """A letterboxed network input and the geometry needed to map boxes back.

    - ``tensor``: the model input, float32 [1, 3, H, W], RGB in [0, 1] (a torch tensor or a
      NumPy array, depending on the path)
    - ``meta``: the letterbox geometry (ratio, padding, frame and network sizes)
    """

    tensor: Any
    meta: LetterboxMeta


@runtime_checkable
class FrameDetector(Protocol):
    """What the tracking front end needs from a model path."""

    input_size: tuple[int, int]  # network (width, height)
    emb_dim: int

    def preprocess(self, frame_bgr: np.ndarray) -> Prepared: ...

    def forward(self, prep: Prepared) -> Any: ...

    def postprocess(self, out: Any, prep: Prepared) -> Detections: ...

    def embed_boxes(self, out: Any, prep: Prepared, xyxy: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class ConcurrentForward(Protocol):
    """A detector that can letterbox and forward several frames at once from different threads
    (the ONNX Runtime paths: one single-threaded session shared by the runner's frame workers)."""

    def prepare_and_forward(self, frame_bgr: np.ndarray) -> tuple[Prepared, Any, float, float]:
        """``(prep, out, preprocess_s, forward_s)``: :meth:`FrameDetector.preprocess` then
        :meth:`FrameDetector.forward`, thread-safe, ``out`` owned by the caller."""
        ...
