"""``cstrack track``: result files, timing.json, detector construction, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cstrack.cli import app
from cstrack.data.mot import read_results
from cstrack.fsutil import sha256_file
from cstrack.model.postprocess import PostprocessConfig
from cstrack.provenance import cpu_model
from tests.clear_metrics import score_files
from tests.fake_detector import FakeDetector, write_sequence

runner = CliRunner()


@pytest.fixture(scope="module")
def syn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sequence(tmp_path_factory.mktemp("syn"))


def test_gt_mode_two_sequences(data_dir: Path, tmp_path: Path) -> None:
    pets = data_dir / "mot15" / "PETS09-S2L1"
    head8 = data_dir / "mot15" / "PETS09-S2L1-head8"
    out = tmp_path / "out"
    res = runner.invoke(app, ["track", str(pets), str(head8), "--detections", "gt", "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert (out / "PETS09-S2L1.txt").is_file() and (out / "PETS09-S2L1-head8.txt").is_file()
    timing = json.loads((out / "timing.json").read_text())
    assert set(timing) == {"PETS09-S2L1", "PETS09-S2L1-head8"}
    rec = timing["PETS09-S2L1"]
    assert rec["frames"] == 795 and rec["fps"] > 0
    assert set(rec["ms"]) == {"read", "preprocess", "forward", "postprocess", "associate"}
    assert timing["PETS09-S2L1-head8"]["frames"] == 8
    assert score_files(pets / "gt" / "gt.txt", out / "PETS09-S2L1.txt")["mota"] >= 0.95
    assert "PETS09-S2L1: 795 frames" in res.stdout


def test_timing_json_is_merged(syn: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "timing.json").write_text(json.dumps({"OTHER-01": {"frames": 3, "fps": 1.0, "ms": {}}}))
    res = runner.invoke(app, ["track", str(syn), "--detections", "public", "--out", str(out), "--preset", "mot17"])
    assert res.exit_code == 0, res.output
    timing = json.loads((out / "timing.json").read_text())
    assert set(timing) == {"OTHER-01", "SYN-01"} and timing["SYN-01"]["frames"] == 50
    assert sorted(p.name for p in out.iterdir()) == ["SYN-01.txt", "timing.json"]


def test_unreadable_timing_json_is_replaced(syn: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "timing.json").write_text("{not json")
    res = runner.invoke(app, ["track", str(syn), "--detections", "gt", "--out", str(out), "--no-progress"])
    assert res.exit_code == 0
    assert set(json.loads((out / "timing.json").read_text())) == {"SYN-01"}


def test_private_mode_builds_the_detector_once(syn: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import cstrack.model.detector as detector_module
    from cstrack.paths import shipped_weights

    calls: list[tuple] = []

    def fake_build(variant: str, weights: object, input_size: tuple[int, int], path: str = "eager",
                   post: PostprocessConfig | None = None, device: str = "cpu") -> FakeDetector:
        assert device == "cpu"  # --device auto on this machine without CUDA
        calls.append((variant, weights, input_size, path, post))
        return FakeDetector(input_size)

    monkeypatch.setattr(detector_module, "build_detector", fake_build)
    other = write_sequence(tmp_path, "SYN-02", frames=10)
    out = tmp_path / "out"
    res = runner.invoke(app, ["track", str(syn), str(other), "--out", str(out), "--size", "320x192", "--no-progress"])
    assert res.exit_code == 0, res.output
    # no --weights: the shipped CPU checkpoint, its settings (conf / nms) with --size overriding, path auto
    assert calls == [("cstrack-n", shipped_weights(), (320, 192), "onnx", PostprocessConfig(0.4, 0.6))]
    assert "settings: cstrack-n" in res.stderr and "input 320x192, conf 0.4, nms 0.6" in res.stderr
    assert read_results(out / "SYN-01.txt").id.max() == 2
    timing = json.loads((out / "timing.json").read_text())
    assert timing["SYN-02"]["ms"]["forward"] > 0
    assert timing["SYN-01"]["settings"] == {
        "weights": str(shipped_weights()), "weights_sha256": sha256_file(shipped_weights()), "variant": "cstrack-n",
        "path": "onnx", "device": "cpu", "device_name": cpu_model(), "input_size": [320, 192], "conf_thres": 0.4,
        "nms_thres": 0.6, "tracker_preset": "default", "frame_rate": 7.0,
    }

    calls.clear()
    res = runner.invoke(app, ["track", str(syn), "--out", str(out), "--detections", "public", "--variant", "cstrack-n",
                              "--weights", "coco", "--conf", "0.3", "--path", "eager"])
    assert res.exit_code == 0, res.output
    assert calls == [("cstrack-n", "coco", (1088, 608), "eager", PostprocessConfig(0.3, 0.6))]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--detections", "oracle"], "--detections"),
        (["--preset", "nope"], "unknown tracker preset"),
        (["--size", "10by10"], "--size"),
    ],
)
def test_bad_options_exit_2(syn: Path, tmp_path: Path, args: list[str], message: str) -> None:
    res = runner.invoke(app, ["track", str(syn), "--out", str(tmp_path / "o"), "--detections", "gt", *args])
    assert res.exit_code == 2
    assert message in res.output
    assert not (tmp_path / "o").exists()


def test_missing_or_duplicate_sequences_fail_before_work(syn: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    res = runner.invoke(app, ["track", str(syn), str(tmp_path / "NOPE"), "--detections", "gt", "--out", str(out)])
    assert res.exit_code == 2 and "NOPE: source not found" in res.output
    twin = write_sequence(tmp_path / "copy", "SYN-01", frames=2)
    res = runner.invoke(app, ["track", str(syn), str(twin), "--detections", "gt", "--out", str(out)])
    assert res.exit_code == 2 and "two sources share a name" in res.output
    assert not out.exists()


@pytest.mark.slow
def test_real_cstrack_n_on_pets_head8(head8: Path, tmp_path: Path) -> None:
    """The eager model path end to end: 8 real frames, random init (warns), then COCO weights."""
    out = tmp_path / "out"
    res = runner.invoke(app, ["track", str(head8), "--variant", "cstrack-n", "--weights", "random", "--size",
                              "320x192", "--path", "eager", "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "random weights" in res.stderr
    rec = json.loads((out / "timing.json").read_text())["PETS09-S2L1-head8"]
    assert rec["frames"] == 8
    assert all(rec["ms"][k] > 0 for k in ("read", "preprocess", "forward", "postprocess", "associate"))
    assert (out / "PETS09-S2L1-head8.txt").is_file()

    res = runner.invoke(app, ["track", str(head8), "--variant", "cstrack-n", "--weights", "coco",
                              "--size", "640x384", "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    table = read_results(out / "PETS09-S2L1-head8.txt", 8)
    assert len(table) > 0 and table.frame.min() == 1  # COCO person boxes tracked from frame 1
