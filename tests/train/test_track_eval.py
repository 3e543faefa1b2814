"""Tracking evaluation of the weights being trained (epoch callback) on real PETS frames."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from cstrack.errors import ConfigError
from cstrack.model import build_model
from cstrack.model.inference_settings import InferenceSettings
from cstrack.model.weights import load_coco_yolov5n
from cstrack.train.track_eval import TrackEvalConfig, TrackingEvalCallback, evaluate_model


@pytest.fixture(scope="module")
def coco_model():
    return load_coco_yolov5n(build_model("cstrack-n", ren="none"))


def test_evaluate_model_on_head8(coco_model, head8: Path, tmp_path: Path) -> None:
    cfg = TrackEvalConfig(str(head8.parent), (head8.name,), str(tmp_path), InferenceSettings(input_size=(512, 384)))
    coco_model.train()
    m = evaluate_model(coco_model, cfg, "epoch_001")
    assert (tmp_path / "epoch_001" / f"{head8.name}.txt").is_file()
    # the COCO person detector finds most of the 3 walkers of frames 1-8 (24 gt boxes)
    assert m["FN"] <= 8 and m["MOTA"] > 0.5 and m["IDF1"] > 0.5
    assert m["eval_seconds"] > 0 and m["fps"] > 0
    assert coco_model.training  # a copy was evaluated: the trained model keeps its mode


def test_callback_runs_every_n_epochs_and_at_the_end(coco_model, head8: Path, tmp_path: Path) -> None:
    cb = TrackingEvalCallback(TrackEvalConfig(str(head8.parent), (head8.name,), str(tmp_path),
                                            InferenceSettings(input_size=(128, 96)), every=2))
    trainer = SimpleNamespace(eval_model=coco_model)
    assert cb(trainer, SimpleNamespace(epoch=0, final=False)) == {}
    assert "MOTA" in cb(trainer, SimpleNamespace(epoch=1, final=False))
    assert "IDF1" in cb(trainer, SimpleNamespace(epoch=2, final=True))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch_002", "epoch_003"]


def test_config_validation(head8: Path) -> None:
    with pytest.raises(ConfigError, match="sequences"):
        TrackEvalConfig(str(head8.parent), (), "x")
    with pytest.raises(ConfigError, match="settings"):
        TrackEvalConfig(str(head8.parent), (head8.name,), "x", settings=(512, 384))  # type: ignore[arg-type]
