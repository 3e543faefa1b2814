"""Where a flow's tasks run: a Dask task runner for an existing cluster or a LocalCluster.

The flows build the runner from their parameters at run time (the address is a parameter or
``$CSTRACK_DASK_ADDRESS``, never code), so one flow definition serves the embedded LocalCluster, a
``dask scheduler`` + ``dask worker`` set on loopback, dask-kubernetes or dask-jobqueue.
"""

from __future__ import annotations

import os

from prefect_dask import DaskTaskRunner

from flows.params import ClusterSpec
from tasks.runtime import usable_cores

ADDRESS_ENV = "CSTRACK_DASK_ADDRESS"
# The reason distributed gives a client's futures when its scheduler connection breaks.
LOST_REASON = "scheduler-connection-lost"


class SchedulerLostError(RuntimeError):
    """The run's Dask scheduler could not be reached, or went away during the run."""


def scheduler_unreachable(address: str, exc: BaseException) -> SchedulerLostError:
    return SchedulerLostError(
        f"Dask scheduler {address} unreachable ({type(exc).__name__}: {exc}); start it "
        f"(`python -m stack up`) or point cluster.dask_address / ${ADDRESS_ENV} at a running one"
    )


def scheduler_lost(address: str, finished: int, total: int) -> SchedulerLostError:
    return SchedulerLostError(
        f"Dask scheduler {address} lost mid-run: its connection broke with {total - finished} of {total} "
        f"sequence(s) unfinished; the {finished} finished are cached and a re-run after "
        f"`python -m stack up` skips them (nothing of this run was catalogued)"
    )


def is_connection_loss(exc: BaseException) -> bool:
    """A future cancelled because the client lost its scheduler (not a task's own failure)."""
    return getattr(exc, "reason", None) == LOST_REASON


def resolve_address(spec: ClusterSpec) -> str | None:
    """The scheduler address: the parameter, else ``$CSTRACK_DASK_ADDRESS``, else ``None`` (local)."""
    return spec.dask_address or os.environ.get(ADDRESS_ENV) or None


def local_cluster_kwargs(spec: ClusterSpec) -> dict[str, object]:
    """LocalCluster settings: processes with one thread each by default, loopback only, no dashboard
    (pipeline_notes.md).  The scheduler serves /health over HTTP even without a dashboard, on
    0.0.0.0:8787 by default: it is bound to a free loopback port instead."""
    return {
        "n_workers": spec.local_workers or usable_cores(),
        "threads_per_worker": spec.threads_per_worker,
        "processes": True,
        "host": "127.0.0.1",
        "dashboard_address": "127.0.0.1:0",
        "worker_dashboard_address": "127.0.0.1:0",
        "scheduler_kwargs": {"dashboard": False},
        "preload": ["tasks.warmup"],
    }


def task_runner_for(spec: ClusterSpec) -> DaskTaskRunner:
    """A (not yet started) :class:`DaskTaskRunner` for ``spec``; use it as a context manager."""
    address = resolve_address(spec)
    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(cluster_class="distributed.LocalCluster", cluster_kwargs=local_cluster_kwargs(spec))


def describe(spec: ClusterSpec) -> str:
    address = resolve_address(spec)
    if address:
        return f"Dask cluster at {address}"
    kw = local_cluster_kwargs(spec)
    return f"LocalCluster {kw['n_workers']} worker(s) x {kw['threads_per_worker']} thread(s)"
