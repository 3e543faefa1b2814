"""The compiled tracker steps against the array functions they stand for, which sit beside them
(cstrack/tracker/kalman.py, matching.py, track.py), and hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from cstrack.tracker import kalman, matching, track
from cstrack.tracker.kalman import KalmanParams, KalmanRows
from cstrack.tracker.matching import embedding_distance, fuse_motion, iou_distance
from cstrack.tracker.track import TrackColumns

TRACKED, LOST, REMOVED = 1, 2, 3


def random_tracks(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Kalman states of ``n`` tracks a few steps old (pixels of a 1920 x 1080 frame)."""
    z = np.c_[rng.uniform(0, 1920, n), rng.uniform(0, 1080, n), rng.uniform(0.3, 0.6, n), rng.uniform(30, 300, n)]
    mean, cov = kalman.initiate(z)
    for _ in range(3):
        mean, cov = kalman.predict(mean, cov)
        mean, cov = kalman.update(mean, cov, z + rng.normal(0, 2, z.shape))
    return mean, cov


@pytest.mark.parametrize("params", [KalmanParams(), KalmanParams(std_weight_position=0.1, aspect_std_process=0.05)])
def test_predict_and_correct_equal_the_kalman_functions(params: KalmanParams) -> None:
    rng = np.random.default_rng(0)
    mean, cov = random_tracks(rng, 12)
    state = np.full(12, TRACKED, np.int8)
    state[[2, 7]] = LOST
    rows = np.array([0, 2, 3, 7, 11])
    noise = kalman.kernel_noise(params)

    m, c = mean.copy(), cov.copy()
    kalman.predict_rows(KalmanRows(m, c), noise, rows, state, TRACKED)
    ref = mean[rows].copy()
    ref[state[rows] != TRACKED, 7] = 0.0  # lost tracks predict with their height velocity zeroed
    ref_mean, ref_cov = kalman.predict(ref, cov[rows], params)
    np.testing.assert_array_equal(m[rows], ref_mean)
    np.testing.assert_array_equal(c[rows], ref_cov)
    untouched = np.setdiff1d(np.arange(12), rows)
    np.testing.assert_array_equal(m[untouched], mean[untouched])

    z = rng.normal(m[rows, :4], 3.0)
    before = m.copy(), c.copy()
    state2, activated = state.copy(), np.zeros(12, bool)
    frame_id, tracklet_len = np.zeros(12, np.int64), np.full(12, 5, np.int64)
    score = np.zeros(12, np.float32)
    kalman.update_rows(KalmanRows(m, c), noise, rows, np.arange(5), z)
    cols = TrackColumns(state2, activated, frame_id, np.zeros(12, np.int64), tracklet_len, score)
    track.mark_matched(cols, rows, np.arange(5), np.linspace(0.5, 0.9, 5, dtype=np.float32), 42)
    ref_mean, ref_cov = kalman.update(before[0][rows], before[1][rows], z, params)
    np.testing.assert_array_equal(m[rows], ref_mean)
    np.testing.assert_array_equal(c[rows], ref_cov)
    assert (state2[rows] == TRACKED).all() and activated[rows].all() and (frame_id[rows] == 42).all()
    assert tracklet_len[rows].tolist() == [6, 0, 6, 0, 6]  # a lost track restarts its tracklet
    assert score[rows].tolist() == np.linspace(0.5, 0.9, 5, dtype=np.float32).tolist()
    assert not activated[untouched].any() and (tracklet_len[untouched] == 5).all()


