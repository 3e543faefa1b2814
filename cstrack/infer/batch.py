"""Batched inference for offline sources (sequence folders, video files): several frames per
network call, optionally in half precision, with the tracker still fed one frame at a time.

:class:`BatchedDetector` wraps a torch detector (the eager :class:`~cstrack.model.detector.ModelDetector`
or the ``fast`` :class:`~cstrack.infer.fast.FastDetector`) and is itself a
:class:`~cstrack.detection.FrameDetector`, plus

- :meth:`BatchedDetector.forward_batch` ``(preps) -> [out per frame]``: the frames stacked into one
  ``[B, 3, H, W]`` input on the model's device (each frame copied from its own, on CUDA pinned,
  host buffer without blocking), one forward under the chosen precision, the outputs split per frame;
- :meth:`BatchedDetector.detect_batch` ``(preps) -> [Detections per frame]``.

:meth:`~BatchedDetector.preprocess` is thread-safe (each call letterboxes into a fresh host tensor,
pinned when the model is on CUDA), so frame workers can read and letterbox ahead
(:func:`batched_inputs`).  Post-processing: on the CPU the compiled per-frame kernels
(:func:`cstrack.model.postprocess.postprocess_image`, faster there); on an accelerator the batch is
filtered, suppressed and gathered on the device (:func:`cstrack.model.postprocess.postprocess_batch`)
and only the kept rows come back.  Either way the boxes equal those of batch 1
(tests/infer/test_batch.py).

Precision (:data:`PRECISIONS`): ``fp32`` is the reference; ``fp16`` runs the network under fp16
autocast on CUDA (on the CPU, which has no fast fp16 convolutions, it falls back to bf16); ``bf16``
under bf16 autocast (CPU, or CUDA devices that support it).  Box decoding and post-processing stay
float32.  docs/gpu.md has the measured effect on the tracks.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from typing import Any, NamedTuple, TypeVar

import numpy as np
import torch

from cstrack.data.letterbox import boxes_to_frame, letterbox
from cstrack.detection import Detections, FrameDetector, Prepared
from cstrack.errors import ConfigError
from cstrack.model.postprocess import postprocess_batch

PRECISIONS = ("fp32", "fp16", "bf16")
# Default batch per device type.  CPU: 1 -- measured on the 2-core EPYC of this project (docs/gpu.md:
# batch 2 and 4 were not faster per frame with the fast path, and the default onnx path overlaps
# frames with its frame workers instead).  CUDA: 8 -- not yet measured here; chosen because 8 frames
# of 1088x608 (64 MB of input) fill a large GPU's SMs where one frame of cstrack-l leaves most idle,
# and a batch is then under 1 s of video at 16+ fps.  bench/gpu_check.py times batch 1 vs this batch.
DEFAULT_BATCH = {"cpu": 1, "cuda": 8}
_U8_MAX = np.float32(255.0)  # inputs are pixel / 255 (spec §1), as InputRing computes them


def default_batch_size(device: torch.device | str) -> int:
    """The default batch of offline sources on ``device`` (:data:`DEFAULT_BATCH`; 1 elsewhere)."""
    return DEFAULT_BATCH.get(torch.device(device).type, 1)


def autocast_dtype(precision: str, device: torch.device | str) -> torch.dtype | None:
    """The autocast dtype of ``precision`` on ``device``: ``None`` for fp32 (no autocast).

    ``fp16`` on a device without fast fp16 (the CPU) becomes bf16, with a one-line note; ``bf16`` on
    a CUDA device without bf16 support is a :class:`ConfigError`."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision: expected one of {', '.join(PRECISIONS)}, got {precision!r}")
    dev = torch.device(device)
    if precision == "fp32":
        return None
    if precision == "fp16":
        if dev.type == "cuda":
            return torch.float16
        print(f"note: precision fp16 on {dev.type}: fp16 is not supported there, running bf16", file=sys.stderr)
        return torch.bfloat16
    if dev.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError(f"precision bf16: {torch.cuda.get_device_name(dev)} does not support bfloat16; use fp16")
    return torch.bfloat16


class FrameOutput(NamedTuple):
    """One frame's share of a batched forward: ``emb [1, H/8, W/8, D]`` and ``pred [1, N, 6]``
    (float32, on the model's device), and, when the batch was post-processed on the device,
    ``selected = (xyxy [K, 4] network px, scores [K], embeddings [K, D])`` on the host."""

    emb: torch.Tensor
    pred: torch.Tensor
    selected: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None


