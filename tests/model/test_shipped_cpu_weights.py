"""The committed CPU checkpoint ``weights/cstrack-n_cpu.pt`` (bench/train_cpu_model.py): its detection
path is the COCO detector, bit for bit, and its record carries the settings its targets were measured at."""

from __future__ import annotations

from pathlib import Path

import torch

from cstrack.model import build_model
from cstrack.model.inference_settings import InferenceSettings, settings_for_weights
from cstrack.model.ren import NoDecoupler
from cstrack.model.weights import load_coco_yolov5n, load_weights, read_record

WEIGHTS = Path(__file__).resolve().parents[2] / "weights" / "cstrack-n_cpu.pt"


def test_detection_path_is_the_coco_detector_exactly() -> None:
    model = load_weights(WEIGHTS)
    assert model.config.variant == "cstrack-n" and model.config.ren == "none"
    assert all(isinstance(r, NoDecoupler) for r in model.ren)
    coco = load_coco_yolov5n(build_model("cstrack-n", ren="none")).state_dict()
    ours = model.state_dict()
    frozen = [k for k in coco if k.startswith(("trunk.", "detect."))]
    assert len(frozen) > 300
    assert all(torch.equal(ours[k], coco[k]) for k in frozen)
    # the embedding head was trained: it is not the random initialisation of another build
    emb = [k for k in ours if k.startswith("emb_head.") and ours[k].is_floating_point()]
    assert emb and any(not torch.equal(ours[k], coco[k]) for k in emb)


def test_record_carries_the_measured_inference_settings() -> None:
    assert settings_for_weights(WEIGHTS) == InferenceSettings(
        input_size=(1088, 608), conf_thres=0.4, nms_thres=0.6, tracker_preset="default", frame_rate=7.0)
    record = read_record(WEIGHTS)
    assert record is not None and record["config"]["ren"] == "none"
    assert record["provenance"]["data"]  # what it was trained on travels with it
