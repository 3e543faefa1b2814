"""catalog.ingest.ingest_tracking: a run without ground truth gets counts, track lengths and fps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import catalog
from catalog.ingest import RunInfo, ingest_tracking
from cstrack.data.mot import MotTable, write_results
from cstrack.provenance import Provenance

PROV = Provenance("abc123", False, {"numpy": "2.4.6"}, "3.11.7", "Linux", "Test CPU", 2, None)


def test_counts_track_lengths_and_fps_by_hand(tmp_path: Path) -> None:
    res = tmp_path / "results"
    # track 1 on frames 1-4, track 2 on frames 2-3, track 5 on frame 6: lengths 4, 2, 1
    rows = [(1, 1), (2, 1), (3, 1), (4, 1), (2, 2), (3, 2), (6, 5)]
    f = np.array([r[0] for r in rows], float)
    write_results(res / "clip.txt", MotTable(f, np.array([r[1] for r in rows], float), np.ones((7, 4)), np.ones(7)))
    # a record written before the frame-reading stage was renamed decode -> read
    (res / "clip.timing.json").write_text(json.dumps({"sequence": "clip", "frames": 10, "fps": 20.0,
                                                      "ms": {"forward": 30.0, "decode": 2.0}}))
    info = RunInfo(run_id="cstrack-n-clips-1", dataset="clips", tracker="cstrack-n", split="cam", config={"a": 1})
    counts = ingest_tracking(tmp_path / "cat", info, res, ["clip", "gone"], frame_rates={"clip": 25.0},
                             provenance=PROV)
    assert counts == {"sequence_stats": 2, "tracks": 7, "runs": 1}
    stats = catalog.load("sequence_stats", root=tmp_path / "cat").set_index("sequence")
    clip = stats.loc["clip"]
    assert (clip.frames, clip.tracks, clip.boxes, clip.track_len_max) == (10, 3, 7, 4)
    assert (clip.fps, clip.source_fps, clip.boxes_per_frame) == (20.0, 25.0, 0.7)
    assert (clip.track_len_mean, clip.track_len_median, clip.forward_ms) == (7 / 3, 2.0, 30.0)
    assert clip.read_ms == 2.0 and "decode_ms" not in stats.columns
    gone = stats.loc["gone"]  # no result file: no boxes, no frames known
    assert (gone.frames, gone.tracks, gone.boxes) == (0, 0, 0) and gone.track_len_mean != gone.track_len_mean
    run = catalog.load("runs", root=tmp_path / "cat").iloc[0]
    assert run.run_id == "cstrack-n-clips-1" and json.loads(run.config_json) == {"a": 1}
    assert len(catalog.load("tracks", root=tmp_path / "cat")) == 7
