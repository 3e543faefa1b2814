"""`cstrack model-info`."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from cstrack.cli import app


def test_model_info_json() -> None:
    res = CliRunner().invoke(app, ["model-info", "cstrack-l", "--size", "1088x608", "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.stdout)
    assert info["params"] == 78_863_077
    assert abs(info["gflops"] - 260.15) < 0.01
    assert info["outputs"]["emb"] == [1, 76, 136, 512]
    assert info["outputs"]["decoded"] == [1, 40698, 6]  # spec §6: 3 * (10336 + 2584 + 646)


def test_model_info_text_and_bad_size() -> None:
    res = CliRunner().invoke(app, ["model-info", "cstrack-n", "--size", "576x320"])
    assert res.exit_code == 0
    assert "3,603,821" in res.stdout and "GFLOPs       2.91" in res.stdout
    bad = CliRunner().invoke(app, ["model-info", "cstrack-n", "--size", "1000x600"])
    assert bad.exit_code == 2
    assert "1000x600" in bad.stderr
