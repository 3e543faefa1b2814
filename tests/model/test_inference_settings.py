"""The inference settings schema: round trips, validation naming the key, records, the shipped checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cstrack.errors import ConfigError
from cstrack.fsutil import sha256_file
from cstrack.model.inference_settings import (
    DEFAULTS,
    InferenceSettings,
    from_record,
    settings_for_weights,
    with_settings,
)

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "weights" / "cstrack-n_pets09.pt"


def test_round_trip_through_json() -> None:
    s = InferenceSettings(input_size=(512, 384), conf_thres=0.4, nms_thres=0.5, tracker_preset="mot17", frame_rate=7)
    d = json.loads(json.dumps(s.to_dict()))
    assert d == {"input_size": [512, 384], "conf_thres": 0.4, "nms_thres": 0.5, "tracker_preset": "mot17",
                 "frame_rate": 7.0}
    assert InferenceSettings.from_dict(d) == s


def test_missing_keys_take_defaults_and_size_may_be_text() -> None:
    s = InferenceSettings.from_dict({"input_size": "576x320"})
    assert s.input_size == (576, 320)
    assert (s.conf_thres, s.nms_thres, s.tracker_preset, s.frame_rate) == (0.5, 0.6, "default", None)
    assert from_record({"sha256": "x"}) is DEFAULTS
    assert from_record(None) is DEFAULTS


@pytest.mark.parametrize(
    ("block", "needle"),
    [
        ({"input_size": [500, 384]}, "input_size"),
        ({"input_size": "big"}, "input_size"),
        ({"conf_thres": 1.5}, "conf_thres"),
        ({"nms_thres": "0.6"}, "nms_thres"),
        ({"tracker_preset": "fastest"}, "tracker_preset"),
        ({"frame_rate": 0}, "frame_rate"),
        ({"conf": 0.5}, "unknown key(s) ['conf']"),
    ],
)
def test_bad_blocks_name_source_and_key(block: dict, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        from_record({"inference": block}, "w.json")
    assert "w.json: inference" in str(info.value) and needle in str(info.value)


def test_override_keeps_values_given_as_none() -> None:
    s = InferenceSettings(input_size=(512, 384), frame_rate=7.0)
    assert s.override(input_size=None, conf_thres=None) is s
    t = s.override(conf_thres=0.3, input_size=(576, 320))
    assert (t.input_size, t.conf_thres, t.nms_thres, t.frame_rate) == ((576, 320), 0.3, 0.6, 7.0)
    with pytest.raises(ConfigError, match="size"):
        s.override(size=(1, 1))
    post = t.postprocess_config()
    assert (post.conf_thres, post.nms_thres) == (0.3, 0.6)
    assert t.describe() == "input 576x320, conf 0.3, nms 0.6, preset default, trained at 7 fps"


def test_with_settings_adds_the_block_without_touching_the_rest() -> None:
    rec = {"sha256": "abc", "file": "x.pt"}
    out = with_settings(rec, InferenceSettings(frame_rate=25.0))
    assert out["sha256"] == "abc" and rec == {"sha256": "abc", "file": "x.pt"}
    assert from_record(out) == InferenceSettings(frame_rate=25.0)


def test_shipped_checkpoint_carries_its_training_settings() -> None:
    # trained and evaluated at 512x384, conf 0.5, default preset on 7-fps PETS09 (docs/training.md)
    s = settings_for_weights(SHIPPED)
    assert s == InferenceSettings(input_size=(512, 384), conf_thres=0.5, nms_thres=0.6,
                                  tracker_preset="default", frame_rate=7.0)
    record = json.loads(SHIPPED.with_suffix(".json").read_text())
    assert record["sha256"] == sha256_file(SHIPPED)  # the record's checksum still matches the .pt
    assert settings_for_weights(None) is DEFAULTS and settings_for_weights("coco") is DEFAULTS
