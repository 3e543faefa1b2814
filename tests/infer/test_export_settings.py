"""``cstrack export`` with no model options: the shipped checkpoint at its own input size, and the
file records the settings it is meant to run with."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
from typer.testing import CliRunner

from cstrack.cli import app
from cstrack.infer.onnx_export import META_KEY


def test_export_defaults_to_the_shipped_checkpoint_and_its_settings(tmp_path: Path) -> None:
    out = tmp_path / "n.onnx"
    res = CliRunner().invoke(app, ["export", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "cstrack-n 1088x608 onnx" in res.stdout and "input 1088x608, conf 0.4" in res.stderr
    meta = json.loads({p.key: p.value for p in onnx.load(str(out)).metadata_props}[META_KEY])
    assert meta["input_size"] == [1088, 608] and meta["provenance"]["weights"].endswith("cstrack-n_cpu.pt")
    assert meta["provenance"]["inference"] == {"input_size": [1088, 608], "conf_thres": 0.4, "nms_thres": 0.6,
                                               "tracker_preset": "default", "frame_rate": 7.0}
