"""CPU calibration: a fixed float32 GEMM's throughput, measured in the same run as the tracking, so
that frame rates measured on different machines (nights) can be compared after normalising."""

from __future__ import annotations

import time

import numpy as np

GEMM_N = 512  # 2·512³ = 0.27 GFLOP per product: ~ms on a CPU core, long enough to time
REPEATS = 7  # best of: the fastest repeat is the least disturbed by other processes


def gemm_gflops(n: int = GEMM_N, repeats: int = REPEATS, seed: int = 0) -> float:
    """Best-of-``repeats`` GFLOP/s of an ``n x n`` float32 matrix product (NumPy's BLAS)."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    a @ b  # warm-up: BLAS threads started, pages touched
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best / 1e9
