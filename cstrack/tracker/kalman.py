"""A stateless constant-velocity Kalman filter acting on arrays of tracks (spec §10.2).

State per track (8): ``(cx, cy, a, h, vcx, vcy, va, vh)`` — box centre, aspect ratio ``w / h``,
height and their velocities, in frame pixels per frame (``dt = 1``).
Measurement (4): ``xyah`` = ``(cx, cy, a, h)`` (see :mod:`cstrack.boxes`).

**Compact covariance.**  In this filter every matrix is separable per coordinate: the transition
``F = [[I, I], [0, I]]`` only couples a coordinate with its own velocity, the process noise ``Q``,
the measurement noise ``R`` and the initial covariance are diagonal, and ``H = [I, 0]``.  The noise
*magnitudes* depend on the height, but no step ever creates a covariance between two different
coordinates.  The 8×8 covariance is therefore always four independent 2×2 blocks
``[[var_pos, cov_pv], [cov_pv, var_vel]]`` — one per coordinate — and is stored as

- ``cov``: float64 ``[N, 3, 4]`` with ``cov[:, 0]`` = position variances, ``cov[:, 1]`` =
  position-velocity covariances, ``cov[:, 2]`` = velocity variances (columns cx, cy, a, h)

which makes predict / update / gating a handful of element-wise operations on ``[N, 4]`` arrays
instead of batched 8×8 products and 4×4 solves.  The results equal the dense filter's (the tests
check this against a dense reference); :func:`full_covariance` expands to ``[N, 8, 8]``.

The functions of the first part take and return arrays for ``N`` tracks at once and never modify
their inputs (the readable reference).  The compiled kernels at the end (see :mod:`cstrack.jit`)
compute the same on the rows of the tracker's store in place, reading the columns through
:class:`KalmanRows` and the noise vectors through the read-only :class:`NoiseTerms`:
``mean`` float64 ``[N, 8]``, ``cov`` float64 ``[N, 3, 4]``, measurements float64 ``[N, 4]`` (one per
track) or ``[M, 4]`` (candidates, for gating).  Noise standard deviations scale with the box height
``h`` (measured for :func:`initiate`, the state's otherwise) by the weights of :class:`KalmanParams`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields
from typing import NamedTuple

import numpy as np

from cstrack.errors import ConfigError
from cstrack.jit import kernel

# chi-square 0.95 quantile with 4 degrees of freedom: the gate on the squared Mahalanobis distance
# between a track's projected state and a measurement (spec §10.2).
CHI2_95_4DOF = 9.4877


@dataclass(frozen=True)
class KalmanParams:
    """Noise model of the filter; every default is spec §10.2."""

    std_weight_position: float = 1.0 / 20  # σp: position/height std per pixel of height
    std_weight_velocity: float = 1.0 / 160  # σv: velocity std per pixel of height
    init_position_factor: float = 2.0  # initial std of cx, cy, h = 2·σp·h
    init_velocity_factor: float = 10.0  # initial std of vcx, vcy, vh = 10·σv·h
    aspect_std_init: float = 1e-2  # initial std of a
    aspect_velocity_std_init: float = 1e-5  # initial std of va
    aspect_std_process: float = 1e-2  # process noise std of a
    aspect_velocity_std_process: float = 1e-5  # process noise std of va
    aspect_std_measurement: float = 1e-1  # measurement noise std of a

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not (isinstance(value, int | float) and np.isfinite(value) and value > 0):
                raise ConfigError(f"KalmanParams.{f.name}: must be a positive finite number, got {value!r}")


DEFAULT_PARAMS = KalmanParams()

_HEIGHT_SCALED = np.array([1.0, 1.0, 0.0, 1.0])  # which coordinates' noise scales with h (not a)
_ASPECT_ONLY = np.array([0.0, 0.0, 1.0, 0.0])


@functools.lru_cache(maxsize=16)
def noise_terms(params: KalmanParams = DEFAULT_PARAMS) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{"init_pos", "init_vel", "q_pos", "q_vel", "r"}`` -> ``(scale [4], const [4])``: each noise
    term's standard deviation is ``h·scale + const`` per coordinate (cx, cy, a, h).  Cached per
    parameter set; the compiled steps below take them as :class:`NoiseTerms` (:func:`kernel_noise`)."""
    p, v = params.std_weight_position, params.std_weight_velocity

    def vec(weight: float, aspect: float) -> tuple[np.ndarray, np.ndarray]:
        return _HEIGHT_SCALED * weight, _ASPECT_ONLY * aspect

    return {
        "init_pos": vec(params.init_position_factor * p, params.aspect_std_init),
        "init_vel": vec(params.init_velocity_factor * v, params.aspect_velocity_std_init),
        "q_pos": vec(p, params.aspect_std_process),
        "q_vel": vec(v, params.aspect_velocity_std_process),
        "r": vec(p, params.aspect_std_measurement),
    }


