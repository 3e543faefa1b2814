"""Fixtures with real services (see :mod:`tests.flows.harness`): one Prefect server and one Dask
cluster per test module, stopped at module teardown even when a test fails."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.flows.harness import DaskCluster, PrefectStack, Services, clean_env, start_dask, start_prefect_server


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """A module's service registry; everything it started is stopped at module teardown."""
    root = tmp_path_factory.mktemp("services")
    svc = Services(root, clean_env())
    try:
        yield svc
    finally:
        svc.stop_all()


@pytest.fixture(scope="module")
def prefect_stack(services: Services) -> PrefectStack:
    """A Prefect server on PostgreSQL (a cluster of its own) on a free loopback port, with a temporary
    PREFECT_HOME and result storage."""
    return start_prefect_server(services, services.root)


@pytest.fixture(scope="module")
def dask_cluster(prefect_stack: PrefectStack, services: Services) -> DaskCluster:
    """``dask scheduler`` + two one-thread ``dask worker`` processes (named w1, w2) pointed at the
    module's Prefect server (the workers run Prefect tasks and report to it)."""
    return start_dask(services, ["w1", "w2"])
