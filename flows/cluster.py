"""Where a flow's tasks run: a Dask task runner for an existing cluster or a LocalCluster.

The flows build the runner from their parameters at run time (the address is a parameter or
``$CSTRACK_DASK_ADDRESS``, never code), so one flow definition serves the embedded LocalCluster, a
``dask scheduler`` + ``dask worker`` set on loopback, dask-kubernetes or dask-jobqueue.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Collection, Iterator
from typing import Any

from prefect_dask import DaskTaskRunner

from flows.params import ClusterSpec
from tasks.records import TrackJob
from tasks.runtime import usable_cores

ADDRESS_ENV = "CSTRACK_DASK_ADDRESS"
# The reason distributed gives a client's futures when its scheduler connection breaks.
LOST_REASON = "scheduler-connection-lost"
# Dask worker resources (stack.commands: GPU workers declare GPU=1, CPU workers CPU=1).
GPU = "GPU"
CPU = "CPU"
# Detection modes in which the model runs whatever the appearance setting: private (the detector),
# cached (it fills a missing cache of network outputs before replaying it).
MODEL_MODES = ("private", "cached")


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


# -- where a task runs: GPU workers ------------------------------------------------------------------
def needs_gpu(device: str, mode: str, appearance: bool = False) -> bool:
    """Whether a task asks for a GPU worker: its model runs (``mode`` private or cached, or gt /
    public with ``appearance`` embeddings) and the model's ``device`` is not ``cpu`` (``cuda``,
    ``cuda:N``, or ``auto``, which is CUDA on a GPU worker).  Everything that needs no model (gt and
    public modes without appearance, ``replay`` of cached outputs such as tune's trials,
    ``evaluate``) never does."""
    if device == "cpu":
        return False
    return mode in MODEL_MODES or (mode in ("gt", "public") and appearance)


def declared_resources(client: Any) -> set[str]:
    """The resource names the cluster's workers declare (``distributed.Client``; empty for a
    LocalCluster, ``{"CPU", "GPU"}`` for the stack with GPU workers)."""
    workers = client.scheduler_info(n_workers=-1).get("workers", {})
    return {str(r) for w in workers.values() for r in (w.get("resources") or {})}


def placement(gpu: bool, declared: Collection[str]) -> dict[str, float]:
    """The Dask resources a task asks for: ``{"GPU": 1}`` when it needs a GPU and the cluster has
    GPU workers; ``{"CPU": 1}`` when it does not and the cluster's CPU workers declare CPU (so that
    it stays off the GPU workers); nothing otherwise (a cluster that declares no resources runs
    every task anywhere, and a task never waits for a resource no worker has)."""
    if gpu and GPU in declared:
        return {GPU: 1}
    if not gpu and CPU in declared:
        return {CPU: 1}
    return {}


def job_device(job: TrackJob) -> str:
    """The device of a tracking job's model: concrete (``cpu``, ``cuda:N``), resolved by the flow."""
    return job.model.device


def job_resources(job: TrackJob, declared: Collection[str]) -> dict[str, float]:
    """What the tracking task of ``job`` asks for on a cluster whose workers declare ``declared``."""
    return placement(needs_gpu(job_device(job), job.mode, job.uses_model), declared)


@contextlib.contextmanager
def placed(resources: dict[str, float]) -> Iterator[None]:
    """Tasks submitted inside ask for ``resources`` (``dask.annotate``: Prefect's Dask runner submits
    in the calling thread, and distributed merges these annotations into each submission)."""
    if not resources:
        yield
        return
    import dask

    with dask.annotate(resources=resources):
        yield
