"""The ``fast`` path: the specialised PyTorch graph (:mod:`cstrack.infer.graph`) run channels-last
under ``torch.inference_mode`` with reused input buffers.

Channels-last (NHWC) lets oneDNN run every convolution without the NCHW <-> blocked layout
reorders of the eager model; BN folding removes a full pass over each activation; the input ring
removes the per-frame input allocations.  Optionally (``compile=True``) the graph is compiled by
TorchInductor with weight freezing (prepacked oneDNN weights, convolution + bias + activation
fused, element-wise chains fused); it needs a C++ compiler and tens of seconds to minutes of
compilation, so it is opt-in.
"""

from __future__ import annotations

import numpy as np
import torch

from cstrack.detection import Detections, Prepared
from cstrack.infer.frames import DEFAULT_SLOTS, InputRing, embed_boxes, postprocess_outputs
from cstrack.infer.graph import inference_model, to_channels_last
from cstrack.model.input_size import checked_size
from cstrack.model.network import CSTrackModel
from cstrack.model.postprocess import PostprocessConfig


class FastDetector:
    """:class:`~cstrack.detection.FrameDetector` over the specialised, channels-last torch graph.

    ``forward`` returns ``(emb [1, H/8, W/8, D], pred [1, N, 6])`` like the eager detector;
    boxes come back in frame pixels.  ``slots`` input buffers rotate (see
    :class:`~cstrack.infer.frames.InputRing`).
    """

    path = "fast"

    def __init__(
        self,
        model: CSTrackModel,
        input_size: tuple[int, int],
        post: PostprocessConfig | None = None,
        *,
        compile: bool = False,
        slots: int = DEFAULT_SLOTS,
    ) -> None:
        input_size = checked_size(input_size)
        self.input_size: tuple[int, int] = input_size
        self.emb_dim = model.emb_dim
        self.post = post or PostprocessConfig()
        self.input_slots = slots
        self.net = to_channels_last(inference_model(model, input_size))
        self._ring = InputRing(input_size, "nhwc", slots)
        self._run = self.net
        if compile:
            self._run = _compiled(self.net)
        self._warm_up()

    def _warm_up(self) -> None:
        """One forward on a blank frame: oneDNN primitive creation (and compilation) happen here,
        not in the first timed frame."""
        w, h = self.input_size
        self.forward(self.preprocess(np.zeros((h, w, 3), np.uint8)))

    def preprocess(self, frame_bgr: np.ndarray) -> Prepared:
        tensor, _, meta = self._ring.fill(frame_bgr)
        return Prepared(tensor, meta)

    def forward(self, prep: Prepared) -> tuple[torch.Tensor, torch.Tensor]:
        """``(emb [1, H/8, W/8, D], pred [1, N, 6])``."""
        with torch.inference_mode():
            return self._run(prep.tensor)

    def postprocess(self, out: tuple[torch.Tensor, torch.Tensor], prep: Prepared) -> Detections:
        return postprocess_outputs(out[0], out[1], prep.meta, self.post)

    def embed_boxes(self, out: tuple[torch.Tensor, torch.Tensor], prep: Prepared, xyxy: np.ndarray) -> np.ndarray:
        return embed_boxes(out[0], prep.meta, xyxy)


def _compiled(net: torch.nn.Module) -> torch.nn.Module:
    """``torch.compile`` with Inductor's freezing (constant weights folded and prepacked)."""
    import torch._inductor.config as inductor_config

    inductor_config.freezing = True
    # torch.compile's annotation returns a plain Callable; for a Module it returns an OptimizedModule
    return torch.compile(net, dynamic=False)  # type: ignore[return-value]
