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

Every function takes and returns arrays for ``N`` tracks at once and never modifies its inputs:
``mean`` float64 ``[N, 8]``, ``cov`` float64 ``[N, 3, 4]``, measurements float64 ``[N, 4]`` (one per
track) or ``[M, 4]`` (candidates, for gating).  Noise standard deviations scale with the box height
``h`` (measured for :func:`initiate`, the state's otherwise) by the weights of :class:`KalmanParams`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields

import numpy as np

from cstrack.errors import ConfigError

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
    parameter set; the compiled tracker steps (:mod:`cstrack.tracker.kernels`) take these vectors."""
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
