"""Synthetic MOT generator: determinism, format, crossings/occlusions, visibility semantics."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from cstrack.boxes import iou_matrix, tlwh_to_xyxy
from cstrack.data.mot import Sequence
from cstrack.data.synthetic import SynthConfig, generate, render_sequence
from cstrack.errors import ConfigError


def _tree_digest(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_identical_bytes_different_seed_differs(tmp_path: Path) -> None:
    cfg = SynthConfig(sequences=2, length=12, width=320, height=240, objects=5, seed=7)
    generate(tmp_path / "a", cfg)
    generate(tmp_path / "b", cfg)
    a, b = _tree_digest(tmp_path / "a"), _tree_digest(tmp_path / "b")
    assert len(a) == 2 * (12 + 3) and a == b
    generate(tmp_path / "c", SynthConfig(sequences=2, length=12, width=320, height=240, objects=5, seed=8))
    c = _tree_digest(tmp_path / "c")
    assert a.keys() == c.keys()
    assert a["SYNTH-01/gt/gt.txt"] != c["SYNTH-01/gt/gt.txt"]
    assert a["SYNTH-01/img1/000001.jpg"] != c["SYNTH-01/img1/000001.jpg"]
    assert a["SYNTH-01/gt/gt.txt"] != a["SYNTH-02/gt/gt.txt"]  # sequences differ from each other too


def test_any_resolution_and_length(tmp_path: Path) -> None:
    cfg = SynthConfig(sequences=1, length=3, width=200, height=120, objects=2, frame_rate=12.5, prefix="tiny")
    (seq_dir,) = generate(tmp_path, cfg)
    seq = Sequence.open(seq_dir)
    assert (seq.info.name, seq.info.seq_length, seq.info.im_width, seq.info.im_height, seq.info.frame_rate) == (
        "tiny-01", 3, 200, 120, 12.5)
    assert cv2.imread(str(seq.image_path(3))).shape == (120, 200, 3)
    gt = seq.gt()  # parses and validates (frames within 1..3, unique ids per frame)
    assert set(gt.cls) == {1} and set(gt.conf) == {1.0}
    assert ((gt.vis >= 0) & (gt.vis <= 1)).all()
    seq.det()


def test_crossings_and_occlusions_with_consistent_visibility() -> None:
    cfg = SynthConfig(sequences=1, length=120, width=480, height=320, objects=8, seed=1)
    frames, gt = render_sequence(cfg, 0)
    assert len(frames) == 120 and frames[0].shape == (320, 480, 3)
    assert (gt[:, 8] < 1).any() and (gt[:, 8] < 0.5).any()  # occlusions happen
    # crossings: some pair of objects swaps its left-right order during the sequence
    cx = {}
    for f, i, x, _, w, *_ in gt:
        cx.setdefault(int(i), {})[int(f)] = x + w / 2
    crossed = any(
        np.sign(cx[a][f0] - cx[b][f0]) != np.sign(cx[a][f1] - cx[b][f1])
        for a in cx for b in cx if a < b
        for f0, f1 in [(min(cx[a].keys() & cx[b].keys()), max(cx[a].keys() & cx[b].keys()))]
    )
    assert crossed
    W, H = cfg.width, cfg.height
    for f in range(1, 121):
        rows = gt[gt[:, 0] == f]
        xyxy = tlwh_to_xyxy(rows[:, 2:6])
        inside = (xyxy[:, 0] >= 0) & (xyxy[:, 1] >= 0) & (xyxy[:, 2] <= W) & (xyxy[:, 3] <= H)
        bottom = xyxy[:, 3]
        iou = iou_matrix(xyxy, xyxy)
        for k in range(len(rows)):
            in_front = [j for j in range(len(rows)) if j != k and iou[k, j] > 0 and bottom[j] >= bottom[k]]
            if inside[k] and not in_front:
                assert rows[k, 8] == 1.0  # nothing can hide it
            if rows[k, 8] < 1.0:
                assert in_front or not inside[k]  # hidden by a figure in front or cut by the border


def test_appearance_is_distinct_per_object() -> None:
    cfg = SynthConfig(sequences=1, length=1, width=640, height=480, objects=6, seed=2)
    frames, gt = render_sequence(cfg, 0)
    means = []
    for _, _, x, y, w, h, _, _, vis in gt:
        if vis == 1.0:
            crop = frames[0][int(y) + int(h) // 4 : int(y) + int(h) // 2, int(x) : int(x + w)]
            means.append(crop.reshape(-1, 3).mean(0))
    assert len(means) >= 3
    d = np.linalg.norm(np.asarray(means)[:, None] - np.asarray(means)[None], axis=-1)
    assert d[np.triu_indices(len(means), 1)].min() > 10  # torso colours differ between objects


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"sequences": 0}, "sequences"), ({"width": 10}, "width"), ({"objects": 300}, "objects"),
     ({"frame_rate": 0}, "frame_rate"), ({"min_height": 0.5, "max_height": 0.2}, "min_height"),
     ({"prefix": "a/b"}, "prefix")],
)
def test_config_validation(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        SynthConfig(**kwargs)
