"""track-all's cached detection mode: the tracking task replays the cache and gives the private
mode's result file."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.params import TrackAllParams
from tasks import track as track_module
from tasks.records import JobModel, SequenceRef, TrackJob, TrackMode
from tasks.track import track_sequence_task

WEIGHTS = str(Path(__file__).resolve().parents[2] / "weights" / "cstrack-n_pets09.pt")


def _job(mode: TrackMode, results: Path) -> TrackJob:
    model = JobModel.of(variant="cstrack-n", weights=WEIGHTS, input_size=(320, 256), path="eager", conf_thres=0.45,
                        nms_thres=0.6)
    return TrackJob(mode=mode, uses_model=True, model=model, prefetch=0,
                    results_root=str(results))


def test_cached_mode_task_equals_private(head8: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(track_module._Progress, "__call__", lambda self, n: None)  # logs need a flow run
    seq = SequenceRef(dataset="pets09", split="train", name=head8.name, seq_dir=str(head8), frames=8)
    live = track_sequence_task.fn(seq, str(tmp_path / "live"), _job("private", tmp_path))
    rec = track_sequence_task.fn(seq, str(tmp_path / "cached"), _job("cached", tmp_path))
    assert rec.mode == "cached" and rec.frames == 8
    assert rec.result_sha256 == live.result_sha256 and live.num_boxes > 10
    assert len(list((tmp_path / "detcache").glob("*.parquet"))) == 1


def test_params_accept_cached_mode() -> None:
    p = TrackAllParams(datasets=[{"name": "pets09-s2l1", "mode": "cached"}])
    assert p.mode_of(p.datasets[0]) == "cached" and p.appearance_of(p.datasets[0]) and p.needs_model
