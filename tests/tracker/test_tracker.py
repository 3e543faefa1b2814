"""The JDE cascade on hand-built scenes."""

from __future__ import annotations

import numpy as np
import pytest

from cstrack.boxes import tlwh_to_xyxy
from cstrack.detection import Detections
from cstrack.tracker import Tracker, TrackerConfig, TrackOutput, TrackState, preset

W, H = 40.0, 100.0


def unit(i: int, dim: int = 16) -> np.ndarray:
    e = np.zeros(dim, np.float32)
    e[i] = 1.0
    return e


def dets(boxes: list[tuple[float, float]], embs: list[np.ndarray] | None = None,
         scores: list[float] | None = None, size: tuple[float, float] = (W, H)) -> Detections:
    """Detections of ``size`` boxes with top-left corners ``boxes``."""
    tlwh = np.array([[x, y, size[0], size[1]] for x, y in boxes], dtype=np.float32).reshape(-1, 4)
    sc = np.full(len(tlwh), 0.9, np.float32) if scores is None else np.array(scores, np.float32)
    emb = None if embs is None else np.stack(embs) if embs else np.zeros((0, 16), np.float32)
    return Detections(tlwh_to_xyxy(tlwh), sc, emb)


def run(tracker: Tracker, frames: list[Detections]) -> list[list[TrackOutput]]:
    return [tracker.update(d) for d in frames]


def current(outs: list[TrackOutput], frame: int) -> list[TrackOutput]:
    return [o for o in outs if o.frame == frame]


def ids_following(outputs: list[list[TrackOutput]], truth: list[list[float]], skip_within: float = 0.0) -> list[set[int]]:
    """For each target, the set of IDs of the output box nearest its true x, per frame.

    ``truth[f][k]`` is target k's true top-left x at frame f+1; frames where two targets are closer
    than ``skip_within`` are skipped.
    """
    n = len(truth[0])
    seen: list[set[int]] = [set() for _ in range(n)]
    for f, outs in enumerate(outputs, start=1):
        xs = truth[f - 1]
        if n > 1 and min(abs(a - b) for i, a in enumerate(xs) for b in xs[i + 1:]) < skip_within:
            continue
        for o in current(outs, f):
            k = int(np.argmin([abs(o.tlwh[0] - x) for x in xs]))
            seen[k].add(o.track_id)
    return seen


# --------------------------------------------------------------------------------------------
# crossing targets


def crossing_scene(bounce: bool) -> tuple[list[Detections], list[list[float]]]:
    """A walks right from x=100, B walks left from x=400 (same row); with ``bounce`` they turn
    back where they meet.  A carries embedding e0, B e1."""
    frames, truth = [], []
    for f in range(40):
        step = f if not bounce or f <= 18 else 36 - f
        xa, xb = 100 + 8 * step, 400 - 8 * step
        frames.append(dets([(xa, 200), (xb, 200)], [unit(0), unit(1)]))
        truth.append([xa, xb])
    return frames, truth


@pytest.mark.parametrize("bounce", [False, True])
def test_crossing_targets_with_distinct_embeddings_keep_ids(bounce: bool) -> None:
    frames, truth = crossing_scene(bounce)
    outs = run(Tracker(TrackerConfig(), frame_rate=30), frames)
    a, b = ids_following(outs, truth, skip_within=10)
    assert a == {1} and b == {2}


def test_bounce_needs_appearance() -> None:
    """Without embeddings the motion model carries the IDs straight on: the targets swap."""
    frames, truth = crossing_scene(bounce=True)
    no_emb = [Detections(d.xyxy, d.scores) for d in frames]
    outs = run(Tracker(TrackerConfig(), frame_rate=30), no_emb)
    a, b = ids_following(outs, truth, skip_within=10)
    assert 2 in a and 1 in b  # the IDs swap at the bounce


# --------------------------------------------------------------------------------------------
# occlusion and the lost-track buffer


