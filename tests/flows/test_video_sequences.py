"""track-all on a dataset of video files (with and without gt), and checkpoint settings in its jobs:
selection, job settings, the tracking task on a video, cache keys and the catalogue of clips
without ground truth.  The pieces run in-process (the flow's services are tested in test_track_all_e2e)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import cv2
import pytest

import catalog
from catalog.ingest import RunInfo
from cstrack.data.mot import SeqInfo, read_results, write_seqinfo
from cstrack.paths import REPO_ROOT
from flows.dispatch import job_for
from flows.params import DatasetSelection, TrackAllParams
from flows.recording import catalog_config
from tasks import track as track_module
from tasks.cachekeys import track_cache_key
from tasks.catalog import record_tracking_task
from tasks.data import find_selection
from tasks.records import JobModel
from tests.fake_detector import FakeDetector, write_sequence

# a checkpoint whose record carries its own settings (512x384, conf 0.5, 7 fps)
PETS09_WEIGHTS = str(REPO_ROOT / "weights" / "cstrack-n_pets09.pt")


def _avi(path: Path, seq: Path, fps: float) -> Path:
    images = [cv2.imread(str(p)) for p in sorted((seq / "img1").glob("*.png"))]
    h, w = images[0].shape[:2]
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    for img in images:
        vw.write(img)
    vw.release()
    return path


@pytest.fixture
def clips(tmp_path: Path) -> Path:
    """``data/clips/images/cam/``: ``door.avi`` (no gt), ``hall.avi`` + ``hall/`` (gt and seqinfo,
    no images) and an ordinary image sequence ``SYN-01``."""
    split = tmp_path / "data" / "clips" / "images" / "cam"
    src = write_sequence(tmp_path / "src", frames=15)
    split.mkdir(parents=True)
    _avi(split / "door.avi", src, 12.0)
    _avi(split / "hall.avi", src, 15.0)
    (split / "hall" / "gt").mkdir(parents=True)
    shutil.copy(src / "gt" / "gt.txt", split / "hall" / "gt" / "gt.txt")
    write_seqinfo(split / "hall", SeqInfo("hall", 15.0, 15, 320, 200, "img1", ".png"))
    shutil.copytree(src, split / "SYN-01")
    return tmp_path / "data"


def test_selection_finds_video_files_beside_image_sequences(clips: Path) -> None:
    seqs = {s.name: s for s in find_selection(clips, DatasetSelection(name="clips"))}
    assert sorted(seqs) == ["SYN-01", "door", "hall"]
    door, hall, syn = seqs["door"], seqs["hall"], seqs["SYN-01"]
    assert (door.kind, door.frames, door.fps, door.width, door.height) == ("video", 15, 12.0, 320, 200)
    assert door.video is not None and door.video.endswith("door.avi") and not door.has_gt
    assert (door.dataset, door.split, door.gt_root) == ("clips", "cam", str(clips / "clips" / "images" / "cam"))
    assert hall.has_gt and hall.seq_dir.endswith("cam/hall") and hall.fps == 15.0
    assert syn.kind == "images" and syn.has_gt and syn.video is None


def test_jobs_and_catalog_config_carry_the_checkpoint_settings() -> None:
    w = PETS09_WEIGHTS
    p = TrackAllParams(datasets=[{"name": "clips"}], model={"weights": w})
    job = job_for(p, p.datasets[0])
    assert job.model == JobModel.of(variant="cstrack-n", weights=w, input_size=(512, 384), path="onnx",
                                    conf_thres=0.5, nms_thres=0.6, frame_rate=7.0)
    assert job.tracker_preset == "default" and job.settings is not None and job.settings.input_size == (512, 384)
    over = TrackAllParams(datasets=[{"name": "clips"}], model={"weights": w, "input_size": [640, 384],
                                                                "conf_thres": 0.4, "path": "eager"},
                          tracker_preset="mot17")
    cfg = catalog_config(over, over.datasets[0])
    assert cfg["model"]["input_size"] == [640, 384] and cfg["model"]["conf_thres"] == 0.4
    assert cfg["model"]["path"] == "eager" and cfg["tracker"]["preset"] == "mot17"
    assert cfg["inference"] == {"input_size": [640, 384], "conf_thres": 0.4, "nms_thres": 0.6,
                                "tracker_preset": "mot17", "frame_rate": 7.0}
    coco = TrackAllParams(datasets=[{"name": "clips"}], model={"weights": "coco"})  # no record: the spec's values
    assert job_for(coco, coco.datasets[0]).model.input_size == (1088, 608)


def test_tracking_task_on_a_video_and_its_catalogue_without_gt(clips: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(track_module, "detector_for", lambda model: FakeDetector())
    monkeypatch.setattr(track_module._Progress, "__call__", lambda self, n: None)  # no flow run to log to
    seq = next(s for s in find_selection(clips, DatasetSelection(name="clips")) if s.name == "door")
    p = TrackAllParams(datasets=[{"name": "clips"}], model={"weights": PETS09_WEIGHTS})
    job = job_for(p, p.datasets[0])
    out = tmp_path / "results" / "clips" / "cam"
    rec = track_module.track_sequence_task.fn(seq, str(out), job)
    assert (rec.sequence, rec.kind, rec.frames, rec.frame_rate) == ("door", "video", 15, 12.0)
    assert rec.settings is not None and rec.settings["input_size"] == [512, 384]
    assert set(read_results(out / "door.txt").id) == {1, 2}
    timing = json.loads((out / "door.timing.json").read_text())
    assert timing == rec.to_json() and timing["frames"] == 15 and timing["settings"]["input_size"] == [512, 384]

    key = track_cache_key(None, {"seq": seq, "job": job})
    assert key == track_cache_key(None, {"seq": seq, "job": job})
    video = Path(str(seq.video))
    video.write_bytes(video.read_bytes()[:-10])  # changed bytes: another key
    assert track_cache_key(None, {"seq": seq, "job": job}) != key

    run = RunInfo(run_id="cstrack-n-clips-cam-1", dataset="clips", tracker="cstrack-n", split="cam",
                  config=catalog_config(p, p.datasets[0]), started_at=dt.datetime.fromisoformat(rec.started),
                  ended_at=dt.datetime.fromisoformat(rec.finished))
    res = record_tracking_task.fn(str(out), ["door"], "clips/cam", str(tmp_path / "cat"), run, {"door": 12.0})
    assert res["counts"] == {"sequence_stats": 1, "tracks": 30, "runs": 1}
    stats = catalog.load("sequence_stats", root=tmp_path / "cat").iloc[0]
    assert (stats.frames, stats.tracks, stats.boxes, stats.source_fps, stats.track_len_max) == (15, 2, 30, 12.0, 15)
    assert stats.fps > 0


def test_a_video_in_gt_mode_is_refused_naming_it(clips: Path, tmp_path: Path) -> None:
    seq = next(s for s in find_selection(clips, DatasetSelection(name="clips")) if s.name == "door")
    p = TrackAllParams(datasets=[{"name": "clips", "mode": "gt"}])
    job = job_for(p, p.datasets[0])
    from cstrack.errors import ConfigError

    with pytest.raises(ConfigError, match=r"door\.avi: a video sequence is tracked in private mode"):
        track_module.track_sequence_task.fn(seq, str(tmp_path), job)
