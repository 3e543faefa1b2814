"""TrackerConfig: spec defaults, validation naming the field, presets, output filter."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cstrack.errors import ConfigError
from cstrack.tracker import OutputFilter, TrackerConfig, preset
from cstrack.tracker.config import PRESET_NAMES


def test_defaults_are_the_spec_values() -> None:
    c = TrackerConfig()
    assert c.det_thresh == 0.5  # §10.3 step 6 / §11
    assert c.appearance_thresh == 0.4  # stage 1
    assert c.motion_weight == pytest.approx(1 - 0.98)
    assert c.gating_thresh == pytest.approx(9.4877)
    assert c.iou_thresh == 0.5  # stage 2
    assert c.unconfirmed_thresh == 0.7  # stage 3
    assert c.track_buffer == 30 and c.buffer_fps == 30.0
    assert c.duplicate_thresh == 0.15
    assert c.template_momentum == 0.9
    assert c.kalman.std_weight_position == 1 / 20 and c.kalman.std_weight_velocity == 1 / 160
    # the fixes of §15: first frame reported (Q9), no output filter (Q10)
    assert c.new_track_report == "backfill"
    assert c.output_filter is None


@pytest.mark.parametrize(
    ("rate", "buffer", "expected"),
    [(30, 30, 30), (7, 30, 7), (14, 30, 14), (25, 30, 25), (60, 30, 60), (30, 0, 0), (10, 30, 10)],
)
def test_max_time_lost(rate: float, buffer: int, expected: int) -> None:
    assert TrackerConfig(track_buffer=buffer).max_time_lost(rate) == expected


def test_max_time_lost_rejects_bad_rate() -> None:
    with pytest.raises(ConfigError, match="frame_rate"):
        TrackerConfig().max_time_lost(0)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("det_thresh", 1.5),
        ("det_thresh", float("nan")),
        ("appearance_thresh", 0.0),
        ("motion_weight", -0.1),
        ("gating_thresh", -1.0),
        ("iou_thresh", 0.0),
        ("iou_thresh", 1.2),
        ("unconfirmed_thresh", 2.0),
        ("motion_only_thresh", 0.0),
        ("duplicate_thresh", -0.5),
        ("template_momentum", 1.5),
        ("track_buffer", -1),
        ("track_buffer", 2.5),
        ("buffer_fps", 0.0),
        ("new_track_report", "sometimes"),
        ("use_appearance", "yes"),
        ("motion_only_gating", 1),
        ("output_filter", (100, 0.6)),
        ("kalman", None),
        ("det_thresh", "0.5"),
    ],
)
def test_invalid_value_names_the_field(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"TrackerConfig.{field}"):
        TrackerConfig(**{field: value})  # type: ignore[arg-type]


def test_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        TrackerConfig().det_thresh = 0.3  # type: ignore[misc]


def test_presets() -> None:
    assert set(PRESET_NAMES) >= {"default", "mot17", "mot20", "original", "sots"}
    assert preset("default") == TrackerConfig()
    assert preset("mot17") == TrackerConfig()
    assert preset("mot20") == TrackerConfig()
    orig = preset("original")
    assert orig == preset("sots")
    assert orig.new_track_report == "next_frame"
    assert orig.output_filter == OutputFilter(min_area=100.0, max_aspect=0.6)
    assert preset("mot17", track_buffer=60).track_buffer == 60
    with pytest.raises(ConfigError, match="unknown tracker preset 'nope'"):
        preset("nope")
    with pytest.raises(ConfigError, match=r"TrackerConfig\.no_such"):
        preset("default", no_such=1)
    with pytest.raises(ConfigError, match=r"TrackerConfig\.iou_thresh"):
        preset("default", iou_thresh=5.0)


def test_output_filter_rules() -> None:
    boxes = np.array(
        [
            [0, 0, 10, 20],  # area 200, w/h 0.5: kept
            [0, 0, 5, 20],  # area 100: not > 100
            [0, 0, 12, 20],  # w/h 0.6: kept (<=)
            [0, 0, 13, 20],  # w/h 0.65: dropped
            [0, 0, 10, 0],  # degenerate
        ],
        dtype=float,
    )
    assert OutputFilter().keep(boxes).tolist() == [True, False, True, False, False]
    assert OutputFilter(min_area=None).keep(boxes).tolist() == [True, True, True, False, False]
    assert OutputFilter(min_area=None, max_aspect=None).keep(boxes).all()
    with pytest.raises(ConfigError, match=r"OutputFilter\.max_aspect"):
        OutputFilter(max_aspect=-1.0)
