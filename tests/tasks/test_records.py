"""tasks.records: the pipeline's records are validated at construction (naming the field), pickle
for Dask workers, and keep the on-disk JSON of a tracking record."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from cstrack.errors import ConfigError
from cstrack.fsutil import atomic_write_json
from cstrack.model.inference_settings import InferenceSettings
from cstrack.model.ref import ModelRef
from tasks.records import JobModel, SequenceOutcome, SequenceRef, TrackJob, TrackRecord

_TIMES = {"started": "2026-01-01T00:00:00.000+00:00", "finished": "2026-01-01T00:00:02.500+00:00"}


def _model(**kw: object) -> JobModel:
    values: dict = {"variant": "cstrack-n", "weights": "coco", "input_size": (320, 256), "path": "eager",
                    "conf_thres": 0.5, "nms_thres": 0.6, **kw}
    return JobModel.of(**values)


def _record(**kw: object) -> TrackRecord:
    values: dict = {"dataset": "synth", "split": "train", "sequence": "SYNTH-01", "mode": "gt", "frames": 40,
                    "fps": 80.0, "result_path": "/r/SYNTH-01.txt", "result_sha256": "ab" * 32, "worker": "w1",
                    **_TIMES, **kw}
    return TrackRecord(**values)


def test_sequence_ref_label_and_video_consistency() -> None:
    ref = SequenceRef(dataset="clips", split="cam", name="door", seq_dir="/d/cam/door", kind="video",
                      video="/d/cam/door.avi", fps=12.0)
    assert ref.label == "clips/cam/door"
    with pytest.raises(ConfigError, match=r"SequenceRef\.video"):
        SequenceRef(dataset="clips", split="cam", name="door", seq_dir="/d", kind="video")
    with pytest.raises(ConfigError, match=r"SequenceRef\.video"):
        SequenceRef(dataset="clips", split="cam", name="door", seq_dir="/d", video="/d/door.avi")
    with pytest.raises(ConfigError, match=r"SequenceRef\.kind"):
        SequenceRef(dataset="clips", split="cam", name="door", seq_dir="/d", kind="stream")
    with pytest.raises(ConfigError, match=r"SequenceRef\.split: required"):
        SequenceRef(dataset="clips", split="", name="door", seq_dir="/d")


def test_job_model_stores_each_value_once_and_keys_as_the_flat_record_did() -> None:
    m = _model()
    assert (m.input_size, m.conf_thres, m.settings.tracker_preset) == ((320, 256), 0.5, "default")
    # the flat record's key fields, unchanged: caches computed before ModelRef still hit
    assert m.key_fields() == {"variant": "cstrack-n", "input_size": [320, 256], "path": "eager", "conf_thres": 0.5,
                              "nms_thres": 0.6, "frame_rate": None}
    assert _model(device="cuda:1").key_fields()["device"] == "cuda:1"  # off the CPU the device counts
    with pytest.raises(ConfigError, match=r"input_size"):
        _model(input_size=(320,))
    with pytest.raises(ConfigError, match=r"nms_thres"):
        _model(nms_thres=1.5)
    with pytest.raises(ConfigError, match=r"JobModel\.ref: path and device must be resolved"):
        JobModel(ModelRef("cstrack-n", "coco"), InferenceSettings())


def test_track_job_checks_mode_threads_and_the_cache_root() -> None:
    with pytest.raises(ConfigError, match=r"TrackJob\.mode"):
        TrackJob(mode="live", uses_model=True, model=_model())
    with pytest.raises(ConfigError, match=r"TrackJob\.prefetch"):
        TrackJob(mode="private", uses_model=True, model=_model(), prefetch=-1)
    with pytest.raises(ConfigError, match=r"TrackJob\.torch_threads"):
        TrackJob(mode="private", uses_model=True, model=_model(), torch_threads=0)
    with pytest.raises(ConfigError, match=r"TrackJob\.results_root"):
        TrackJob(mode="cached", uses_model=True, model=_model())


def test_records_pickle_as_dask_sends_them() -> None:
    job = TrackJob(mode="private", uses_model=True, model=_model(), results_root="/r")
    seq = SequenceRef(dataset="synth", split="train", name="SYNTH-01", seq_dir="/d/SYNTH-01", frames=40)
    out = SequenceOutcome(seq, "tracked", _record())
    assert pickle.loads(pickle.dumps((job, seq, out))) == (job, seq, out)


def test_track_record_json_is_the_timing_file(tmp_path: Path) -> None:
    rec = _record(ms={"forward": 12.5, "associate": 0.4}, settings={"input_size": [320, 256]}, pid=7)
    path = atomic_write_json(tmp_path / "SYNTH-01.timing.json", rec.to_json())
    data = json.loads(path.read_text())
    assert data["ms"] == {"forward": 12.5, "associate": 0.4} and data["pid"] == 7 and data["worker"] == "w1"
    assert set(data) == {
        "dataset", "split", "sequence", "mode", "kind", "frame_rate", "settings", "frames", "fps", "ms",
        "num_tracks", "num_boxes", "result_path", "result_sha256", "torch_threads", "prefetch", "setup_s",
        "first_frame_unix", "wall_s", "started", "finished", "worker", "worker_address", "host", "pid", "device",
        "device_name",
    }
    assert TrackRecord.from_json(data) == rec
    assert rec.with_result("/elsewhere/SYNTH-01.txt").result_path == "/elsewhere/SYNTH-01.txt"
    with pytest.raises(ConfigError, match="missing result_sha256"):
        TrackRecord.from_json({**data, "result_sha256": None})


def test_an_outcome_has_a_record_exactly_when_it_did_not_fail() -> None:
    seq = SequenceRef(dataset="synth", split="train", name="SYNTH-01", seq_dir="/d/SYNTH-01")
    assert SequenceOutcome(seq, "failed", error="DatasetError: bad image").record is None
    with pytest.raises(ConfigError, match="a cached sequence needs its record"):
        SequenceOutcome(seq, "cached")
    with pytest.raises(ConfigError, match="a failed sequence has no record"):
        SequenceOutcome(seq, "failed", _record())
    with pytest.raises(ConfigError, match=r"SequenceOutcome\.status"):
        SequenceOutcome(seq, "skipped", _record())
