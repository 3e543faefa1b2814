"""cstrack.run.detcache: cached network outputs replay to the live run's tracks, bit for bit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cstrack.errors import ConfigError, DatasetError
from cstrack.model.ref import weights_identity
from cstrack.run.detcache import (
    CacheSpec,
    cache_path,
    ensure_cache,
    read_cache,
    replay,
    track_cached,
    write_cache,
)
from cstrack.tracker import preset

WEIGHTS = Path(__file__).resolve().parents[2] / "weights" / "cstrack-n_pets09.pt"
SIZE = (320, 256)  # small: the forward is most of this file's time


def _detector(conf: float) -> Any:
    import torch

    from cstrack.model.detector import build_detector
    from cstrack.model.postprocess import PostprocessConfig

    torch.manual_seed(0)
    return build_detector("cstrack-n", WEIGHTS, SIZE, post=PostprocessConfig(conf_thres=conf))


@pytest.fixture(scope="module")
def spec() -> CacheSpec:
    return CacheSpec(weights_identity(WEIGHTS), "cstrack-n", SIZE, "eager", score_floor=0.1)


@pytest.fixture(scope="module")
def cached(head8: Path, tmp_path_factory: pytest.TempPathFactory, spec: CacheSpec) -> Path:
    root = tmp_path_factory.mktemp("results")
    return ensure_cache(head8, root, spec, lambda: _detector(spec.score_floor))


@pytest.mark.parametrize("conf", [0.3])  # 0.4 and 0.45: tests/cli, tests/flows
def test_replay_equals_a_live_run(head8: Path, tmp_path: Path, cached: Path, conf: float) -> None:
    from cstrack.run.frames import read_frames
    from cstrack.run.sequence import track_sequence

    cfg = preset("default", det_thresh=conf)
    live = track_sequence(head8, tmp_path / "live", "private", cfg, _detector(conf), frame_reader=read_frames)
    run = track_cached(head8, tmp_path / "replay", cached, cfg, conf)
    assert run.mode == "cached" and run.frames == 8 and live.num_boxes > 10
    assert run.result_path.read_bytes() == live.result_path.read_bytes()
    # the floor keeps more boxes than the threshold: the filter is doing something
    det = read_cache(cached)
    assert (det.scores <= conf).any() and (det.scores > 0.1).all()


def test_cache_file_round_trip_and_key(head8: Path, tmp_path: Path, spec: CacheSpec, cached: Path) -> None:
    assert cached == cache_path(cached.parent.parent, spec, head8)
    assert cached.parent.name == "detcache" and cached.name.startswith("PETS09-S2L1-head8_")
    other = CacheSpec(spec.weights_sha256, spec.variant, (640, 384), spec.path, spec.score_floor)
    assert cache_path(tmp_path, other, head8).name != cached.name  # the input size is part of the key
    det = read_cache(cached)
    path = tmp_path / "detcache" / cached.name
    write_cache(path, det)
    back = read_cache(path)
    for name in ("frame", "xyxy", "scores", "embeddings"):
        assert np.array_equal(getattr(back, name), getattr(det, name)), name
    assert back.seq_length == 8 and back.emb_dim == 128 and back.frame_rate == 7.0
    assert back.meta["spec"]["input_size"] == list(SIZE)
    # a damaged file is recomputed by ensure_cache, never trusted
    path.write_bytes(b"garbage")
    with pytest.raises(DatasetError):
        read_cache(path)
    assert ensure_cache(head8, tmp_path, spec, lambda: _detector(0.1)) == path  # computed again
    assert np.array_equal(read_cache(path).scores, det.scores)
    with pytest.raises(ConfigError, match="score floor"):
        next(back.frames(0.05))


def test_window_replay_renumbers_from_one(cached: Path) -> None:
    det = read_cache(cached)
    full = replay(det, preset("default"), 0.5)
    part = replay(det, preset("default"), 0.5, first=5, last=8)
    assert part.frames == 4 and full.frames == 8
    assert part.table.frame.min() == 1 and part.table.frame.max() <= 4
    # a window is its own sequence: tracks start again at id 1
    assert part.table.id.min() == 1
