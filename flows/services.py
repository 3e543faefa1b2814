"""The command lines of the long-running services the pipeline needs, declared once.

The same templates are used by the end-to-end test harness (``tests/flows/conftest.py``, which
starts them on 127.0.0.1) and checked against ``docker/compose.yaml`` (``tests/flows/
test_compose_file.py``), so what the tests run is what the containers run.  ``{placeholders}`` are
filled by :meth:`ServiceCommand.render`; everything else is literal.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import string
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

_FIELD = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class ServiceCommand:
    """An argv template: ``argv[0]`` is a console script of this package's environment."""

    name: str
    argv: tuple[str, ...]

    @property
    def fields(self) -> tuple[str, ...]:
        """The placeholder names, in order of first appearance."""
        seen: list[str] = []
        for part in self.argv:
            for f in _FIELD.findall(part):
                if f not in seen:
                    seen.append(f)
        return tuple(seen)

    def render(self, **values: object) -> list[str]:
        """The argv with every placeholder filled; a missing or unknown value raises ``KeyError``."""
        unknown = set(values) - set(self.fields)
        if unknown:
            raise KeyError(f"{self.name}: unknown placeholder(s) {sorted(unknown)}")
        fmt = string.Formatter()
        return [fmt.vformat(part, (), {k: str(v) for k, v in values.items()}) for part in self.argv]

    def match(self, argv: list[str] | tuple[str, ...]) -> dict[str, str] | None:
        """The placeholder values if ``argv`` is an instance of this template, else ``None``.

        A placeholder used twice must take the same value both times.
        """
        if len(argv) != len(self.argv):
            return None
        values: dict[str, str] = {}
        for tmpl, got in zip(self.argv, argv, strict=True):
            names = _FIELD.findall(tmpl)
            literals = _FIELD.split(tmpl)[::2]
            pattern = "(.+?)".join(re.escape(lit) for lit in literals)
            m = re.fullmatch(pattern, str(got))
            if m is None:
                return None
            for name, val in zip(names, m.groups(), strict=True):
                if values.setdefault(name, val) != val:
                    return None
        return values


# The Prefect API server (SQLite under $PREFECT_HOME unless PREFECT_API_DATABASE_CONNECTION_URL
# points at Postgres, as in docker/compose.yaml).
PREFECT_SERVER = ServiceCommand("prefect-server", ("prefect", "server", "start", "--host", "{host}", "--port", "{port}"))

# A process worker polling a work pool; it creates the pool (type process) when it is missing.
PREFECT_WORKER = ServiceCommand(
    "prefect-worker", ("prefect", "worker", "start", "--pool", "{pool}", "--type", "process", "--name", "{name}")
)

# The Dask scheduler.  Even with --no-dashboard it serves /health and /metrics over HTTP, on
# 0.0.0.0:8787 unless --dashboard-address says otherwise: the address is always given.
DASK_SCHEDULER = ServiceCommand(
    "dask-scheduler",
    ("dask", "scheduler", "--host", "{host}", "--port", "{port}", "--no-dashboard", "--dashboard-address", "{http}"),
)

# One Dask worker process (under a nanny) with one thread: track-all tasks set torch to their
# share of the cores (pipeline_notes.md: several workers each using every core thrash).  A worker
# whose scheduler disappears exits after --death-timeout seconds; tasks.warmup imports the tracking
# stack at start-up instead of in the first task of a run.
DASK_WORKER = ServiceCommand(
    "dask-worker",
    (
        "dask", "worker", "{scheduler}", "--host", "{host}", "--name", "{name}", "--nthreads", "1",
        "--nworkers", "1", "--no-dashboard", "--dashboard-address", "{http}", "--death-timeout", "60",
        "--preload", "tasks.warmup",
    ),
)

# Work pools (created when missing) and every deployment of flows/prefect.yaml: the Makefile target,
# run from the repository root (-o: never rebuild the virtualenv from here).
DEPLOY = ServiceCommand("deploy", ("make", "-o", ".venv/.installed", "deploy"))

SERVICES: dict[str, ServiceCommand] = {
    c.name: c for c in (PREFECT_SERVER, PREFECT_WORKER, DASK_SCHEDULER, DASK_WORKER, DEPLOY)
}


def free_loopback_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def temporary_prefect_server(home: Path, timeout_s: float = 180.0, backend: str = "sqlite") -> Iterator[dict[str, str]]:
    """Run :data:`PREFECT_SERVER` on a free loopback port with its database under ``home``; yield
    the client settings (``PREFECT_API_URL``, ``PREFECT_HOME``, ...) and stop it (its whole process
    group) on exit.  For the demo and benchmarks: one server for the flow and every Dask worker
    (pipeline_notes.md: without ``PREFECT_API_URL`` each process starts a temporary server of its own).

    ``backend``: ``sqlite`` (the demo's default: a file under ``home``) or ``postgres`` (a throw-away
    cluster of :func:`flows.postgres.temporary_postgres`, stopped after the server).
    """
    if backend not in ("sqlite", "postgres"):
        raise ValueError(f"backend: 'sqlite' or 'postgres', got {backend!r}")
    with contextlib.ExitStack() as stack:
        if backend == "postgres":
            from flows.postgres import temporary_postgres

            url = stack.enter_context(temporary_postgres()).url()
        else:
            url = f"sqlite+aiosqlite:///{home / 'prefect.db'}"
        yield from _temporary_prefect_server(home, timeout_s, url)


def _temporary_prefect_server(home: Path, timeout_s: float, db_url: str) -> Iterator[dict[str, str]]:
    home.mkdir(parents=True, exist_ok=True)
    port = free_loopback_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    settings = {
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_RESULTS_LOCAL_STORAGE_PATH": str(home / "results"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    # retryable database errors ("database is locked" on SQLite) logged: the benchmark counts them
    env = {**clean, **settings, "PREFECT_API_DATABASE_CONNECTION_URL": db_url, "PREFECT_UI_ENABLED": "false",
           "PREFECT_SERVER_LOGGING_LEVEL": "WARNING", "PREFECT_API_LOG_RETRYABLE_ERRORS": "true"}
    argv = PREFECT_SERVER.render(host="127.0.0.1", port=port)
    argv[0] = str(Path(sys.executable).parent / argv[0])
    with open(home / "server.log", "ab") as log:
        proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"prefect server exited with {proc.returncode}; see {home / 'server.log'}")
            try:
                with urllib.request.urlopen(f"{settings['PREFECT_API_URL']}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"prefect server not healthy after {timeout_s:.0f} s; see {home / 'server.log'}")
            time.sleep(0.5)
        yield settings
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


if __name__ == "__main__":  # python -m flows.services up|down|status (flows/stack.py)
    from flows.stack import main

    sys.exit(main())
