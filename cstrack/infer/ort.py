"""ONNX Runtime detectors (the ``onnx`` fp32 and ``int8`` paths).

The session runs on the CPU execution provider with every graph optimisation on (constant
folding, Conv + activation fusion, the NCHWc blocked-layout transformer), sequential execution and
``intra_op_num_threads`` equal to torch's thread setting, so ``torch.set_num_threads`` (or the
``--threads`` of the benchmarks) governs every path alike.  Inputs and outputs are bound to
preallocated buffers (``IOBinding``), so a frame allocates nothing on either side.

Offline sequences may instead run several frames at once (:meth:`OrtDetector.prepare_and_forward`,
called from the runner's frame workers): one single-threaded session shared by ``threads`` worker
threads, each letterboxing and forwarding its own frame, so the cores never wait at an intra-op
barrier and decoding and letterboxing run on both cores too (docs/cpu_speed.md, issue 16).
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cstrack.detection import Detections, Prepared
from cstrack.errors import ConfigError
from cstrack.infer.frames import DEFAULT_SLOTS, InputRing, embed_boxes, postprocess_outputs
from cstrack.infer.onnx_export import INPUT_NAME, META_KEY, OUTPUT_NAMES
from cstrack.model.network import check_input_size
from cstrack.model.postprocess import PostprocessConfig

_OUTPUT_SETS = 2  # outputs alternate, so frame t's results survive while frame t+1 runs


def session_options(threads: int | None = None, spinning: bool = False) -> Any:
    """CPU session options: ``threads`` intra-op threads (default: ``torch.get_num_threads()``),
    all graph optimisations, sequential execution.

    ``spinning`` lets idle pool threads busy-wait for work; off by default because a prefetch
    thread shares the cores (a spinning pool would steal its time).
    """
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = int(threads or torch.get_num_threads())
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    so.log_severity_level = 3  # errors only
    return so


class OrtDetector:
    """:class:`~cstrack.detection.FrameDetector` over an exported file (see
    :mod:`cstrack.infer.onnx_export`), fp32 or quantised.

    ``forward`` returns ``(emb [1, H/8, W/8, D], pred [1, N, 6])`` as torch tensors sharing the
    session's output buffers (valid until the next-but-one ``forward``).
    """

    def __init__(
        self,
        onnx_path: str | Path,
        post: PostprocessConfig | None = None,
        *,
        path: str = "onnx",
        threads: int | None = None,
        spinning: bool = False,
        slots: int = DEFAULT_SLOTS,
    ) -> None:
        import onnxruntime as ort

        self.path = path
        self.onnx_path = Path(onnx_path)
        self.session = ort.InferenceSession(
            str(onnx_path), session_options(threads, spinning), providers=["CPUExecutionProvider"]
        )
        meta_map = self.session.get_modelmeta().custom_metadata_map
        if META_KEY not in meta_map:
            raise ConfigError(f"{onnx_path}: not a cstrack ONNX export (no '{META_KEY}' metadata)")
        self.meta = json.loads(meta_map[META_KEY])
        w, h = (int(v) for v in self.meta["input_size"])
        check_input_size(w, h)
        self.input_size = (w, h)
        self.emb_dim = int(self.meta["emb_dim"])
        self.post = post or PostprocessConfig()
        self.input_slots = slots
        self._ring = InputRing(self.input_size, "nchw", slots)
        shapes = {o.name: o.shape for o in self.session.get_outputs()}
        if tuple(shapes) != OUTPUT_NAMES:
            raise ConfigError(f"{onnx_path}: outputs {list(shapes)}, expected {list(OUTPUT_NAMES)}")
        self._outputs = [
            {name: np.empty([int(d) for d in shape], np.float32) for name, shape in shapes.items()}
            for _ in range(_OUTPUT_SETS)
        ]
        self._binding = self.session.io_binding()
        self._count = 0
        self._solo: Any = None  # the single-threaded session of the frame workers, made on first use
        self._solo_lock = threading.Lock()
        self._local = threading.local()  # each frame worker's own letterbox canvas + input
        self._warm_up()

    def _warm_up(self) -> None:
        w, h = self.input_size
        self.forward(self.preprocess(np.zeros((h, w, 3), np.uint8)))

    def preprocess(self, frame_bgr: np.ndarray) -> Prepared:
        _, arr, meta = self._ring.fill(frame_bgr)
        return Prepared(arr, meta)

    def forward(self, prep: Prepared) -> tuple[np.ndarray, np.ndarray]:
        """``(emb [1, H/8, W/8, D], pred [1, N, 6])``, float32 arrays (preallocated: valid until
        this detector has run two more frames)."""
        x = prep.tensor
        if not isinstance(x, np.ndarray) or x.dtype != np.float32 or not x.flags.c_contiguous:
            x = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
        outs = self._outputs[self._count % _OUTPUT_SETS]
        self._count += 1
        b = self._binding
        b.bind_input(INPUT_NAME, "cpu", 0, np.float32, list(x.shape), x.ctypes.data)
        for name, arr in outs.items():
            b.bind_output(name, "cpu", 0, np.float32, list(arr.shape), arr.ctypes.data)
        self.session.run_with_iobinding(b)
        return outs["emb"], outs["pred"]

    def prepare_and_forward(self, frame_bgr: np.ndarray) -> tuple[Prepared, tuple[np.ndarray, np.ndarray], float, float]:
        """:meth:`preprocess` + :meth:`forward` of one frame, safe to call from several threads at
        once (the runner's frame workers): a single-threaded session (each call computes in its own
        thread), the thread's own input buffers, freshly allocated outputs that the caller owns.

        Returns ``(prep, (emb [1, H/8, W/8, D], pred [1, N, 6]), preprocess_s, forward_s)``; the
        same graph as :meth:`forward` (tests/infer/test_auto_path.py: the same tracks as eager).
        ``prep.tensor`` is reused by the thread's next call.
        """
        import onnxruntime as ort

        with self._solo_lock:
            if self._solo is None:
                self._solo = ort.InferenceSession(str(self.onnx_path), session_options(1), providers=["CPUExecutionProvider"])
        ring = getattr(self._local, "ring", None)
        if ring is None:
            ring = self._local.ring = InputRing(self.input_size, "nchw", slots=2)
        t0 = time.perf_counter()
        _, arr, meta = ring.fill(frame_bgr)
        t1 = time.perf_counter()
        emb, pred = self._solo.run(list(OUTPUT_NAMES), {INPUT_NAME: arr})
        return Prepared(arr, meta), (emb, pred), t1 - t0, time.perf_counter() - t1

    def postprocess(self, out: tuple[np.ndarray, np.ndarray], prep: Prepared) -> Detections:
        return postprocess_outputs(out[0], out[1], prep.meta, self.post)

    def embed_boxes(self, out: tuple[np.ndarray, np.ndarray], prep: Prepared, xyxy: np.ndarray) -> np.ndarray:
        return embed_boxes(out[0], prep.meta, xyxy)
