"""TrainConfig: YAML at the edge, validation naming the field, hashing."""

from __future__ import annotations

from pathlib import Path

import pytest

from cstrack.errors import ConfigError
from cstrack.train.config import TrainConfig, dump_train_config, load_train_config

YAML = """
name: pets
out_dir: runs/pets
model: {variant: cstrack-n, overrides: {ren: none, saan_level_sam: [true, false, true]}}
init: {kind: coco}
data:
  sequences: [{path: data/PETS09-S2L1, frames: [1, 397]}]
  input_size: [512, 384]
  resize: letterbox
epochs: 12
batch: 8
nominal_batch: 16
optim: {lr0: 0.01, drop_epoch: 8, warmup_epochs: 1, warmup_min_iters: 0}
ema: {tau: 100}
"""


def test_load_yaml(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(YAML)
    cfg = load_train_config(p)
    assert cfg.data.sequences[0].frames == (1, 397)
    assert cfg.data.input_size == (512, 384)
    assert cfg.model.overrides["saan_level_sam"] == [True, False, True]
    assert cfg.optim.lr0 == 0.01 and cfg.optim.momentum == 0.95  # spec default kept
    assert cfg.ema.tau == 100 and cfg.ema.decay == 0.9999
    assert cfg.accumulate() == 2 and cfg.accumulate(world_size=2) == 1
    # round trip through the dumped YAML
    p2 = tmp_path / "c2.yaml"
    p2.write_text(dump_train_config(cfg))
    assert load_train_config(p2) == cfg
    with pytest.raises(AttributeError):
        cfg.epochs = 3  # type: ignore[misc]


def test_hash_ignores_output_locations() -> None:
    base = TrainConfig.from_dict({"data": {"sequences": [{"path": "x"}]}})
    assert base.replace(out_dir="elsewhere", export_path="w.pt").config_hash() == base.config_hash()
    assert base.replace(epochs=3).config_hash() != base.config_hash()


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"optim": {"lr00": 1}}, "optim.lr00"),
        ({"epochs": 0}, "epochs"),
        ({"batch": 2.5}, "batch"),
        ({"optim": {"name": "rmsprop"}}, "optim.name"),
        ({"optim": {"momentum": 1.5}}, "optim.momentum"),
        ({"data": {"sequences": [{"path": "x"}], "input_size": [500, 384]}}, "data.input_size"),
        ({"data": {"sequences": [{"path": "x", "frames": [9, 3]}]}}, "data.sequences.frames"),
        ({"data": {}}, "data"),
        ({"data": {"sequences": [{"path": "x"}], "resize": "crop"}}, "data.resize"),
        ({"init": {"kind": "checkpoint"}}, "init.path"),
        ({"model": {"overrides": {"ren": "maybe"}}}, "ren"),
        ({"model": {"variant": "nope"}}, "nope"),
        ({"device": "tpu"}, "device"),
        ({"ema": {"tau": 0}}, "ema.tau"),
        ({"freeze": {"epochs": 99}}, "freeze.epochs"),
    ],
)
def test_invalid_values_name_the_field(patch: dict, field: str) -> None:
    d = {"data": {"sequences": [{"path": "x"}]}, **patch}
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        TrainConfig.from_dict(d)


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_train_config(tmp_path / "none.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed")
    with pytest.raises(ConfigError, match=r"bad\.yaml"):
        load_train_config(bad)