def occlusion_scene(hidden: range, with_emb: bool) -> list[Detections]:
    frames = []
    for f in range(1, 61):
        if f in hidden:
            frames.append(dets([], [] if with_emb else None))
        else:
            frames.append(dets([(50 + 5 * f, 100)], [unit(3)] if with_emb else None))
    return frames


@pytest.mark.parametrize("with_emb", [True, False])
def test_occluded_target_returns_with_its_id_inside_the_buffer(with_emb: bool) -> None:
    hidden = range(21, 31)  # 10 frames
    tracker = Tracker(TrackerConfig(), frame_rate=30)  # buffer: 30 frames
    outs = run(tracker, occlusion_scene(hidden, with_emb))
    reported = {o.track_id for frame in outs for o in frame}
    assert reported == {1}
    for f in hidden:
        assert current(outs[f - 1], f) == []  # lost tracks are not reported
    assert [o.track_id for o in current(outs[30], 31)] == [1]
    assert tracker.tracks()[0].state is TrackState.TRACKED


@pytest.mark.parametrize("with_emb", [True, False])
@pytest.mark.parametrize(("buffer", "rate", "hidden"), [(5, 30, range(21, 31)), (30, 30, range(21, 56)),
                                                       (30, 7, range(21, 31))])
def test_occluded_target_gets_a_new_id_after_the_buffer(with_emb: bool, buffer: int, rate: float,
                                                        hidden: range) -> None:
    tracker = Tracker(TrackerConfig(track_buffer=buffer), frame_rate=rate)
    assert tracker.max_time_lost < len(hidden)
    outs = run(tracker, occlusion_scene(hidden, with_emb))
    before = {o.track_id for frame in outs[: hidden.start - 1] for o in frame}
    after = {o.track_id for frame in outs[hidden.stop - 1:] for o in frame}
    assert before == {1}
    assert after and 1 not in after


def test_lost_track_is_removed_exactly_after_max_time_lost() -> None:
    tracker = Tracker(TrackerConfig(track_buffer=5), frame_rate=30)  # max_time_lost = 5
    run(tracker, [dets([(100, 100)]) for _ in range(5)])  # last update at frame 5
    for f in range(6, 11):  # t - frame_id = 1..5: still kept
        tracker.update(dets([]))
        assert [t.state for t in tracker.tracks()] == [TrackState.LOST], f
    tracker.update(dets([]))  # t - frame_id = 6 > 5: removed and dropped
    assert tracker.tracks() == []


# --------------------------------------------------------------------------------------------
# IDs, empty frames, determinism


def test_each_tracker_counts_ids_from_one() -> None:
    first = Tracker(TrackerConfig(), frame_rate=30)
    run(first, [dets([(10, 10), (200, 10), (400, 10)]) for _ in range(3)])
    assert first.next_id == 4
    second = Tracker(TrackerConfig(), frame_rate=30)
    outs = run(second, [dets([(600, 300)]) for _ in range(3)])
    assert {o.track_id for o in outs[-1]} == {1}
    # the first tracker keeps its own counter
    out = first.update(dets([(10, 10), (200, 10), (400, 10), (700, 500)]))
    assert {o.track_id for o in out} == {1, 2, 3}
    assert first.next_id == 5


def test_empty_frames() -> None:
    tracker = Tracker(TrackerConfig(track_buffer=3), frame_rate=30)
    assert tracker.update(Detections.empty()) == []
    assert tracker.update(Detections.empty(emb_dim=16)) == []
    assert tracker.frame_id == 2
    outs = run(tracker, [dets([(100, 100)], [unit(0)]) for _ in range(4)])
    assert [len(o) for o in outs] == [0, 2, 1, 1]  # frame 4 reports frames 3 (back-filled) and 4
    assert [o.track_id for o in outs[1]] == [1, 1] and [o.frame for o in outs[1]] == [3, 4]
    for _ in range(3):
        assert tracker.update(Detections.empty(emb_dim=16)) == []
    assert [t.state for t in tracker.tracks()] == [TrackState.LOST]
    assert tracker.update(Detections.empty()) == []
    assert tracker.tracks() == []


