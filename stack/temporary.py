"""A temporary Prefect server (:data:`stack.commands.PREFECT_SERVER`) for the demo, ``python -m
flows`` without a server, tests and benchmarks: SQLite under a folder of the caller's, or a
throw-away PostgreSQL cluster.

Its start-up limit is Prefect's own setting for its temporary server,
``PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS`` (Prefect's default, 20 s, is too short on a
loaded 2-core machine, where the server needed 30-38 s): :func:`startup_limit` reads it, with a
default of :data:`DEFAULT_STARTUP_S`, and a server that does not come up in time raises
:class:`ServerStartError`, whose message is one line naming the setting.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

from cstrack.errors import ConfigError
from stack.commands import PREFECT_SERVER, free_loopback_port

# Prefect's setting (prefect.settings.models.server.ephemeral.ServerEphemeralSettings.startup_timeout_seconds)
STARTUP_ENV = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
# Ours when it is not set: the server took 5-25 s quiet and 30-38 s loaded on the shared 2-core VM.
DEFAULT_STARTUP_S = 180


class ServerStartError(RuntimeError):
    """The temporary server exited or did not answer in time (a one-line message naming what to set)."""


def startup_limit(environ: Mapping[str, str] | None = None) -> int:
    """Seconds to wait for the server: ``$PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS`` (a
    positive whole number, as Prefect reads it), else :data:`DEFAULT_STARTUP_S`."""
    env = os.environ if environ is None else environ
    text = env.get(STARTUP_ENV, "").strip()
    if not text:
        return DEFAULT_STARTUP_S
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{STARTUP_ENV}={text!r}: expected a whole number of seconds") from None
    if value < 1:
        raise ConfigError(f"{STARTUP_ENV}={text!r}: expected at least 1 second")
    return value


@contextlib.contextmanager
def temporary_prefect_server(home: Path, timeout_s: float | None = None,
                             backend: str = "sqlite") -> Iterator[dict[str, str]]:
    """Run :data:`PREFECT_SERVER` on a free loopback port with its database under ``home``; yield
    the client settings (``PREFECT_API_URL``, ``PREFECT_HOME``, ...) and stop it (its whole process
    group) on exit.  For the demo and benchmarks: one server for the flow and every Dask worker
    (pipeline_notes.md: without ``PREFECT_API_URL`` each process starts a temporary server of its own).

    ``backend``: ``sqlite`` (the demo's default: a file under ``home``) or ``postgres`` (a throw-away
    cluster of :func:`stack.postgres.temporary_postgres`, stopped after the server).  ``timeout_s``:
    the start-up limit, :func:`startup_limit` when ``None``; past it (or when the server exits)
    :class:`ServerStartError` is raised and the server is stopped.
    """
    if backend not in ("sqlite", "postgres"):
        raise ValueError(f"backend: 'sqlite' or 'postgres', got {backend!r}")
    if timeout_s is None:
        timeout_s = startup_limit()
    with contextlib.ExitStack() as resources:
        if backend == "postgres":
            from stack.postgres import temporary_postgres

            url = resources.enter_context(temporary_postgres()).url()
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
                raise ServerStartError(f"the temporary Prefect server exited with status {proc.returncode} while "
                                       f"starting; see {home / 'server.log'}")
            try:
                with urllib.request.urlopen(f"{settings['PREFECT_API_URL']}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise ServerStartError(
                    f"the temporary Prefect server did not answer within {timeout_s:.0f} s (see "
                    f"{home / 'server.log'}); set {STARTUP_ENV} to more seconds, or start a server "
                    f"(`python -m stack up`) and point PREFECT_API_URL at it")
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
