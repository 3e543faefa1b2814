"""Kalman filter: hand-computed steps, equality with a dense 8×8 reference filter written from the
spec's formulas, and covariances that stay symmetric positive definite."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cstrack.errors import ConfigError
from cstrack.tracker import kalman
from cstrack.tracker.kalman import CHI2_95_4DOF, KalmanParams, full_covariance

SP, SV = 1 / 20, 1 / 160

# --------------------------------------------------------------------------------------------
# dense reference: the textbook filter of spec §10.2 with explicit F, Q, R, H and Cholesky solves

F = np.eye(8)
F[:4, 4:] = np.eye(4)
H = np.eye(4, 8)


def ref_initiate(z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h = z[3]
    std = np.array([2 * SP * h, 2 * SP * h, 1e-2, 2 * SP * h, 10 * SV * h, 10 * SV * h, 1e-5, 10 * SV * h])
    return np.r_[z, np.zeros(4)], np.diag(std**2)


def ref_predict(x: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h = x[3]
    std = np.array([SP * h, SP * h, 1e-2, SP * h, SV * h, SV * h, 1e-5, SV * h])
    return F @ x, F @ cov @ F.T + np.diag(std**2)


def ref_project(x: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h = x[3]
    R = np.diag(np.array([SP * h, SP * h, 1e-1, SP * h]) ** 2)
    return H @ x, H @ cov @ H.T + R


def ref_update(x: np.ndarray, cov: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu, S = ref_project(x, cov)
    L = np.linalg.cholesky(S)
    K = np.linalg.solve(L.T, np.linalg.solve(L, H @ cov)).T  # P Hᵀ S⁻¹
    return x + K @ (z - mu), cov - K @ S @ K.T


def ref_gating(x: np.ndarray, cov: np.ndarray, zs: np.ndarray) -> np.ndarray:
    mu, S = ref_project(x, cov)
    L = np.linalg.cholesky(S)
    d = np.linalg.solve(L, (zs - mu).T)
    return (d * d).sum(axis=0)


# --------------------------------------------------------------------------------------------


def test_initiate_hand_computed() -> None:
    mean, cov = kalman.initiate(np.array([[100.0, 200.0, 0.5, 80.0]]))
    np.testing.assert_array_equal(mean, [[100, 200, 0.5, 80, 0, 0, 0, 0]])
    # stds: 2·h/20 = 8 (cx, cy, h), 1e-2 (a); 10·h/160 = 5 (velocities), 1e-5 (va)
    np.testing.assert_allclose(cov[0, 0], [64, 64, 1e-4, 64])
    np.testing.assert_allclose(cov[0, 1], [0, 0, 0, 0])
    np.testing.assert_allclose(cov[0, 2], [25, 25, 1e-10, 25])


def test_predict_hand_computed() -> None:
    mean = np.array([[10.0, 20.0, 0.5, 100.0, 1.0, -2.0, 0.0, 3.0]])
    cov = np.zeros((1, 3, 4))
    cov[0, 0] = 4.0
    cov[0, 1] = 1.0
    cov[0, 2] = 2.0
    m2, c2 = kalman.predict(mean, cov)
    np.testing.assert_allclose(m2, [[11, 18, 0.5, 103, 1, -2, 0, 3]])
    # pp' = 4 + 2·1 + 2 + (h/20)² = 8 + 25 (x, y, h); a: 8 + 1e-4
    np.testing.assert_allclose(c2[0, 0], [33, 33, 8 + 1e-4, 33])
    np.testing.assert_allclose(c2[0, 1], [3, 3, 3, 3])
    # vv' = 2 + (h/160)² = 2 + 0.390625; va: 2 + 1e-10
    np.testing.assert_allclose(c2[0, 2], [2.390625, 2.390625, 2 + 1e-10, 2.390625])


def test_update_scalar_case() -> None:
    """With a zero-velocity-covariance state the position gain is pp / (pp + r)."""
    mean = np.array([[0.0, 0.0, 0.5, 100.0, 0, 0, 0, 0]])
    cov = np.zeros((1, 3, 4))
    cov[0, 0] = [25.0, 25.0, 0.01, 25.0]  # r = (100/20)² = 25 for x, y, h; 0.01 for a
    new_mean, new_cov = kalman.update(mean, cov, np.array([[10.0, -4.0, 0.7, 110.0]]))
    np.testing.assert_allclose(new_mean[0, :4], [5.0, -2.0, 0.6, 105.0])
    np.testing.assert_allclose(new_cov[0, 0], [12.5, 12.5, 0.005, 12.5])


def test_gating_hand_computed_and_threshold() -> None:
    mean = np.array([[0.0, 0.0, 0.5, 100.0, 0, 0, 0, 0]])
    cov = np.zeros((1, 3, 4))
    cov[0, 0] = [75.0, 75.0, 0.0, 75.0]  # S = 75 + 25 = 100 for x, y, h; 0.01 for a
    z = np.array([[10.0, 0.0, 0.5, 100.0], [0.0, 20.0, 0.6, 130.0]])
    d = kalman.gating_distance(mean, cov, z)
    np.testing.assert_allclose(d, [[1.0, 4.0 + 1.0 + 9.0]])
    assert (d < CHI2_95_4DOF).tolist() == [[True, False]]


def test_inputs_are_not_modified() -> None:
    mean, cov = kalman.initiate(np.array([[1.0, 2.0, 0.4, 50.0]]))
    m0, c0 = mean.copy(), cov.copy()
    kalman.predict(mean, cov)
    kalman.update(mean, cov, np.array([[2.0, 3.0, 0.4, 52.0]]))
    kalman.gating_distance(mean, cov, np.array([[2.0, 3.0, 0.4, 52.0]]))
    np.testing.assert_array_equal(mean, m0)
    np.testing.assert_array_equal(cov, c0)


def test_empty_arrays() -> None:
    mean, cov = kalman.initiate(np.zeros((0, 4)))
    assert mean.shape == (0, 8) and cov.shape == (0, 3, 4)
    assert kalman.predict(mean, cov)[1].shape == (0, 3, 4)
    assert kalman.update(mean, cov, np.zeros((0, 4)))[0].shape == (0, 8)
    assert kalman.gating_distance(mean, cov, np.zeros((3, 4))).shape == (0, 3)


def test_full_covariance_layout() -> None:
    cov = np.arange(12, dtype=float).reshape(1, 3, 4)
    full = full_covariance(cov)[0]
    assert full[1, 1] == 1 and full[1, 5] == 5 and full[5, 1] == 5 and full[5, 5] == 9
    assert full[0, 1] == 0 and full[0, 6] == 0
    np.testing.assert_array_equal(full, full.T)


@pytest.mark.parametrize("field", ["std_weight_position", "aspect_std_measurement"])
@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), True])
def test_params_validation_names_field(field: str, bad: object) -> None:
    with pytest.raises(ConfigError, match=f"KalmanParams.{field}"):
        KalmanParams(**{field: bad})  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# random predict / update sequences

box = st.tuples(
    st.floats(-500, 2500), st.floats(-500, 1500), st.floats(0.1, 2.0), st.floats(5.0, 1000.0)
)
steps = st.lists(
    st.one_of(
        st.just(("predict", None)),
        st.tuples(st.just("update"), st.tuples(st.floats(-30, 30), st.floats(-30, 30),
                                              st.floats(-0.05, 0.05), st.floats(0.8, 1.25))),
        st.just(("freeze_vh", None)),
    ),
    min_size=1,
    max_size=40,
)


def _run_sequence(start: tuple, ops: list) -> tuple[list, list]:
    """Run the same operations on the vectorised filter and on the dense reference."""
    z0 = np.array(start, dtype=np.float64)
    mean, cov = kalman.initiate(z0[None])
    x, P = ref_initiate(z0)
    ours, refs = [], []
    for op, arg in ops:
        if op == "predict":
            mean, cov = kalman.predict(mean, cov)
            x, P = ref_predict(x, P)
        elif op == "freeze_vh":  # what the tracker does to lost tracks before predicting
            mean = mean.copy()
            mean[:, 7] = 0
            x = x.copy()
            x[7] = 0
        else:
            dx, dy, da, sh = arg
            z = np.array([x[0] + dx, x[1] + dy, max(x[2] + da, 0.05), max(x[3] * sh, 2.0)])
            mean, cov = kalman.update(mean, cov, z[None])
            x, P = ref_update(x, P, z)
        ours.append((mean[0].copy(), full_covariance(cov)[0]))
        refs.append((x.copy(), P.copy()))
    return ours, refs


@settings(max_examples=150, deadline=None)
@given(box, steps)
def test_matches_dense_reference(start: tuple, ops: list) -> None:
    ours, refs = _run_sequence(start, ops)
    for (m, c), (x, P) in zip(ours, refs, strict=True):
        np.testing.assert_allclose(m, x, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(c, P, rtol=1e-9, atol=1e-12)


@settings(max_examples=150, deadline=None)
@given(box, steps)
def test_covariance_stays_symmetric_positive_definite(start: tuple, ops: list) -> None:
    ours, _ = _run_sequence(start, ops)
    for _, c in ours:
        np.testing.assert_array_equal(c, c.T)
        np.linalg.cholesky(c)  # raises LinAlgError unless positive definite
        assert np.linalg.eigvalsh(c).min() > 0


@settings(max_examples=100, deadline=None)
@given(box, st.lists(box, min_size=1, max_size=6), st.integers(0, 5))
def test_gating_matches_dense_mahalanobis(start: tuple, cands: list, n_predict: int) -> None:
    z0 = np.array(start)
    mean, cov = kalman.initiate(z0[None])
    x, P = ref_initiate(z0)
    for _ in range(n_predict):
        mean, cov = kalman.predict(mean, cov)
        x, P = ref_predict(x, P)
    zs = np.array(cands)
    got = kalman.gating_distance(mean, cov, zs)[0]
    want = ref_gating(x, P, zs)
    np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-6)