def test_deterministic() -> None:
    frames, _ = crossing_scene(bounce=True)
    rng = np.random.default_rng(0)
    noisy = [Detections(d.xyxy + rng.normal(0, 2, d.xyxy.shape).astype(np.float32), d.scores, d.embeddings)
             for d in frames]
    a = [t.update_arrays(d) for t in [Tracker(TrackerConfig(), 30)] for d in noisy]
    b = [t.update_arrays(d) for t in [Tracker(TrackerConfig(), 30)] for d in noisy]
    for x, y in zip(a, b, strict=True):
        for field in ("frame", "ids", "tlwh", "scores"):
            np.testing.assert_array_equal(getattr(x, field), getattr(y, field))


def test_many_short_lived_tracks_do_not_accumulate() -> None:
    tracker = Tracker(TrackerConfig(), frame_rate=30)
    for f in range(200):  # one spurious detection per frame, each in a new place
        tracker.update(dets([(97.0 * f % 1500, 211.0 * f % 800)]))
    assert len(tracker.tracks()) <= 1
    assert tracker.next_id == 201


# --------------------------------------------------------------------------------------------
# first frame of a track (spec Q9) and output filter (Q10)


def test_first_frame_is_back_filled_by_default() -> None:
    tracker = Tracker(preset("default"), frame_rate=30)
    out1 = tracker.update(dets([(100, 100), (300, 100)], scores=[0.9, 0.8]))
    assert out1 == []  # not yet confirmed
    out2 = tracker.update(dets([(102, 100), (302, 100)]))
    first = current(out2, 1)
    assert [(o.track_id, o.score) for o in first] == [(1, pytest.approx(0.9)), (2, pytest.approx(0.8))]
    np.testing.assert_allclose(first[0].tlwh, [100, 100, W, H])  # the birth detection itself
    assert [o.track_id for o in current(out2, 2)] == [1, 2]


def test_original_preset_drops_the_first_frame() -> None:
    tracker = Tracker(preset("original"), frame_rate=30)
    outs = run(tracker, [dets([(100 + f, 100)]) for f in range(3)])
    assert [[o.frame for o in frame] for frame in outs] == [[], [2], [3]]


def test_immediate_reports_on_birth() -> None:
    tracker = Tracker(TrackerConfig(new_track_report="immediate"), frame_rate=30)
    outs = run(tracker, [dets([(100, 100)]), dets([(101, 100)])])
    assert [[(o.frame, o.track_id) for o in frame] for frame in outs] == [[(1, 1)], [(2, 1)]]


@pytest.mark.parametrize(("report", "expect_fp"), [("backfill", False), ("next_frame", False), ("immediate", True)])
def test_one_frame_false_positive(report: str, expect_fp: bool) -> None:
    tracker = Tracker(TrackerConfig(new_track_report=report), frame_rate=30)  # type: ignore[arg-type]
    frames = [dets([(100 + f, 100)] + ([(500, 300)] if f == 3 else [])) for f in range(6)]
    reported = {o.track_id for out in run(tracker, frames) for o in out}
    assert (2 in reported) is expect_fp
    assert 1 in reported


def test_output_filter_of_the_original_preset() -> None:
    tracker = Tracker(preset("original"), frame_rate=30)
    frames = [
        Detections(
            tlwh_to_xyxy(np.array([[100 + f, 100, 40, 100], [400, 100, 100, 100], [600, 100, 5, 10]], np.float32)),
            np.full(3, 0.9),
        )
        for f in range(4)
    ]
    outs = run(tracker, frames)
    assert {o.track_id for out in outs for o in out} == {1}  # square box and 50 px² box filtered
    assert len(tracker.tracks()) == 3  # ... but still tracked
    outs = run(Tracker(preset("default"), frame_rate=30), frames)
    assert {o.track_id for out in outs for o in out} == {1, 2, 3}


