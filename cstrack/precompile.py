"""Fill numba's on-disk cache with every compiled kernel (``python -m cstrack.precompile``).

``make`` runs it once after installing, so that test processes and pipeline workers load the
kernels (~0.4 s) instead of each compiling its own (~10 s).  Each concept warms up its own kernels
with the argument types the pipeline passes: the letterbox resize on a small frame, post-processing
on a synthetic prediction, the tracker on a few synthetic frames with and without embeddings.
"""

from __future__ import annotations

import time


def precompile() -> float:
    """Compile (or load from the cache) every kernel; returns the seconds it took."""
    from cstrack.data.letterbox import warm_up as warm_up_letterbox
    from cstrack.model.postprocess import warm_up as warm_up_postprocess
    from cstrack.tracker.tracker import warm_up as warm_up_tracker

    t0 = time.perf_counter()
    warm_up_letterbox()
    warm_up_postprocess()
    warm_up_tracker()
    return time.perf_counter() - t0


if __name__ == "__main__":
    print(f"kernels ready in {precompile():.1f} s")
