"""The int8 path: static QDQ quantisation calibrated on shipped frames, boxes overlapping eager's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from cstrack.boxes import iou_matrix
from cstrack.infer import build_optimised_detector, calibration_inputs, int8_file, shipped_calibration_images
from cstrack.model import CSTrackModel, build_model
from cstrack.model.detector import ModelDetector
from cstrack.model.weights import load_coco_yolov5n
from tests.infer.conftest import N_SIZE


@pytest.fixture(scope="module")
def coco_n_noren() -> CSTrackModel:
    """cstrack-n, COCO trunk + head, REN off: the detections are COCO YOLOv5n's person boxes."""
    torch.manual_seed(0)
    return load_coco_yolov5n(build_model("cstrack-n", ren="none")).eval()


def test_shipped_calibration_frames_are_real_letterboxed_inputs() -> None:
    files = shipped_calibration_images()
    assert len(files) == 8 + 4 + 6 and all(f.suffix == ".jpg" for f in files)
    x = calibration_inputs(files[:2], N_SIZE)
    assert x[0].shape == (1, 3, 320, 576) and x[0].dtype == np.float32
    assert x[0].min() >= 0.0 and x[0].max() <= 1.0 and x[0].std() > 0.05  # a real image, not padding


def test_int8_graph_quantises_convs_and_keeps_sensitive_parts_float(coco_n: CSTrackModel) -> None:
    graph = onnx.load(str(int8_file(coco_n, N_SIZE))).graph
    dq_out = {o for n in graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    convs = {n.name: n for n in graph.node if n.op_type == "Conv"}
    quantised = {name for name, n in convs.items() if n.input[1] in dq_out}  # weight comes dequantised
    trunk = {name for name in convs if name.startswith("/trunk.")}
    assert trunk and trunk <= quantised
    # SAAN's untrained convs have equal (all-zero) folded biases, which the exporter would share
    # through Identity nodes; they must still be integer convolutions
    assert {"/emb_head/proj3/conv/Conv", "/emb_head/fuse/conv/Conv"} <= quantised
    assert not any(n.op_type == "Identity" for n in graph.node)
    # REN branches, the attention gates and the three detection convs keep float weights
    for name in convs:
        if name.startswith(("/ren.", "/head/")) or "att" in name:
            assert name not in quantised, name
    # int8 weights with one scale per output channel
    scales = {i.name: i for i in graph.initializer if i.name.endswith("_scale")}
    w_scale = next(n.input[1] for n in graph.node if n.op_type == "DequantizeLinear" and n.output[0] == convs["/trunk.1/conv/Conv"].input[1])
    assert list(scales[w_scale].dims) == [32]  # trunk.1: 32 output channels in cstrack-n


def _matched_share(a: np.ndarray, b: np.ndarray, thr: float = 0.5) -> float:
    """Share of boxes in ``a`` with an IoU >= ``thr`` partner in ``b``."""
    if len(a) == 0:
        return 1.0
    if len(b) == 0:
        return 0.0
    return float((iou_matrix(a, b).max(axis=1) >= thr).mean())


def test_int8_boxes_overlap_eager_on_real_frames(coco_n_noren: CSTrackModel, head8_frames: list[np.ndarray]) -> None:
    eager = ModelDetector(coco_n_noren, N_SIZE)
    int8 = build_optimised_detector(coco_n_noren, N_SIZE, "int8")
    assert int8.path == "int8"  # type: ignore[attr-defined]
    n_eager = 0
    for frame in head8_frames:
        pe, pq = eager.preprocess(frame), int8.preprocess(frame)
        de = eager.postprocess(eager.forward(pe), pe)
        dq = int8.postprocess(int8.forward(pq), pq)
        assert dq.embeddings is not None and dq.embeddings.shape == (len(dq), 128)
        np.testing.assert_allclose(np.linalg.norm(dq.embeddings, axis=1), 1.0, rtol=1e-5)
        confident = de.xyxy[de.scores > 0.7]
        n_eager += len(confident)
        assert _matched_share(confident, dq.xyxy) >= 0.8
        assert _matched_share(dq.xyxy[dq.scores > 0.7], de.xyxy) >= 0.8
    assert n_eager >= 16  # PETS09 frames 1-8 show 3+ pedestrians each


def test_int8_cli_export(tmp_path: Path, head8: Path) -> None:
    from typer.testing import CliRunner

    from cstrack.cli import app

    out = tmp_path / "n8.onnx"
    res = CliRunner().invoke(app, ["export", "--variant", "cstrack-n", "--size", "256x160", "--format", "onnx-int8",
                                   "--calib", str(head8 / "img1"), "--out", str(out)])
    assert res.exit_code == 0, res.output
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