def test_gating_and_appearance_cost_equal_the_reference() -> None:
    rng = np.random.default_rng(1)
    mean, cov = random_tracks(rng, 9)
    rows = np.array([8, 0, 4, 5])
    xyah = rng.normal(mean[rows, :4], [2.0, 2.0, 0.01, 2.0])  # one measurement near each track ...
    xyah = np.r_[xyah, [[-500.0, 100.0, 0.4, 80.0], [1900.0, -900.0, 0.5, 60.0]]]  # ... and two far away
    noise = kalman.kernel_noise()
    gd = kalman.gating_rows(KalmanRows(mean, cov), noise, rows, xyah)
    np.testing.assert_allclose(gd, kalman.gating_distance(mean[rows], cov[rows], xyah), rtol=1e-9, atol=1e-9)

    d = 32
    template = rng.standard_normal((9, d)).astype(np.float32)
    template /= np.linalg.norm(template, axis=1, keepdims=True)
    has = np.ones(9, bool)
    has[5] = False
    emb = rng.standard_normal((6, d)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    cost = matching.appearance_cost(template[rows] @ emb.T, has, KalmanRows(mean, cov), noise, rows, xyah, 9.4877, 0.02)
    ref = embedding_distance(template[rows], emb)
    ref[~has[rows]] = 1.0
    ref = fuse_motion(ref, kalman.gating_distance(mean[rows], cov[rows], xyah), 9.4877, 0.02)
    assert np.isinf(cost[:, 4:]).all() and np.isfinite(np.diag(cost)).all()
    assert (np.isinf(cost) == np.isinf(ref)).all()
    fin = np.isfinite(ref)
    np.testing.assert_allclose(cost[fin], ref[fin], rtol=1e-6)
    assert cost[3, 3] == pytest.approx(0.98 + 0.02 * gd[3, 3], rel=1e-12)  # track 5 has no template


def test_iou_of_kalman_boxes() -> None:
    mean = np.zeros((3, 8))
    mean[:, :4] = [[50.0, 100.0, 0.5, 100.0], [0.0, 0.0, 1.0, 10.0], [52.0, 100.0, 0.5, 100.0]]
    boxes = kalman.mean_xyxy(mean, np.array([2, 0]))
    assert boxes.tolist() == [[27.0, 50.0, 77.0, 150.0], [25.0, 50.0, 75.0, 150.0]]
    # +1 convention: 51 x 101 boxes shifted by 2 px overlap 49 x 101
    d = matching.iou_distance_kernel(boxes, boxes)
    inter, area = 49 * 101, 51 * 101
    assert d[0, 1] == pytest.approx(1 - inter / (2 * area - inter)) and d[0, 0] == 0.0
    np.testing.assert_array_equal(d, iou_distance(boxes, boxes))


def test_prepare_detections_drops_degenerate_boxes() -> None:
    xyxy = np.array([[10, 20, 30, 60], [5, 5, 5, 9], [0, 0, np.inf, 4], [1, 2, 3, 1], [0, 0, 4, 2]], np.float32)
    valid, boxes, xyah = kalman.measurements(xyxy)
    assert valid.tolist() == [0, 4]
    assert boxes.dtype == np.float64 and boxes.tolist() == [[10, 20, 30, 60], [0, 0, 4, 2]]
    assert xyah.tolist() == [[20.0, 40.0, 0.5, 40.0], [2.0, 1.0, 2.0, 2.0]]


def test_embeddings_and_templates_are_unit_length() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 16)).astype(np.float32)
    x[3] = 0.0
    out = track.normalised_rows(x, np.array([5, 3, 0]))
    np.testing.assert_allclose(out[[0, 2]], x[[5, 0]] / np.linalg.norm(x[[5, 0]], axis=1, keepdims=True), rtol=1e-6)
    assert (out[1] == 0).all()  # a zero row stays zero

    template = track.normalised_rows(rng.standard_normal((4, 16)).astype(np.float32), np.arange(4))
    has = np.array([True, False, True, True])
    emb = out[[0, 2]]
    t = template.copy()
    h = has.copy()
    track.update_templates(t, h, np.array([1, 2]), np.array([0, 1]), emb, np.float32(0.9))
    expect = np.float32(0.9) * template[2] + np.float32(0.1) * emb[1]
    np.testing.assert_allclose(t[2], expect / np.linalg.norm(expect), rtol=1e-6)
    np.testing.assert_allclose(t[1], emb[0], rtol=1e-6)  # no template yet: the embedding itself
    assert h.all() and (t[[0, 3]] == template[[0, 3]]).all()


def test_partition_and_duplicate_suppression() -> None:
    state = np.array([TRACKED, TRACKED, LOST, REMOVED, TRACKED, LOST], np.int8)
    activated = np.array([True, False, True, True, True, False])
    unconfirmed, pool = track.partition(state, activated)
    assert unconfirmed.tolist() == [1] and pool.tolist() == [0, 2, 4, 5]

    mean = np.zeros((6, 8))
    mean[:, :4] = [50.0, 100.0, 0.5, 100.0]  # all on top of each other ...
    mean[4, 0] = 900.0  # ... but track 4, and lost track 5 overlaps nobody tracked but 0 and 1
    mean[5, 0] = 51.0
    frame_id = np.array([10, 10, 8, 8, 10, 9])
    start = np.array([1, 9, 5, 1, 1, 2])  # histories: 9, 1, 3, -, 9, 7
    s = state.copy()
    cols = TrackColumns(s, activated, frame_id, start, np.zeros(6, np.int64), np.zeros(6, np.float32))
    track.suppress_duplicates(mean, cols, 0.15)
    # 0 (9) beats lost 2 (3) and lost 5 (7); unconfirmed-tracked 1 (1) loses to both lost tracks
    assert s.tolist() == [TRACKED, REMOVED, REMOVED, REMOVED, TRACKED, REMOVED]


def test_noise_terms_are_read_only() -> None:
    noise = kalman.kernel_noise()
    assert all(not v.flags.writeable for v in noise)
    with pytest.raises(ValueError):
        noise.r_scale[0] = 1.0
