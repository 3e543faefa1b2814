"""Association costs and the thresholded assignment."""

from __future__ import annotations

import itertools

import lap
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from cstrack.boxes import iou_matrix
from cstrack.tracker.matching import (
    embedding_distance,
    fuse_motion,
    gate_cost,
    iou_distance,
    linear_assignment,
)


def objective(cost: np.ndarray, matches: np.ndarray, thresh: float) -> float:
    """The quantity the assignment minimises: matched costs + thresh/2 per unmatched row and column."""
    n, m = cost.shape
    k = len(matches)
    matched = float(sum(cost[r, c] for r, c in matches))
    return matched + thresh / 2 * (n - k + m - k)


def brute_force(cost: np.ndarray, thresh: float) -> float:
    """Optimal objective by enumeration (small matrices only)."""
    n, m = cost.shape
    best = thresh / 2 * (n + m)
    cols = list(range(m))
    for k in range(1, min(n, m) + 1):
        for rows in itertools.combinations(range(n), k):
            for perm in itertools.permutations(cols, k):
                c = [cost[r, j] for r, j in zip(rows, perm, strict=True)]
                if all(v < thresh for v in c):
                    best = min(best, sum(c) + thresh / 2 * (n + m - 2 * k))
    return best


def test_optimal_not_greedy() -> None:
    cost = np.array([[0.1, 0.2], [0.15, 0.9]])
    # greedy would take (0, 0) = 0.1 and then (1, 1) = 0.9 > thresh; the optimum pairs across
    matches, ur, uc = linear_assignment(cost, 0.5)
    assert matches.tolist() == [[0, 1], [1, 0]]
    assert ur.size == 0 and uc.size == 0


def test_threshold_is_strict() -> None:
    cost = np.array([[0.5, 0.49]])
    matches, ur, uc = linear_assignment(cost, 0.49)
    assert matches.size == 0 and ur.tolist() == [0] and uc.tolist() == [0, 1]
    matches, _, uc = linear_assignment(cost, 0.4901)
    assert matches.tolist() == [[0, 1]] and uc.tolist() == [0]


def test_unmatched_cost_is_half_the_threshold() -> None:
    """Cross pairs cost 0.3 + 0.3; the diagonal pair costs 0 plus a row and a column left out (τ/2 each)."""
    cost = np.array([[0.0, 0.3], [0.3, np.inf]])
    matches, ur, uc = linear_assignment(cost, 0.7)  # 0.6 < 0 + 0.7: both cross pairs
    assert matches.tolist() == [[0, 1], [1, 0]] and ur.size == 0 and uc.size == 0
    matches, ur, uc = linear_assignment(cost, 0.5)  # 0.6 > 0 + 0.5: the diagonal pair only
    assert matches.tolist() == [[0, 0]] and ur.tolist() == [1] and uc.tolist() == [1]


def test_empty_and_inf() -> None:
    for shape in [(0, 0), (0, 3), (2, 0)]:
        matches, ur, uc = linear_assignment(np.zeros(shape), 0.5)
        assert matches.shape == (0, 2)
        assert ur.tolist() == list(range(shape[0])) and uc.tolist() == list(range(shape[1]))
    matches, ur, uc = linear_assignment(np.full((2, 2), np.inf), 0.5)
    assert matches.shape == (0, 2) and ur.tolist() == [0, 1] and uc.tolist() == [0, 1]


def test_rejects_nan_and_bad_threshold() -> None:
    with pytest.raises(ValueError, match="NaN"):
        linear_assignment(np.array([[np.nan]]), 0.5)
    with pytest.raises(ValueError, match="thresh"):
        linear_assignment(np.zeros((1, 1)), 0.0)
    with pytest.raises(ValueError, match="2-d"):
        linear_assignment(np.zeros(3), 0.5)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 5), st.integers(1, 5), st.integers(0, 2**32 - 1), st.floats(0.05, 1.0))
def test_optimal_against_brute_force_and_lap(n: int, m: int, seed: int, thresh: float) -> None:
    rng = np.random.default_rng(seed)
    cost = rng.uniform(0, 1.2 * thresh, (n, m))
    cost[rng.random((n, m)) < 0.2] = np.inf
    matches, ur, uc = linear_assignment(cost, thresh)
    assert all(cost[r, c] < thresh for r, c in matches)
    assert sorted(ur.tolist() + matches[:, 0].tolist()) == list(range(n))
    assert sorted(uc.tolist() + matches[:, 1].tolist()) == list(range(m))
    got = objective(cost, matches, thresh)
    assert got == pytest.approx(brute_force(cost, thresh), abs=1e-9)
    # the lap call SOTS makes (spec §10.4) reaches the same optimum
    _, x, _ = lap.lapjv(np.minimum(cost, thresh), extend_cost=True, cost_limit=thresh)
    lap_matches = np.array([(r, c) for r, c in enumerate(x) if c >= 0 and cost[r, c] < thresh]).reshape(-1, 2)
    assert objective(cost, lap_matches, thresh) == pytest.approx(got, abs=1e-9)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 12), st.integers(1, 12), st.integers(0, 2**32 - 1), st.floats(0.1, 1.0))
