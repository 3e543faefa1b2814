"""Compiled kernels for the per-frame hot paths (post-processing, tracker steps).

A real-time frame of the small model leaves ~20 ms for everything; written as NumPy expressions,
post-processing and a tracker step are a few hundred calls on arrays of a few dozen rows, and what
they cost is dispatch plus, right after the network has streamed tens of MB through the caches,
refetching the code and data of every distinct NumPy routine (measured: 0.24 ms warm, 0.6 ms
right after a forward, for post-processing alone).  A compiled loop over the same rows touches a
few kB.  The NumPy functions stay as the readable reference that the tests compare the kernels
with.

:func:`kernel` is ``numba.njit`` with the project's settings: results cached on disk (next to the
module, or in numba's user cache when that is read-only), so only the first process after a change
compiles; the GIL released; strict IEEE arithmetic (no fast-math), so float32 kernels round like
the NumPy reference.  Importing a kernel module imports numba (~0.3 s, once per process; the
first call of each kernel loads its compiled code from the cache, ~0.1 s, or compiles it, a few
seconds); ``NUMBA_DISABLE_JIT=1`` runs the kernels as plain Python (for debugging).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numba
import numpy as np

F = TypeVar("F", bound=Callable[..., Any])


def kernel(fn: F) -> F:
    """Compile ``fn`` lazily (at its first call, per argument types) in nopython mode."""
    return numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy")(fn)  # type: ignore[no-any-return]


_EPS_NORM = 1e-12  # zero vectors stay zero


@kernel
def unit_norm_in_place(v: np.ndarray) -> None:
    """Scale the float32 vector ``v`` to unit L2 norm (``v / max(|v|, 1e-12)``, squares summed in
    order), the normalisation every compiled embedding path uses."""
    ss = np.float32(0.0)
    for c in range(v.shape[0]):
        ss += v[c] * v[c]
    norm = max(np.sqrt(ss), np.float32(_EPS_NORM))
    for c in range(v.shape[0]):
        v[c] = v[c] / norm


def precompile() -> float:
    """Compile (or load from the cache) every kernel for the argument types the pipeline passes,
    by post-processing and tracking a few synthetic frames with and without embeddings; returns
    the seconds it took.  ``make`` runs it once after installing (``python -m cstrack.jit``), so
    that test processes and pipeline workers start from a filled cache."""
    import time

    from cstrack.detection import Detections
    from cstrack.model.postprocess import PostprocessConfig, postprocess_image
    from cstrack.tracker import Tracker

    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    pred = np.zeros((64, 6), np.float32)
    pred[:, :2] = rng.uniform(20, 300, (64, 2))
    pred[:, 2:4] = rng.uniform(10, 60, (64, 2))
    pred[:, 4:] = rng.uniform(0.4, 1.0, (64, 2))
    postprocess_image(pred, rng.standard_normal((40, 40, 16)).astype(np.float32), PostprocessConfig())
    boxes = np.array([[10, 10, 50, 110], [200, 20, 240, 120], [60, 10, 100, 110], [62, 12, 102, 112]], np.float32)
    emb = rng.standard_normal((4, 16)).astype(np.float32)
    for with_emb in (True, False):
        tracker = Tracker(frame_rate=30.0)
        for t in range(8):  # births, confirmations, a lost track, overlapping candidates
            keep = slice(None) if t % 4 else slice(0, 3)
            dets = Detections(boxes[keep] + t, np.full(len(boxes[keep]), 0.9, np.float32), emb[keep] if with_emb else None)
            tracker.update_arrays(dets)
    return time.perf_counter() - t0


if __name__ == "__main__":
    print(f"kernels ready in {precompile():.1f} s")
