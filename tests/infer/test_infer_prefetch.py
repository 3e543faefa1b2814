"""The bounded prefetch thread: order, boundedness, error propagation, early exit, and the runner's
prefetching frame reader on real frames; the same for the frame workers (ordered_map, forward_ahead)."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cstrack.data.mot import Sequence
from cstrack.detection import Detections, Prepared
from cstrack.errors import ConfigError, DatasetError
from cstrack.infer.prefetch import DEFAULT_NICE, Prefetcher, ordered_map, prefetch
from cstrack.run.frames import frame_workers, prefetched_frames, read_frames
from cstrack.run.sequence import track_sequence
from cstrack.tracker import preset
from tests.fake_detector import FakeDetector, write_sequence


def test_items_come_out_in_order_with_a_slow_consumer() -> None:
    got = []
    for item in prefetch(iter(range(50)), depth=3):
        if item % 7 == 0:
            time.sleep(0.002)
        got.append(item)
    assert got == list(range(50))


def test_producer_stays_at_most_depth_ahead() -> None:
    produced: list[int] = []

    def source() -> Iterator[int]:
        for i in range(20):
            produced.append(i)
            yield i

    with Prefetcher(source(), depth=2) as items:
        assert next(items) == 0
        time.sleep(0.2)  # let the producer run as far as it can
        # consumer holds 0; 2 queued; 1 more made and waiting to be queued
        assert len(produced) == 1 + 2 + 1
        assert list(items) == list(range(1, 20))


def test_error_reaches_the_consumer_after_the_good_items() -> None:
    def source() -> Iterator[int]:
        yield 1
        yield 2
        raise DatasetError("image missing or unreadable", Path("/data/img1/000003.jpg"))

    got = []
    with pytest.raises(DatasetError, match=r"000003\.jpg: image missing or unreadable"):
        for item in prefetch(source(), depth=4):
            got.append(item)
    assert got == [1, 2]


def test_leaving_early_stops_the_thread() -> None:
    def endless() -> Iterator[int]:
        i = 0
        while True:
            yield i
            i += 1

    before = threading.active_count()
    gen = prefetch(endless(), depth=2)
    assert [next(gen) for _ in range(5)] == [0, 1, 2, 3, 4]
    gen.close()  # what a for loop left by break / exception does
    assert threading.active_count() == before


def test_depth_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="depth"):
        Prefetcher(iter([]), depth=0)


def test_prefetched_reader_gives_the_same_frames_in_order(head8: Path) -> None:
    seq = Sequence.open(head8)
    det = FakeDetector()
    plain = [(fr.number, fr.prep.tensor) for fr in read_frames(seq, det)]  # type: ignore[union-attr]
    fetched = [(fr.number, fr.prep.tensor) for fr in prefetched_frames(2)(seq, det)]  # type: ignore[union-attr]
    assert [n for n, _ in fetched] == list(range(1, 9))
    assert all((a == b).all() for (_, a), (_, b) in zip(plain, fetched, strict=True))


def test_prefetched_reader_names_the_unreadable_frame(tmp_path: Path) -> None:
    root = write_sequence(tmp_path / "src")
    broken = tmp_path / root.name
    shutil.copytree(root, broken)
    bad = broken / "img1" / "000004.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(DatasetError, match=r"000004\.png: not a decodable image"):
        track_sequence(broken, tmp_path / "out", "private", preset("default"), FakeDetector(),
                       frame_reader=prefetched_frames(2))


def test_track_results_identical_with_and_without_prefetch(tmp_path: Path) -> None:
    root = write_sequence(tmp_path / "seq")
    a = track_sequence(root, tmp_path / "a", "private", preset("default"), FakeDetector(), frame_reader=read_frames)
    b = track_sequence(root, tmp_path / "b", "private", preset("default"), FakeDetector(),
                       frame_reader=prefetched_frames(2))
    assert a.frames == b.frames > 0
    assert a.result_path.read_bytes() == b.result_path.read_bytes()


@pytest.mark.skipif(not hasattr(os, "getpriority"), reason="per-thread nice values are a Linux feature")
def test_producer_thread_runs_niced_and_the_consumer_does_not() -> None:
    def source() -> Iterator[int]:
        yield os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert list(prefetch(source(), depth=1)) == [min(19, mine + DEFAULT_NICE)]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine
    assert list(Prefetcher(source(), depth=1, nice=0)) == [mine]


# --- frame workers: ordered_map and the runner's forward_ahead


def test_ordered_map_keeps_order_bounds_work_and_raises_in_place() -> None:
    started: list[int] = []

    def slow_square(i: int) -> int:
        started.append(i)
        time.sleep(0.004 if i % 3 == 0 else 0.0005)  # later items often finish first
        if i == 13:
            raise ValueError("item 13")
        return i * i

    got = []
    with pytest.raises(ValueError, match="item 13"):
        for value in ordered_map(slow_square, range(40), workers=3, ahead=2):
            assert len(started) <= len(got) + 1 + 3 + 2  # never more than workers + ahead beyond the consumer
            got.append(value)
    assert got == [i * i for i in range(13)]  # everything before the failing item, in order


def test_ordered_map_left_early_stops_its_threads() -> None:
    before = threading.active_count()
    gen = ordered_map(lambda i: i, iter(range(10_000)), workers=2)
    assert [next(gen) for _ in range(5)] == [0, 1, 2, 3, 4]
    gen.close()
    assert threading.active_count() == before


class ConcurrentFake(FakeDetector):
    """The fake detector with the frame workers' entry point (a copy per call: thread-safe).  Like
    the real detectors, post-processing and embeddings read only the forward's output (here the
    components and the image), since the frame workers keep just the letterbox geometry of ``prep``."""

    def prepare_and_forward(self, frame_bgr: np.ndarray) -> tuple[Prepared, Any, float, float]:
        prep = self.preprocess(frame_bgr)
        return prep, (FakeDetector.forward(self, prep), prep.tensor), 0.0, 0.0

    def forward(self, prep: Prepared) -> Any:
        return FakeDetector.forward(self, prep), prep.tensor

    def postprocess(self, out: Any, prep: Prepared) -> Detections:
        return FakeDetector.postprocess(self, out[0], prep)

    def embed_boxes(self, out: Any, prep: Prepared, xyxy: np.ndarray) -> np.ndarray:
        return FakeDetector.embed_boxes(self, out[0], Prepared(out[1], prep.meta), xyxy)


def test_frame_workers_track_like_the_sequential_loop(tmp_path: Path) -> None:
    root = write_sequence(tmp_path / "seq")
    a = track_sequence(root, tmp_path / "a", "private", preset("default"), FakeDetector(), frame_reader=read_frames)
    det = ConcurrentFake()
    b = track_sequence(root, tmp_path / "b", "private", preset("default"), det,
                       frame_reader=prefetched_frames(2, workers=3))
    assert frame_workers(det, 3) == 3 and frame_workers(FakeDetector(), 3) == 1
    assert det.forward_calls == a.frames == b.frames > 0
    assert a.result_path.read_bytes() == b.result_path.read_bytes()
    c = track_sequence(root, tmp_path / "c", "public", preset("default"), ConcurrentFake(),
                       frame_reader=prefetched_frames(2, workers=2))  # embeddings at the table's boxes
    d = track_sequence(root, tmp_path / "d", "public", preset("default"), FakeDetector(), frame_reader=read_frames)
    assert c.result_path.read_bytes() == d.result_path.read_bytes()


def test_frame_workers_name_or_skip_the_unreadable_frame(tmp_path: Path) -> None:
    root = write_sequence(tmp_path / "src", frames=12)
    (root / "img1" / "000005.png").write_bytes(b"not an image")
    with pytest.raises(DatasetError, match=r"000005\.png: not a decodable image"):
        track_sequence(root, tmp_path / "out", "private", preset("default"), ConcurrentFake(),
                       frame_reader=prefetched_frames(2, workers=2))
    run = track_sequence(root, tmp_path / "skip", "private", preset("default"), ConcurrentFake(),
                         frame_reader=prefetched_frames(2, skip_bad=True, workers=2))
    assert run.frames == 12 and run.bad_frames == (5,)
