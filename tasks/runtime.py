"""Where a task runs: the Dask worker's identity and its share of the host's cores.

Several one-thread Dask workers share a host; a task that let torch use every core would thrash
the others (pipeline_notes.md: per-frame spikes to 0.5 s), so each task sets torch to
``usable cores // Dask threads on this host`` (at least 1) unless told otherwise.
"""

from __future__ import annotations

import os
import socket
from typing import Any

from tasks.records import WorkerIdentity


def usable_cores() -> int:
    """Cores this process may run on (CPU affinity / cgroup cpuset aware)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _dask_worker() -> Any | None:
    try:
        from distributed import get_worker

        return get_worker()
    except (ImportError, ValueError):  # not inside a Dask task
        return None


def worker_identity() -> WorkerIdentity:
    """Where this task runs: the Dask worker's name (or address, or ``local``), host and pid."""
    w = _dask_worker()
    name = address = None
    if w is not None:
        address = str(w.address)
        name = str(w.name) if w.name is not None else address
    return WorkerIdentity(worker=name or "local", worker_address=address, host=socket.gethostname(), pid=os.getpid())


def dask_threads_on_host() -> int | None:
    """Dask worker threads on this worker's host according to the scheduler (``None`` outside Dask)."""
    w = _dask_worker()
    if w is None:
        return None
    try:
        from distributed import get_client

        info = get_client().scheduler_info(n_workers=-1)["workers"]
        host = str(w.address).split("://")[-1].rsplit(":", 1)[0]
        total = sum(int(v.get("nthreads", 1)) for v in info.values() if str(v.get("host")) == host)
        return total or int(w.state.nthreads)
    except Exception:  # scheduler unreachable for a moment: fall back to this worker alone
        return int(w.state.nthreads)


def torch_thread_share(explicit: int | None = None) -> int:
    """Threads torch should use in this task: ``explicit``, else cores / Dask threads on the host."""
    if explicit:
        return int(explicit)
    threads = dask_threads_on_host()
    return max(1, usable_cores() // threads) if threads else usable_cores()


def set_torch_threads(explicit: int | None = None) -> int:
    """Apply :func:`torch_thread_share` to torch (intra-op) and OpenCV (decode, resize) and
    return it."""
    import cv2
    import torch

    n = torch_thread_share(explicit)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    cv2.setNumThreads(n)
    return n
