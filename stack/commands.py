"""The command lines of the long-running services the pipeline needs, declared once.

The same templates are used by the end-to-end test harness (``tests/flows/conftest.py``, which
starts them on 127.0.0.1) and checked against ``docker/compose.yaml`` (``tests/stack/
test_compose_file.py``), so what the tests run is what the containers run.  ``{placeholders}`` are
filled by :meth:`ServiceCommand.render`; everything else is literal.  ``python -m stack
up|down|status`` runs the stack (:mod:`stack.local`); a temporary Prefect server for the demo and
benchmarks is :func:`stack.temporary.temporary_prefect_server`.
"""

from __future__ import annotations

import re
import socket
import string
from dataclasses import dataclass

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
