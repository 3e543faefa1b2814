"""Dask worker preload (``dask worker --preload tasks.warmup``): import the tracking stack when the
worker starts, not inside the first task of every run.

A cold worker spends several seconds importing torch, Prefect's task engine and the model code before
its first frame; a long-lived cluster pays that once here.  The LocalCluster of the flows preloads it
too (:func:`flows.cluster.local_cluster_kwargs`).
"""

from __future__ import annotations

from typing import Any


def dask_setup(worker: Any) -> None:
    """Called by distributed in each worker process before it accepts tasks."""
    import prefect.task_engine  # noqa: F401
    import torch  # noqa: F401

    import cstrack.model.detector
    import cstrack.run.sequence  # noqa: F401
    import tasks.track  # noqa: F401
