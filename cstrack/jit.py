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

This module is a leaf: the kernels live beside the reference functions they compute (the Kalman
steps in :mod:`cstrack.tracker.kalman`, costs and assignment in :mod:`cstrack.tracker.matching`,
bookkeeping in :mod:`cstrack.tracker.track`, score filter, NMS and embedding gather in
:mod:`cstrack.model.postprocess`), and :mod:`cstrack.precompile` fills the cache.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numba
import numpy as np

F = TypeVar("F", bound=Callable[..., Any])


def kernel(fn: F) -> F:
    """Compile ``fn`` lazily (at its first call, per argument types) in nopython mode."""
    return numba.njit(cache=True, nogil=True, fastmath=False, error_model="numpy")(fn)  # type: ignore[return-value]  # a numba Dispatcher, called like fn


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
