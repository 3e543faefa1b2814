"""``cstrack bench-speed``: the JSON record of the timed pipeline (no timing assertions)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cstrack.cli import app
from cstrack.errors import DatasetError
from cstrack.infer.bench import STAGES, FakeDetections, list_images

KEYS = {
    "variant", "weights", "size", "path", "threads", "prefetch", "fake_dets", "warmup", "build_s", "images",
    "frames", "fps", "ms_per_frame", "ms", "post_track_share", "detections_per_frame", "tracks_per_frame",
    "forward", "settings", "workers", "cpu_ms_per_frame", "device",
}


@pytest.mark.parametrize("path", ["eager", "fast", "onnx"])
def test_bench_speed_json(path: str, head8: Path) -> None:
    args = ["bench-speed", "--variant", "cstrack-n", "--size", "256x160", "--images", str(head8 / "img1"),
            "--frames", "10", "--path", path, "--threads", "1", "--fake-dets", "5", "--forward-iters", "3", "--json",
            "--workers", "2"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    rec = json.loads(res.stdout[res.stdout.index("{"):])
    assert set(rec) == KEYS
    assert rec["path"] == path and rec["variant"] == "cstrack-n" and rec["size"] == [256, 160]
    # no --weights: the shipped checkpoint and its settings, --size overriding its input size
    assert rec["settings"]["input_size"] == [256, 160] and rec["settings"]["frame_rate"] == 7.0
    assert rec["settings"]["weights"].endswith("cstrack-n_cpu.pt")
    assert rec["frames"] == 10 and rec["threads"] == 1 and rec["prefetch"] == 2  # 10 frames from 8 images: cycled
    assert rec["workers"] == (2 if path == "onnx" else 1)  # frame workers: the ONNX Runtime paths only
    assert set(rec["ms"]) == set(STAGES) and all(v > 0 for v in rec["ms"].values())
    assert rec["fps"] == pytest.approx(1000.0 / rec["ms_per_frame"])
    assert 0 < rec["cpu_ms_per_frame"] <= 1.05 * (os.cpu_count() or 1) * rec["ms_per_frame"]  # no more than the cores
    assert 0 < rec["post_track_share"] < 1
    assert rec["detections_per_frame"] >= 5  # the fake detections reach the tracker
    assert rec["tracks_per_frame"] > 0
    fwd = rec["forward"]
    assert fwd["iters"] == 3 and 0 < fwd["ms_best"] <= fwd["ms_median"] and fwd["fps"] == pytest.approx(1000 / fwd["ms_median"])


def test_bench_speed_text_output_and_bad_folder(tmp_path: Path, head8: Path) -> None:
    res = CliRunner().invoke(app, ["bench-speed", "--variant", "cstrack-n", "--size", "256x160", "--images",
                                   str(head8 / "img1"), "--frames", "2", "--prefetch", "0", "--conf", "0.3"])
    assert res.exit_code == 0, res.output
    assert "input 256x160, conf 0.3, nms 0.6" in res.stderr  # the checkpoint's settings, overridden
    assert "fps" in res.stdout and "path=onnx" in res.stdout and "post-processing + tracker" in res.stdout  # auto
    res = CliRunner().invoke(app, ["bench-speed", "--variant", "cstrack-n", "--size", "256x160", "--images",
                                   str(tmp_path), "--frames", "2"])
    assert res.exit_code == 2 and "no images" in res.output


def test_list_images_sorted_and_missing(tmp_path: Path, head8: Path) -> None:
    files = list_images(head8 / "img1")
    assert [f.name for f in files] == [f"{i:06d}.jpg" for i in range(1, 9)]
    with pytest.raises(DatasetError, match="not a folder"):
        list_images(tmp_path / "nope")


def test_fake_detections_drift_and_keep_identity_embeddings() -> None:
    fake = FakeDetections(20, 8, (768, 576))
    a, b = fake.boxes(1), fake.boxes(2)
    assert len(a) == 20 and a.embeddings is not None and b.embeddings is not None
    np.testing.assert_allclose(b.xyxy - a.xyxy, [[1, 0, 1, 0]] * 20)  # one pixel to the right
    np.testing.assert_array_equal(a.embeddings, b.embeddings)
    np.testing.assert_allclose(np.linalg.norm(a.embeddings, axis=1), 1.0, rtol=1e-6)
    assert len(FakeDetections(0, 8, (768, 576)).boxes(1)) == 0
