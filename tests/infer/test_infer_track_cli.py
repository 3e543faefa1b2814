"""``cstrack track --path``: the optimised paths are drop-ins for the eager model."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from cstrack.cli import app
from cstrack.data.mot import read_results


def test_track_cli_runs_each_optimised_path_with_prefetch(head8: Path, tmp_path: Path) -> None:
    for path in ("fast", "onnx"):
        out = tmp_path / path
        res = CliRunner().invoke(app, ["track", str(head8), "--out", str(out), "--variant", "cstrack-n", "--weights",
                                       "coco", "--size", "256x160", "--path", path, "--prefetch", "2", "--no-progress"])
        assert res.exit_code == 0, res.output
        table = read_results(out / "PETS09-S2L1-head8.txt")
        assert len(table) > 0 and set(table.frame) <= set(range(1, 9))
        timing = json.loads((out / "timing.json").read_text())["PETS09-S2L1-head8"]
        assert timing["frames"] == 8 and timing["ms"]["forward"] > 0 and timing["ms"]["read"] > 0


def test_track_cli_rejects_unknown_path(head8: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["track", str(head8), "--out", str(tmp_path), "--variant", "cstrack-n", "--size",
                                   "256x160", "--path", "gpu", "--no-progress"])
    assert res.exit_code == 2 and "--path" in res.output
