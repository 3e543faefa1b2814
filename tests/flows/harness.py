"""Starting and stopping real services for the pipeline tests: a Prefect server, a process worker,
a Dask scheduler and Dask workers, all on 127.0.0.1 with free ports and temporary PREFECT_HOME /
result storage (fixtures in ``conftest.py``).

Every service is started in its own process group (``start_new_session``) with its output in a log
file; teardown (which runs even when a test fails) sends SIGTERM to the group and to every
descendant found at that moment (the process worker starts flow runs in sessions of their own),
then SIGKILL to whatever is left.  The command lines come from :mod:`stack.commands`, the same
templates ``docker/compose.yaml`` is checked against.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from stack.commands import DASK_SCHEDULER, DASK_WORKER, PREFECT_SERVER, PREFECT_WORKER, ServiceCommand
from stack.postgres import PostgresCluster, stop_postmaster

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LOOPBACK = "127.0.0.1"
# Start-up limits: generous because other jobs share the 2 cores (server ready in 5-20 s here).
SERVER_START_S = 120.0
WORKER_START_S = 90.0


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """The current environment without any PREFECT_* / DASK_* setting, plus ``extra``.

    A developer's own profile (PREFECT_API_URL, ...) must never leak into the services under test.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "DASK_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


@dataclass
class Service:
    """One started process (group): its command, log file and Popen handle."""

    name: str
    argv: list[str]
    log: Path
    proc: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def _family(self) -> list[psutil.Process]:
        try:
            root = psutil.Process(self.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the process group and to every descendant (now, no waiting)."""
        family = self._family()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)
        for p in family:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                p.send_signal(sig)

    def stop(self, grace_s: float = 15.0) -> None:
        """SIGTERM the group and descendants, then SIGKILL what is still alive after ``grace_s``."""
        family = self._family()
        if self.alive() or family:
            self.kill(signal.SIGTERM)
            _, still = psutil.wait_procs(family, timeout=grace_s)
            for p in still:
                with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                    p.kill()
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)


@dataclass
class Services:
    """Starts services and stops them all (newest first)."""

    root: Path
    env: dict[str, str]
    started: list[Service] = field(default_factory=list)
    cleanups: list[Callable[[], None]] = field(default_factory=list)  # run after every service stopped

    def start(self, command: ServiceCommand, *, log_name: str | None = None, cwd: Path | None = None,
              env: dict[str, str] | None = None, **values: object) -> Service:
        argv = command.render(**values)
        argv[0] = str(BIN / argv[0])  # the console script of this environment
        log = self.root / "logs" / f"{log_name or command.name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as fh:
            proc = subprocess.Popen(
                argv, cwd=cwd or REPO, env=env or self.env, stdout=fh, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
        svc = Service(log_name or command.name, argv, log, proc)
        self.started.append(svc)
        return svc

    def stop_all(self) -> None:
        errors = []
        for svc in reversed(self.started):
            try:
                svc.stop()
            except Exception as exc:  # keep stopping the others
                errors.append(f"{svc.name}: {exc!r}")
        self.started.clear()
        for fn in reversed(self.cleanups):
            fn()
        self.cleanups.clear()
        if errors:
            raise RuntimeError("could not stop: " + "; ".join(errors))


def wait_until(what: str, check: Callable[[], Any], timeout_s: float, service: Service | None = None,
               interval_s: float = 0.5) -> Any:
    """Poll ``check`` until it returns a truthy value; fail naming ``what`` (and the log tail)."""
    deadline = time.monotonic() + timeout_s
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        if service is not None and not service.alive():
            pytest.fail(f"{service.name} exited with {service.proc.returncode} while waiting for {what}:\n"
                        f"{service.log_tail()}")
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # not ready yet
            last_exc = exc
        time.sleep(interval_s)
    tail = service.log_tail() if service is not None else ""
    pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what} (last error: {last_exc!r})\n{tail}")


@dataclass
class PrefectStack:
    """A running Prefect server (and optionally a process worker) with its client environment."""

    api_url: str
    env: dict[str, str]
    services: Services
    server: Service
    root: Path
    postgres: PostgresCluster | None = None

    def restart_postgres(self) -> None:
        """Fast shutdown of the PostgreSQL cluster, then the same cluster started again (same port)."""
        assert self.postgres is not None, "this server runs on SQLite"
        old = next(s for s in self.services.started if s.name == "postgres")
        stop_postmaster(old.pid)
        old.proc.wait(timeout=30)
        new = Service("postgres", old.argv, old.log, self.postgres.start())
        self.services.started[self.services.started.index(old)] = new
        wait_until("PostgreSQL accepting connections again", self.postgres.ready, SERVER_START_S, new)

    def cli(self, *args: str, timeout_s: float = 300.0, check: bool = True,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``prefect ARGS`` against this server from the repository root."""
        cmd = [str(BIN / "prefect"), *args]
        out = subprocess.run(cmd, cwd=REPO, env={**self.env, **(env or {})}, capture_output=True, text=True,
                             timeout=timeout_s, check=False)
        if check and out.returncode != 0:
            pytest.fail(f"{' '.join(args)} exited {out.returncode}:\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}")
        return out

    def api(self, method: str, path: str, json: Any = None) -> Any:
        r = httpx.request(method, f"{self.api_url}{path}", json=json, timeout=30.0)
        r.raise_for_status()
        return r.json() if r.content else None

    def start_worker(self, pool: str, name: str = "worker-1") -> Service:
        """A process worker on ``pool``; returns once the server lists it."""
        worker = self.services.start(PREFECT_WORKER, log_name=f"prefect-{name}", pool=pool, name=name)

        def listed() -> bool:
            rows = self.api("POST", f"/work_pools/{pool}/workers/filter", json={})
            return any(r["name"] == name for r in rows)

        wait_until(f"Prefect worker {name} on {pool}", listed, WORKER_START_S, worker)
        return worker


def start_postgres(services: Services) -> PostgresCluster:
    """A PostgreSQL cluster of its own (stack.postgres) on a free port, registered as a service: it
    is stopped after the services started later (the Prefect server), and its folder removed."""
    pg_root = Path(tempfile.mkdtemp(prefix="cstrack-pg-"))  # not under pytest's private 0700 folder
    os.chmod(pg_root, 0o755)
    services.cleanups.append(lambda: shutil.rmtree(pg_root, ignore_errors=True))
    pg = PostgresCluster.at(pg_root, free_port())
    proc = pg.start()
    svc = Service("postgres", pg.argv(), pg.log, proc)
    services.started.append(svc)
    wait_until("PostgreSQL accepting connections", pg.ready, SERVER_START_S, svc)
    pg.ensure_database()
    return pg


def start_prefect_server(services: Services, root: Path, backend: str = "postgres") -> PrefectStack:
    """The Prefect server on PostgreSQL (what a team deploys) or on SQLite (the demo's default)."""
    port = free_port()
    home = root / "prefect-home"
    home.mkdir(parents=True, exist_ok=True)
    api_url = f"http://{LOOPBACK}:{port}/api"
    sqlite = f"sqlite+aiosqlite:///{home / 'prefect.db'}"
    pg = start_postgres(services) if backend == "postgres" else None
    db_url = pg.url() if pg is not None else sqlite
    server_env = clean_env(
        PREFECT_HOME=str(home),
        PREFECT_API_DATABASE_CONNECTION_URL=db_url,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_UI_ENABLED="false",
        PREFECT_SERVER_LOGGING_LEVEL="WARNING",
    )
    server = services.start(PREFECT_SERVER, env=server_env, host=LOOPBACK, port=port)

    def healthy() -> bool:
        return httpx.get(f"{api_url}/health", timeout=2.0).status_code == 200

    wait_until("the Prefect server /api/health", healthy, SERVER_START_S, server)
    client_env = clean_env(
        PREFECT_HOME=str(home),
        PREFECT_API_URL=api_url,
        PREFECT_RESULTS_LOCAL_STORAGE_PATH=str(root / "prefect-results"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        # Workers poll every second (default 10 s) so that runs start promptly in tests.
        PREFECT_WORKER_QUERY_SECONDS="1",
        PREFECT_WORKER_HEARTBEAT_SECONDS="5",
        PREFECT_LOGGING_LEVEL="INFO",
        # Keep the bundled Dask config from opening dashboards or writing outside the temp dir.
        DASK_TEMPORARY_DIRECTORY=str(root / "dask-tmp"),
    )
    services.env = client_env
    return PrefectStack(api_url, client_env, services, server, root, pg)


@dataclass
class DaskCluster:
    """A ``dask scheduler`` and named ``dask worker`` processes on loopback."""

    address: str
    services: Services
    scheduler: Service
    workers: dict[str, Service] = field(default_factory=dict)

    def add_worker(self, name: str) -> Service:
        svc = self.services.start(DASK_WORKER, log_name=f"dask-{name}", scheduler=self.address, host=LOOPBACK,
                                  name=name, http=f"{LOOPBACK}:0")
        self.workers[name] = svc
        return svc

    def worker_names(self) -> set[str]:
        from distributed import Client

        with Client(self.address, timeout=10) as c:
            return {w["name"] for w in c.scheduler_info(n_workers=-1)["workers"].values()}

    def wait_for_workers(self, names: set[str], timeout_s: float = WORKER_START_S) -> None:
        wait_until(f"Dask workers {sorted(names)}", lambda: names <= self.worker_names(), timeout_s, self.scheduler,
                   interval_s=1.0)


def start_dask(services: Services, worker_names: list[str]) -> DaskCluster:
    port = free_port()
    address = f"tcp://{LOOPBACK}:{port}"
    scheduler = services.start(DASK_SCHEDULER, host=LOOPBACK, port=port, http=f"{LOOPBACK}:0")

    def listening() -> bool:
        with socket.create_connection((LOOPBACK, port), timeout=1.0):
            return True

    wait_until("the Dask scheduler port", listening, WORKER_START_S, scheduler)
    cluster = DaskCluster(address, services, scheduler)
    for name in worker_names:
        cluster.add_worker(name)
    cluster.wait_for_workers(set(worker_names))
    return cluster