# --------------------------------------------------------------------------------------------
# cascade details


def test_template_is_an_exponential_moving_average() -> None:
    tracker = Tracker(TrackerConfig(), frame_rate=30)
    e0 = unit(0)
    e1 = (unit(0) + unit(1)) / np.sqrt(2)  # cosine distance 0.29 < 0.4: matched in stage 1
    tracker.update(dets([(100, 100)], [e0]))
    tracker.update(dets([(100, 100)], [e1]))
    t = 0.9 * e0 + 0.1 * e1
    np.testing.assert_allclose(tracker.tracks()[0].template, t / np.linalg.norm(t), atol=1e-6)


def test_tracked_track_survives_an_appearance_change_through_iou() -> None:
    """Stage 2: a tracked track whose detection looks different is still matched by IoU."""
    tracker = Tracker(TrackerConfig(), frame_rate=30)
    run(tracker, [dets([(100 + 2 * f, 100)], [unit(0)]) for f in range(5)])
    out = tracker.update(dets([(110, 100)], [unit(5)]))
    assert [o.track_id for o in out] == [1]


def test_lost_track_comes_back_only_by_appearance() -> None:
    """Spec §10.3: lost tracks are not IoU-matched.  A different-looking detection at the lost
    track's place starts a new track that duplicate suppression drops while the old one is lost
    (the older history wins); once the old track has expired the newcomer is reported."""
    tracker = Tracker(TrackerConfig(track_buffer=4), frame_rate=30)  # max_time_lost = 4
    run(tracker, [dets([(100, 100)], [unit(0)]) for _ in range(5)])
    tracker.update(dets([], []))  # frame 6: lost
    reported: set[int] = set()
    for _ in range(8):
        reported |= {o.track_id for o in tracker.update(dets([(100, 100)], [unit(7)]))}
        live = tracker.tracks()
        assert 1 not in {t.track_id for t in live if t.state is TrackState.TRACKED}
    assert 1 not in reported and reported  # a new identity is reported after the buffer
    # the same return with the old appearance re-finds ID 1
    tracker = Tracker(TrackerConfig(track_buffer=4), frame_rate=30)
    run(tracker, [dets([(100, 100)], [unit(0)]) for _ in range(5)])
    tracker.update(dets([], []))
    assert [o.track_id for o in tracker.update(dets([(100, 100)], [unit(0)]))] == [1]


def test_motion_only_refinds_lost_tracks_by_iou() -> None:
    tracker = Tracker(TrackerConfig(), frame_rate=30)
    run(tracker, [dets([(100 + 3 * f, 100)]) for f in range(6)])
    tracker.update(dets([]))
    tracker.update(dets([]))
    assert [o.track_id for o in tracker.update(dets([(100 + 3 * 8, 100)]))] == [1]


def test_degenerate_detections_are_ignored() -> None:
    tracker = Tracker(TrackerConfig(), frame_rate=30)
    bad = Detections(np.array([[10, 10, 10, 50], [0, 0, np.nan, 5], [5, 5, 30, 90]], np.float32), np.ones(3))
    tracker.update(bad)
    assert [t.track_id for t in tracker.tracks()] == [1]
    np.testing.assert_allclose(tracker.tracks()[0].tlwh, [5, 5, 25, 85])


def test_low_score_detections_do_not_start_tracks() -> None:
    tracker = Tracker(TrackerConfig(det_thresh=0.6), frame_rate=30)
    tracker.update(dets([(100, 100), (300, 100)], scores=[0.59, 0.6]))
    assert [t.track_id for t in tracker.tracks()] == [1]
    np.testing.assert_allclose(tracker.tracks()[0].tlwh[0], 300)
