"""bench/pipeline_scale.py at its smallest setting (3 sequences of 4 frames, gt mode, shards of 8
frames) through the real flow on real services: every figure of a run is written, the shards bound
the task runs, and the per-sequence scores combined on the flow side give the evaluation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_smallest_setting_writes_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "scale.json"
    argv = [sys.executable, str(REPO / "bench" / "pipeline_scale.py"), "--counts", "3", "--frames", "4",
            "--params", '{"shard_frames": 8}', "--label", "smoke", "--data", str(tmp_path / "data"), "--out", str(out)]
    done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    res = json.loads(out.read_text())["measurements"]["smoke"]
    assert res["machine"]["cores"] >= 1 and len(res["machine"]["load_average"]) == 3
    assert res["startup_s"]["prefect_server"] > 0
    (run,) = res["runs"]
    assert run["sequences"] == 3 and run["tracked"] == 3 and run["failed"] == [] and run["frames"] == 12
    # 3 sequences of 4 frames in shards of >= 8 frames: 2 tracking task runs, not 3
    assert run["task_runs"]["by_name"]["track"] == 2
    assert run["evaluation"]["sequences_scored"] == 3 and run["evaluation"]["workers"]
    assert run["wall_s"] > run["cold_start_s"] > 0 and run["overhead_ms_per_sequence"] is not None
    assert run["api_requests"]["flow_process"] > 0
    assert set(run["peak_rss_mb"]) == {"flow_process", "scheduler", "w1", "w2"}
    assert all(v > 50 for v in run["peak_rss_mb"].values())
    assert run["prefect_db_mb"] > 0 and run["catalog_write_s"] > 0
    (m,) = run["metrics"]  # gt boxes tracked in gt mode: every box found
    assert m["combined"].split()[5] == "100.000"  # MOTA