def _torch_parts(inner: FrameDetector) -> tuple[Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]], torch.device, bool]:
    """``(net, device, channels_last)`` of a torch detector: ``net(x [B, 3, H, W]) -> (emb, pred)``
    with raw head outputs decoded in float32."""
    from cstrack.infer.fast import FastDetector
    from cstrack.model.detector import ModelDetector

    if isinstance(inner, ModelDetector):
        model = inner.model

        def eager(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            emb, raw = model(x)
            with torch.autocast(x.device.type, enabled=False):  # decode in float32 (boxes in pixels)
                return emb.float(), model.decode([r.float() for r in raw])

        return eager, next(model.parameters()).device, False
    if isinstance(inner, FastDetector):
        net = inner.net

        def fast(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            emb, pred = net(x)
            return emb.float(), pred.float()

        return fast, next(net.parameters()).device, True
    path = getattr(inner, "path", type(inner).__name__)
    raise ConfigError(f"batch size above 1 and half precision need a torch path (eager or fast), not {path}")


class BatchedDetector:
    """A :class:`~cstrack.detection.FrameDetector` running ``batch_size`` frames per forward (see
    the module docstring).  ``device_postprocess`` (default: on when the model is not on the CPU)
    post-processes each batch with torch ops on the device."""

    def __init__(
        self,
        inner: FrameDetector,
        batch_size: int,
        precision: str = "fp32",
        device_postprocess: bool | None = None,
    ) -> None:
        if batch_size < 1:
            raise ConfigError(f"batch size: must be >= 1, got {batch_size}")
        self.inner = inner
        self.batch_size = batch_size
        self.precision = precision
        self.input_size = inner.input_size
        self.emb_dim = inner.emb_dim
        self.post = inner.post  # type: ignore[attr-defined]  # both torch detectors carry their PostprocessConfig
        self._net, self.device, self._nhwc = _torch_parts(inner)
        self._dtype = autocast_dtype(precision, self.device)
        self.device_postprocess = self.device.type != "cpu" if device_postprocess is None else device_postprocess
        self._pin = self.device.type == "cuda"
        self._local = threading.local()  # each preparing thread's letterbox canvas
        self.path = getattr(inner, "path", "eager")

    @property
    def effective_precision(self) -> str:
        """What the network runs in: ``fp32``, ``fp16`` or ``bf16`` (fp16 asked on the CPU runs bf16)."""
        return {None: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}[self._dtype]

    # -- FrameDetector -----------------------------------------------------------------------
    def preprocess(self, frame_bgr: np.ndarray) -> Prepared:
        """Letterbox ``frame_bgr`` into a fresh host tensor ``[1, 3, H, W]`` (RGB in [0, 1], pinned
        on CUDA, channels-last for the fast path); thread-safe."""
        w, h = self.input_size
        canvas = getattr(self._local, "canvas", None)
        if canvas is None:
            canvas = self._local.canvas = np.empty((h, w, 3), np.uint8)
        img, meta = letterbox(frame_bgr, self.input_size, out=canvas)
        fmt = torch.channels_last if self._nhwc else torch.contiguous_format
        t = torch.empty((1, 3, h, w), dtype=torch.float32, pin_memory=self._pin, memory_format=fmt)
        if self._nhwc:
            np.divide(img[None, :, :, ::-1], _U8_MAX, out=t.permute(0, 2, 3, 1).numpy())
        else:
            np.divide(img.transpose(2, 0, 1)[None, ::-1], _U8_MAX, out=t.numpy())
        return Prepared(t, meta)

    def forward(self, prep: Prepared) -> FrameOutput:
        return self.forward_batch([prep])[0]

    def postprocess(self, out: FrameOutput, prep: Prepared) -> Detections:
        if out.selected is not None:
            xyxy, score, e = out.selected
            return Detections(boxes_to_frame(xyxy, prep.meta), score, e)
        return self.inner.postprocess((out.emb, out.pred), prep)

    def embed_boxes(self, out: FrameOutput, prep: Prepared, xyxy: np.ndarray) -> np.ndarray:
        return self.inner.embed_boxes((out.emb, out.pred), prep, xyxy)

    # -- batches -----------------------------------------------------------------------------
    def stack(self, preps: list[Prepared]) -> torch.Tensor:
        """The frames' inputs as one ``[B, 3, H, W]`` tensor on the model's device (host -> device
        copies do not block: each source is pinned on CUDA)."""
        w, h = self.input_size
        fmt = torch.channels_last if self._nhwc else torch.contiguous_format
        if len(preps) == 1 and self.device.type == "cpu":
            return preps[0].tensor
        x = torch.empty((len(preps), 3, h, w), dtype=torch.float32, device=self.device, memory_format=fmt)
        for i, p in enumerate(preps):
            x[i].copy_(p.tensor[0], non_blocking=True)
        return x

    def forward_batch(self, preps: list[Prepared]) -> list[FrameOutput]:
        """One network call on ``preps`` (at most :attr:`batch_size` is not enforced: any number);
        returns each frame's :class:`FrameOutput` in order."""
        if not preps:
            return []
        x = self.stack(preps)
        with torch.inference_mode():
            if self._dtype is None:
                emb, pred = self._net(x)
            else:
                with torch.autocast(self.device.type, dtype=self._dtype):
                    emb, pred = self._net(x)
            selected: list[Any] = [None] * len(preps)
            if self.device_postprocess:
                selected = list(postprocess_batch(pred, emb, self.post))
        return [FrameOutput(emb[i:i + 1], pred[i:i + 1], selected[i]) for i in range(len(preps))]

    def detect_batch(self, preps: list[Prepared]) -> list[Detections]:
        """Detections of each frame of ``preps`` (frame pixels), from one batched forward."""
        return [self.postprocess(o, p) for o, p in zip(self.forward_batch(preps), preps, strict=True)]


Item = TypeVar("Item")


def _chunks(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    chunk: list[Item] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


Frame = TypeVar("Frame")  # a frame record with ``prep``, ``bad``, ``out`` and ``forward_s`` fields


def forward_batches(frames: Iterable[Frame], detector: BatchedDetector) -> Iterator[Frame]:
    """``frames`` (dataclass records carrying ``prep``, ``bad``, ``out`` and ``forward_s``, such as
    :class:`cstrack.run.frames.FrameInput`) grouped by ``detector.batch_size``, each group forwarded in
    one call, yielded one by one in order with ``out`` set (the forward seconds shared equally) and
    the input tensor dropped (``prep`` keeps only the letterbox geometry).  Frames marked bad pass
    through untouched; the last group may be short."""
    for group in _chunks(frames, detector.batch_size):
        live = [f for f in group if getattr(f, "bad", None) is None and getattr(f, "prep", None) is not None]
        t0 = time.perf_counter()
        outs = detector.forward_batch([f.prep for f in live])  # type: ignore[attr-defined]  # a frame record
        share = (time.perf_counter() - t0) / max(1, len(live))
        done = {id(f): replace(f, out=o, forward_s=share, prep=Prepared(None, f.prep.meta))  # type: ignore[type-var, attr-defined]
                for f, o in zip(live, outs, strict=True)}
        for f in group:
            yield done.get(id(f), f)


def batched_inputs(prepare: Callable[[Item], Frame], items: Iterable[Item], detector: BatchedDetector,
                   workers: int = 2) -> Iterator[Frame]:
    """``prepare(item)`` (read + letterbox of one frame, returning its frame record) run ahead by
    ``workers`` threads, at most two batches ahead, then :func:`forward_batches`."""
    from cstrack.infer.prefetch import ordered_map

    ahead = 2 * detector.batch_size
    return forward_batches(ordered_map(prepare, items, max(1, workers), ahead), detector)


def batched_frames(seq: Any, detector: BatchedDetector, record: Callable[..., Frame], skip_bad: bool = False,
                   workers: int = 2) -> Iterator[Frame]:
    """The frame reader of batched inference for a MOTChallenge sequence ``seq``
    (:class:`cstrack.data.mot.Sequence`): each frame decoded (checked against seqinfo's size) and
    letterboxed by one of ``workers`` threads, up to two batches ahead, then forwarded
    ``detector.batch_size`` frames at a time (:func:`forward_batches`); yields the loop's
    frame records (``record(number, prep, read_s, preprocess_s, bad=...)``: the loop's ``FrameInput``,
    passed in so that this module does not import the loop) in frame order with ``out`` set.  A bad
    image raises, or with ``skip_bad`` comes marked ``bad`` (no detections) without holding up its batch."""
    from cstrack.data.images import CorruptImageError, read_image

    size = (seq.info.im_width, seq.info.im_height)

    def prepare(number: int) -> Frame:
        t0 = time.perf_counter()
        try:
            img = read_image(seq.image_path(number), expect_size=size)
        except CorruptImageError as exc:
            if not skip_bad:
                raise
            return record(number, None, time.perf_counter() - t0, bad=str(exc))
        t1 = time.perf_counter()
        prep = detector.preprocess(img)
        return record(number, prep, t1 - t0, time.perf_counter() - t1)

    return batched_inputs(prepare, range(1, seq.info.seq_length + 1), detector, workers)


def batching(detector: FrameDetector, batch_size: int | None, precision: str = "fp32", live: bool = False) -> FrameDetector:
    """``detector`` as a source should run it: wrapped in a :class:`BatchedDetector` when it runs
    several frames per call or in half precision, as it is otherwise.

    ``batch_size``: ``None`` = the default of the model's device (:func:`default_batch_size`; paths
    that cannot batch, such as onnx, keep 1); live sources always run batch 1.  An explicit batch
    above 1 or a half precision on a path that cannot batch is a :class:`ConfigError`."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision: expected one of {', '.join(PRECISIONS)}, got {precision!r}")
    try:
        _, device, _ = _torch_parts(detector)
    except ConfigError:
        if (batch_size or 1) > 1 or precision != "fp32":
            raise
        return detector
    batch = 1 if live else (default_batch_size(device) if batch_size is None else batch_size)
    if batch == 1 and precision == "fp32":
        return detector
    return BatchedDetector(detector, batch, precision)