def test_permuting_detections_permutes_matches(n: int, m: int, seed: int, thresh: float) -> None:
    """Generic (tie-free) costs: the optimum is unique, so a column permutation carries it along."""
    rng = np.random.default_rng(seed)
    cost = rng.uniform(0, 1.5 * thresh, (n, m))
    perm = rng.permutation(m)
    matches, ur, uc = linear_assignment(cost, thresh)
    pm, pur, puc = linear_assignment(cost[:, perm], thresh)
    # column j of the permuted matrix is column perm[j] of the original
    assert sorted((r, int(perm[c])) for r, c in pm) == sorted(map(tuple, matches.tolist()))
    assert pur.tolist() == ur.tolist()
    assert sorted(perm[puc].tolist()) == uc.tolist()


@settings(max_examples=200, deadline=None)
@given(
    arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 6)),
           elements=st.sampled_from([0.0, 0.1, 0.2, 0.3, 0.5, 0.7, np.inf])),
    st.data(),
)
def test_permutation_keeps_optimum_even_with_ties(cost: np.ndarray, data: st.DataObject) -> None:
    perm = np.array(data.draw(st.permutations(range(cost.shape[1]))))
    a = objective(cost, linear_assignment(cost, 0.4)[0], 0.4)
    pc = cost[:, perm]
    b = objective(pc, linear_assignment(pc, 0.4)[0], 0.4)
    assert a == pytest.approx(b, abs=1e-12)


def test_iou_distance_plus_one_convention() -> None:
    a = np.array([[0.0, 0.0, 9.0, 9.0]])  # 10×10 pixels with the +1 convention
    b = np.array([[5.0, 5.0, 14.0, 14.0], [20.0, 20.0, 30.0, 30.0], [0.0, 0.0, 9.0, 9.0]])
    d = iou_distance(a, b)
    np.testing.assert_allclose(d, [[1 - 25 / 175, 1.0, 0.0]])


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 8), st.integers(0, 8))
def test_iou_distance_equals_boxes_iou(seed: int, n: int, m: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.uniform(0, 100, (n, 4))
    a[:, 2:] = a[:, :2] + rng.uniform(0, 50, (n, 2))
    b = rng.uniform(0, 100, (m, 4))
    b[:, 2:] = b[:, :2] + rng.uniform(0, 50, (m, 2))
    np.testing.assert_allclose(iou_distance(a, b), 1 - iou_matrix(a, b, plus_one=True), atol=1e-12)


def test_embedding_distance() -> None:
    t = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 0.0]])
    e = np.array([[3.0, 0.0, 0.0], [0.0, 1.0, 1.0], [-1.0, 0.0, 0.0]])
    d = embedding_distance(t, e)
    s = 1 - 1 / np.sqrt(2)
    np.testing.assert_allclose(d, [[0, 1, 2], [1, s, 1], [1, 1, 1]], atol=1e-6)
    # identical unit vectors can round to a tiny negative distance: clipped at 0
    v = np.random.default_rng(0).standard_normal((5, 512)).astype(np.float32)
    assert (embedding_distance(v, v) >= 0).all()
    assert embedding_distance(np.zeros((0, 4)), e[:, :3].repeat(2, axis=1)[:, :4]).shape == (0, 3)
    with pytest.raises(ValueError, match="sizes differ"):
        embedding_distance(np.ones((1, 3)), np.ones((1, 4)))


def test_fuse_motion_and_gate() -> None:
    cost = np.array([[0.1, 0.5], [0.3, 0.0]])
    gd = np.array([[1.0, 20.0], [9.0, 9.5]])
    fused = fuse_motion(cost, gd, gate=9.4877, motion_weight=0.02)
    np.testing.assert_allclose(fused, [[0.98 * 0.1 + 0.02, np.inf], [0.98 * 0.3 + 0.18, np.inf]])
    gated = gate_cost(cost, gd, 9.4877)
    np.testing.assert_array_equal(gated, [[0.1, np.inf], [0.3, np.inf]])
    assert cost[0, 1] == 0.5  # inputs untouched
