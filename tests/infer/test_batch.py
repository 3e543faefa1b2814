"""Batched inference (cstrack/infer/batch.py): frames forwarded several at a time give the same
detections and the same tracks as one frame at a time, on the CPU."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from cstrack.data.mot import SeqInfo, read_results, write_seqinfo
from cstrack.detection import Detections, FrameDetector, Prepared
from cstrack.errors import ConfigError
from cstrack.infer.batch import BatchedDetector, FrameOutput, autocast_dtype, default_batch_size
from cstrack.model.detector import build_detector
from cstrack.model.inference_settings import InferenceSettings, settings_for_weights
from cstrack.paths import shipped_weights

BOX_ATOL = 1e-3  # px: the tolerance of the issue (batched vs batch 1)
FRAMES = 5  # head8 frames compared at the detector level
SIZE = (576, 320)  # cstrack-n's real-time size: people are found, a frame forwards in tens of ms
SEQ_FRAMES = 16  # PETS09 frames tracked batched and one by one


def detections(det: FrameDetector, frames: list[np.ndarray]) -> list[Detections]:
    out = []
    for f in frames:
        prep = det.preprocess(f)
        out.append(det.postprocess(det.forward(prep), prep))
    return out


def assert_same_detections(got: list[Detections], ref: list[Detections]) -> None:
    assert len(got) == len(ref)
    for g, r in zip(got, ref, strict=True):
        assert len(g) == len(r)
        np.testing.assert_allclose(g.xyxy, r.xyxy, rtol=0, atol=BOX_ATOL)
        np.testing.assert_allclose(g.scores, r.scores, rtol=0, atol=1e-5)
        assert g.embeddings is not None and r.embeddings is not None
        np.testing.assert_allclose(g.embeddings, r.embeddings, rtol=0, atol=1e-4)


@pytest.fixture(scope="module")
def shipped() -> tuple[Path, InferenceSettings]:
    weights = shipped_weights()
    return weights, settings_for_weights(weights)


@pytest.mark.parametrize("path", ["eager", "fast"])
def test_detect_batch_equals_batch_one(path: str, shipped: tuple[Path, InferenceSettings], head8_frames: list[np.ndarray]) -> None:
    weights, _ = shipped
    det = build_detector("cstrack-n", weights, SIZE, path=path)
    frames = head8_frames[:FRAMES]
    ref = detections(det, frames)
    assert sum(len(d) for d in ref) >= 2 * FRAMES  # people are found: the comparison is not empty
    # the compiled per-frame kernels, and (eager) torch ops on the batch, the accelerator's way
    for device_post in (False, True) if path == "eager" else (False,):
        batched = BatchedDetector(det, 2, device_postprocess=device_post)
        got: list[Detections] = []
        for k in range(0, FRAMES, 2):  # 2 + 2 + 1 frames
            got += batched.detect_batch([batched.preprocess(f) for f in frames[k:k + 2]])
        assert_same_detections(got, ref)


def pets09_frames(data_dir: Path, root: Path, n: int) -> Path:
    """The first ``n`` frames of the PETS09-S2L1 video as a sequence folder (lossless PNG)."""
    cap = cv2.VideoCapture(str(data_dir / "raw" / "PETS09-S2L1.mp4"))
    (root / "img1").mkdir(parents=True)
    for k in range(1, n + 1):
        ok, frame = cap.read()
        assert ok, f"frame {k} of the video"
        cv2.imwrite(str(root / "img1" / f"{k:06d}.png"), frame)
    cap.release()
    h, w = frame.shape[:2]
    write_seqinfo(root, SeqInfo(root.name, 7.0, n, w, h, im_ext=".png"))
    return root


@pytest.mark.slow  # 2 x 16 forwards of cstrack-n at 576x320: ~10 s on the 2-core machine
def test_batched_tracks_equal_batch_one_on_a_pets09_sequence(data_dir: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The REQUIRED check of issue 26, through ``cstrack track --batch-size``: batch 3 (16 frames:
    the last batch is short; frames read and letterboxed on worker threads) against batch 1, the
    tracker fed in order: the same (frame, id) rows, boxes within 1e-3 px (plus the result file's
    rounding to 1/1000 px)."""
    from typer.testing import CliRunner

    from cstrack.cli import app

    seq = pets09_frames(data_dir, tmp_path / "PETS09-S2L1-seg", SEQ_FRAMES)
    calls: list[int] = []
    forward_batch = BatchedDetector.forward_batch

    def spy(self: BatchedDetector, preps: list[Prepared]) -> list[FrameOutput]:
        calls.append(len(preps))
        return forward_batch(self, preps)

    monkeypatch.setattr(BatchedDetector, "forward_batch", spy)
    w, h = SIZE
    for batch in (1, 3):
        res = CliRunner().invoke(app, ["track", str(seq), "--path", "eager", "--size", f"{w}x{h}", "--batch-size",
                                       str(batch), "--out", str(tmp_path / f"b{batch}"), "--no-progress"])
        assert res.exit_code == 0, res.output
    assert calls == [3] * 5 + [1]  # batch 1 is the plain detector: no batched call
    got, want = (read_results(tmp_path / f"b{b}" / f"{seq.name}.txt") for b in (3, 1))
    assert len(want) > 2 * SEQ_FRAMES and len(set(want.id)) >= 3  # people are tracked
    np.testing.assert_array_equal(got.frame, want.frame)
    np.testing.assert_array_equal(got.id, want.id)
    assert np.abs(got.tlwh - want.tlwh).max() <= BOX_ATOL + 1e-6
    np.testing.assert_allclose(got.conf, want.conf, rtol=0, atol=1e-5)


def test_precision_resolution() -> None:
    assert autocast_dtype("fp32", "cpu") is None
    assert autocast_dtype("bf16", "cpu") is torch.bfloat16
    assert autocast_dtype("fp16", "cpu") is torch.bfloat16  # no fast fp16 on the CPU
    with pytest.raises(ConfigError, match="precision"):
        autocast_dtype("fp8", "cpu")
    assert default_batch_size("cpu") == 1 and default_batch_size("cuda") > 1


def test_batching_follows_the_device_default_and_refuses_what_cannot_batch(shipped: tuple[Path, InferenceSettings]) -> None:
    from cstrack.infer.batch import batching

    eager = build_detector("cstrack-n", shipped[0], (320, 192), path="eager")
    assert batching(eager, None) is eager  # the CPU default: batch 1, fp32, unwrapped
    two = batching(eager, 2)
    assert isinstance(two, BatchedDetector) and two.batch_size == 2 and two.precision == "fp32"
    assert batching(eager, 4, live=True) is eager  # live sources keep batch 1
    half = batching(eager, None, "bf16", live=True)
    assert isinstance(half, BatchedDetector) and half.batch_size == 1 and half.effective_precision == "bf16"
    onnx = build_detector("cstrack-n", shipped[0], (320, 192), path="onnx")
    assert batching(onnx, None) is onnx
    with pytest.raises(ConfigError, match="eager or fast"):
        batching(onnx, 2)
    with pytest.raises(ConfigError, match="eager or fast"):
        batching(onnx, None, "bf16")