def _var(h: np.ndarray, term: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Variances ``[N, 4]`` of a noise term for heights ``h [N]``."""
    std = h[:, None] * term[0] + term[1]
    return std * std


def initiate(measurement: np.ndarray, params: KalmanParams = DEFAULT_PARAMS) -> tuple[np.ndarray, np.ndarray]:
    """New tracks from ``[N, 4]`` xyah measurements: mean ``[N, 8]`` (zero velocity), cov ``[N, 3, 4]``.

    Initial stds: ``2σp·h`` (cx, cy, h), ``1e-2`` (a); velocities ``10σv·h``, ``1e-5`` (va).
    """
    z = np.asarray(measurement, dtype=np.float64).reshape(-1, 4)
    n = len(z)
    s = noise_terms(params)
    mean = np.zeros((n, 8), dtype=np.float64)
    mean[:, :4] = z
    cov = np.zeros((n, 3, 4), dtype=np.float64)
    cov[:, 0] = _var(z[:, 3], s["init_pos"])
    cov[:, 2] = _var(z[:, 3], s["init_vel"])
    return mean, cov


def predict(
    mean: np.ndarray, cov: np.ndarray, params: KalmanParams = DEFAULT_PARAMS
) -> tuple[np.ndarray, np.ndarray]:
    """One constant-velocity step ``x' = F x``, ``P' = F P Fᵀ + Q`` (Q's stds: ``σp·h``, ``σv·h``,
    ``1e-2`` / ``1e-5`` for a / va, with the state height before the step).

    Per coordinate: ``pp' = pp + 2 pv + vv + q_p²``, ``pv' = pv + vv``, ``vv' = vv + q_v²``.
    """
    mean = np.asarray(mean, dtype=np.float64)
    cov = np.asarray(cov, dtype=np.float64)
    s = noise_terms(params)
    h = mean[:, 3]
    new_mean = mean.copy()
    new_mean[:, :4] += mean[:, 4:]
    pp, pv, vv = cov[:, 0], cov[:, 1], cov[:, 2]
    new_cov = np.empty_like(cov)
    new_cov[:, 0] = pp + 2.0 * pv + vv + _var(h, s["q_pos"])
    new_cov[:, 1] = pv + vv
    new_cov[:, 2] = vv + _var(h, s["q_vel"])
    return new_mean, new_cov


def project(
    mean: np.ndarray, cov: np.ndarray, params: KalmanParams = DEFAULT_PARAMS
) -> tuple[np.ndarray, np.ndarray]:
    """Measurement-space distribution: mean ``[N, 4]`` and the innovation covariance
    ``S = H P Hᵀ + R`` — diagonal, returned as its ``[N, 4]`` diagonal (R's stds: ``σp·h``, 0.1
    for a, with the state height)."""
    mean = np.asarray(mean, dtype=np.float64)
    cov = np.asarray(cov, dtype=np.float64)
    return mean[:, :4].copy(), cov[:, 0] + _var(mean[:, 3], noise_terms(params)["r"])


def update(
    mean: np.ndarray, cov: np.ndarray, measurement: np.ndarray, params: KalmanParams = DEFAULT_PARAMS
) -> tuple[np.ndarray, np.ndarray]:
    """Correct track ``i`` with ``measurement[i]`` (xyah, ``[N, 4]``).

    ``K = P Hᵀ S⁻¹``, ``x' = x + K (z − H x)``, ``P' = P − K S Kᵀ``; per coordinate with
    ``s = pp + r``: ``pos += pp/s·ν``, ``vel += pv/s·ν``, ``pp' = pp − pp²/s``,
    ``pv' = pv − pp·pv/s``, ``vv' = vv − pv²/s``.
    """
    mean = np.asarray(mean, dtype=np.float64)
    cov = np.asarray(cov, dtype=np.float64)
    z = np.asarray(measurement, dtype=np.float64).reshape(-1, 4)
    proj, S = project(mean, cov, params)
    pp, pv, vv = cov[:, 0], cov[:, 1], cov[:, 2]
    k_pos = pp / S
    k_vel = pv / S
    nu = z - proj
    new_mean = np.empty_like(mean)
    new_mean[:, :4] = mean[:, :4] + k_pos * nu
    new_mean[:, 4:] = mean[:, 4:] + k_vel * nu
    new_cov = np.empty_like(cov)
    new_cov[:, 0] = pp - k_pos * pp
    new_cov[:, 1] = pv - k_pos * pv
    new_cov[:, 2] = vv - k_vel * pv
    return new_mean, new_cov


def gating_distance(
    mean: np.ndarray, cov: np.ndarray, measurements: np.ndarray, params: KalmanParams = DEFAULT_PARAMS
) -> np.ndarray:
    """Squared Mahalanobis distance ``[N, M]`` of ``M`` xyah measurements to each of ``N`` tracks,
    in the 4-d measurement space.  Compare with :data:`CHI2_95_4DOF` to gate."""
    z = np.asarray(measurements, dtype=np.float64).reshape(-1, 4)
    n, m = len(mean), len(z)
    if n == 0 or m == 0:
        return np.zeros((n, m), dtype=np.float64)
    proj, S = project(mean, cov, params)
    # Σ_k (z_jk − μ_ik)² / S_ik expanded into two small matrix products (no [N, M, 4] temporary):
    # Σ z²/S − 2 Σ z·μ/S + Σ μ²/S.  Relative rounding stays ~1e-12 for frame-sized coordinates.
    inv_s = 1.0 / S
    dist = inv_s @ (z * z).T
    dist -= 2.0 * ((proj * inv_s) @ z.T)
    dist += (proj * proj * inv_s).sum(axis=1)[:, None]
    return np.maximum(dist, 0.0, out=dist)


def full_covariance(cov: np.ndarray) -> np.ndarray:
    """Expand compact ``[N, 3, 4]`` covariances to the dense ``[N, 8, 8]`` matrices they stand for."""
    cov = np.asarray(cov, dtype=np.float64)
    n = len(cov)
    out = np.zeros((n, 8, 8), dtype=np.float64)
    i = np.arange(4)
    out[:, i, i] = cov[:, 0]
    out[:, i, i + 4] = cov[:, 1]
    out[:, i + 4, i] = cov[:, 1]
    out[:, i + 4, i + 4] = cov[:, 2]
    return out


# ---------------------------------------------------------------------------------------------
# Compiled steps on the tracker's rows (bit-for-bit the operations above, tests/tracker/test_kernels.py)


class KalmanRows(NamedTuple):
    """The Kalman columns of the tracker's store, written in place by the kernels below."""

    mean: np.ndarray  # float64 [n, 8]
    cov: np.ndarray  # float64 [n, 3, 4] (compact covariance)


class NoiseTerms(NamedTuple):
    """Read-only noise vectors of one :class:`KalmanParams`: ``std = h * scale + const`` per
    coordinate (cx, cy, a, h).  A kernel that tried to write one would not compile."""

    q_pos_scale: np.ndarray
    q_pos_const: np.ndarray
    q_vel_scale: np.ndarray
    q_vel_const: np.ndarray
    r_scale: np.ndarray
    r_const: np.ndarray


def _read_only(a: np.ndarray) -> np.ndarray:
    out = np.array(a, dtype=np.float64)
    out.flags.writeable = False
    return out


@functools.lru_cache(maxsize=16)
def kernel_noise(params: KalmanParams = DEFAULT_PARAMS) -> NoiseTerms:
    """The process and measurement noise of ``params`` for the kernels (cached, read-only)."""
    t = noise_terms(params)
    return NoiseTerms(*(_read_only(v) for key in ("q_pos", "q_vel", "r") for v in t[key]))


@kernel
def measurements(xyxy32: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Detections ``[M, 4]`` xyxy (float32) -> ``(valid [K] int64, xyxy [K, 4], xyah [K, 4])``
    float64, keeping rows with positive width and height and finite corners."""
    m = xyxy32.shape[0]
    valid = np.empty(m, np.int64)
    k = 0
    for j in range(m):
        x1, y1, x2, y2 = np.float64(xyxy32[j, 0]), np.float64(xyxy32[j, 1]), np.float64(xyxy32[j, 2]), np.float64(xyxy32[j, 3])
        if x2 - x1 > 0 and y2 - y1 > 0 and np.isfinite(x1) and np.isfinite(y1) and np.isfinite(x2) and np.isfinite(y2):
            valid[k] = j
            k += 1
    xyxy = np.empty((k, 4), np.float64)
    xyah = np.empty((k, 4), np.float64)
    for t in range(k):
        j = valid[t]
        for c in range(4):
            xyxy[t, c] = np.float64(xyxy32[j, c])
        w = xyxy[t, 2] - xyxy[t, 0]
        h = xyxy[t, 3] - xyxy[t, 1]
        xyah[t, 0] = xyxy[t, 0] + 0.5 * w
        xyah[t, 1] = xyxy[t, 1] + 0.5 * h
        xyah[t, 2] = w / h
        xyah[t, 3] = h
    return valid[:k], xyxy, xyah


@kernel
def predict_rows(kf: KalmanRows, noise: NoiseTerms, rows: np.ndarray, state: np.ndarray, tracked: int) -> None:
    """:func:`predict` of ``rows`` in place; rows whose ``state`` is not ``tracked`` get their
    height velocity zeroed first (spec §10.2)."""
    mean, cov = kf.mean, kf.cov
    for r in rows:
        if state[r] != tracked:
            mean[r, 7] = 0.0
        h = mean[r, 3]
        for c in range(4):
            mean[r, c] += mean[r, c + 4]
            pp, pv, vv = cov[r, 0, c], cov[r, 1, c], cov[r, 2, c]
            sp = h * noise.q_pos_scale[c] + noise.q_pos_const[c]
            sv = h * noise.q_vel_scale[c] + noise.q_vel_const[c]
            cov[r, 0, c] = pp + 2.0 * pv + vv + sp * sp
            cov[r, 1, c] = pv + vv
            cov[r, 2, c] = vv + sv * sv


@kernel
def gating_rows(kf: KalmanRows, noise: NoiseTerms, rows: np.ndarray, xyah: np.ndarray) -> np.ndarray:
    """Squared Mahalanobis distance ``[len(rows), M]`` of measurements ``xyah [M, 4]`` to the
    tracks ``rows`` (:func:`gating_distance`)."""
    mean, cov = kf.mean, kf.cov
    n, m = rows.shape[0], xyah.shape[0]
    out = np.empty((n, m), np.float64)
    s = np.empty(4, np.float64)
    for i in range(n):
        r = rows[i]
        h = mean[r, 3]
        for c in range(4):
            sr = h * noise.r_scale[c] + noise.r_const[c]
            s[c] = cov[r, 0, c] + sr * sr
        for j in range(m):
            d = 0.0
            for c in range(4):
                e = xyah[j, c] - mean[r, c]
                d += e * e / s[c]
            out[i, j] = d
    return out


@kernel
def update_rows(kf: KalmanRows, noise: NoiseTerms, rows: np.ndarray, det_idx: np.ndarray, xyah: np.ndarray) -> None:
    """:func:`update` of track ``rows[t]`` with measurement ``xyah[det_idx[t]]``, in place."""
    mean, cov = kf.mean, kf.cov
    for t in range(rows.shape[0]):
        r, j = rows[t], det_idx[t]
        h = mean[r, 3]
        for c in range(4):
            pp, pv, vv = cov[r, 0, c], cov[r, 1, c], cov[r, 2, c]
            sr = h * noise.r_scale[c] + noise.r_const[c]
            s = pp + sr * sr
            k_pos = pp / s
            k_vel = pv / s
            nu = xyah[j, c] - mean[r, c]
            mean[r, c] = mean[r, c] + k_pos * nu
            mean[r, c + 4] = mean[r, c + 4] + k_vel * nu
            cov[r, 0, c] = pp - k_pos * pp
            cov[r, 1, c] = pv - k_pos * pv
            cov[r, 2, c] = vv - k_vel * pv


@kernel
def mean_xyxy(mean: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """xyxy ``[len(rows), 4]`` boxes of the Kalman means of ``rows``."""
    out = np.empty((rows.shape[0], 4), np.float64)
    for i in range(rows.shape[0]):
        r = rows[i]
        half_w = 0.5 * mean[r, 2] * mean[r, 3]
        half_h = 0.5 * mean[r, 3]
        out[i, 0] = mean[r, 0] - half_w
        out[i, 1] = mean[r, 1] - half_h
        out[i, 2] = mean[r, 0] + half_w
        out[i, 3] = mean[r, 1] + half_h
    return out
