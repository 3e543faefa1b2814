"""A PostgreSQL cluster of our own for the Prefect server: initialised, started and stopped by us.

No server is assumed to run on the machine: the binaries (``initdb``, ``postgres``, ``pg_isready``,
``psql``; Debian's ``/usr/lib/postgresql/<version>/bin``) start a cluster whose data directory
lives under a folder we own, listening on 127.0.0.1 only (no Unix socket), with password
(SCRAM) authentication.  PostgreSQL refuses to run as root: when we are root, ``initdb`` and
``postgres`` run as an unprivileged user (``$CSTRACK_PG_USER``, else ``postgres``, else ``nobody``)
who owns the data directory; every folder above it must then be searchable by that user, which is
checked first (a private parent such as ``/tmp/pytest-of-root`` is named in the error).

Layout under ``root``: ``data/`` (the cluster), ``password`` (the role's password, mode 0600),
``postgres.log``.  ``postgres`` runs in the foreground of its own session, so the process we start
is the postmaster: its pid is what we record and signal.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cstrack.errors import ConfigError

PG_BIN_ENV = "CSTRACK_PG_BIN"
PG_USER_ENV = "CSTRACK_PG_USER"
ROLE = "prefect"  # the role and the database the Prefect server uses (docker/compose.yaml: the same)
DATABASE = "prefect"
# Versions looked for under /usr/lib/postgresql (Debian/Ubuntu layout), newest first; 15 is the one here.
_DEBIAN_VERSIONS = (17, 16, 15, 14)


def find_bin_dir() -> Path:
    """The folder with ``initdb`` and ``postgres``: ``$CSTRACK_PG_BIN``, Debian's layout, or ``PATH``."""
    candidates: list[Path] = []
    if os.environ.get(PG_BIN_ENV):
        candidates.append(Path(os.environ[PG_BIN_ENV]))
    candidates += [Path(f"/usr/lib/postgresql/{v}/bin") for v in _DEBIAN_VERSIONS]
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for c in candidates:
        if (c / "initdb").is_file() and (c / "postgres").is_file():
            return c
    raise ConfigError(f"PostgreSQL binaries (initdb, postgres) not found in {[str(c) for c in candidates]}; "
                      f"set {PG_BIN_ENV}")


@dataclass(frozen=True)
class RunAs:
    """The account the PostgreSQL processes run as (``None`` fields: as ourselves)."""

    user: str | None = None
    uid: int | None = None
    gid: int | None = None

    def popen_kwargs(self) -> dict[str, Any]:
        if self.uid is None:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}


def run_as() -> RunAs:
    """Ourselves, unless we are root: then ``$CSTRACK_PG_USER``, ``postgres`` or ``nobody``."""
    if os.geteuid() != 0:
        return RunAs()
    names = [os.environ[PG_USER_ENV]] if os.environ.get(PG_USER_ENV) else ["postgres", "nobody"]
    for name in names:
        try:
            pw = pwd.getpwnam(name)
        except KeyError:
            continue
        return RunAs(name, pw.pw_uid, pw.pw_gid)
    raise ConfigError(f"running as root and none of the users {names} exists to run PostgreSQL as ({PG_USER_ENV})")


def _unsearchable_ancestor(path: Path, who: RunAs) -> Path | None:
    """The first folder above ``path`` that ``who`` may not enter (mode bits only, no ACLs)."""
    if who.uid is None:
        return None
    groups = {g.gr_gid for g in _groups_of(who.user or "")} | {who.gid}
    for folder in reversed(path.resolve().parents):
        st = folder.stat()
        if st.st_uid == who.uid:
            bit = stat.S_IXUSR
        elif st.st_gid in groups:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return folder
    return None


def _groups_of(user: str) -> list[Any]:
    import grp

    return [g for g in grp.getgrall() if user in g.gr_mem]


def log_file(root: Path) -> Path:
    """The server log of the cluster under ``root`` (known without the binaries: for ``status``)."""
    return Path(root) / "postgres.log"


@dataclass(frozen=True)
class PostgresCluster:
    """One cluster under ``root`` serving ``127.0.0.1:port``."""

    root: Path
    port: int
    bin_dir: Path

    @classmethod
    def at(cls, root: Path, port: int, bin_dir: Path | None = None) -> PostgresCluster:
        return cls(Path(root).resolve(), int(port), bin_dir or find_bin_dir())

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return log_file(self.root)

    @property
    def password_file(self) -> Path:
        return self.root / "password"

    def password(self) -> str:
        return self.password_file.read_text().strip()

    def url(self, driver: str = "postgresql+asyncpg") -> str:
        """The SQLAlchemy URL of the Prefect database (asyncpg: what the Prefect server uses)."""
        return f"{driver}://{ROLE}:{self.password()}@127.0.0.1:{self.port}/{DATABASE}"

    def initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").is_file()

    def init(self) -> bool:
        """``initdb`` the cluster unless it exists; ``True`` when it was created now."""
        if self.initialised():
            return False
        who = run_as()
        self.root.mkdir(parents=True, exist_ok=True)
        blocked = _unsearchable_ancestor(self.root, who)
        if blocked is not None:
            raise ConfigError(f"{self.root}: PostgreSQL runs as user {who.user} (it refuses root), who cannot enter "
                              f"{blocked}; choose a state folder under a path every user may traverse")
        if self.data_dir.exists():  # an initdb that stopped half-way: it wants an empty folder
            shutil.rmtree(self.data_dir)
        self.data_dir.mkdir(mode=0o700)
        if not self.password_file.exists():
            self.password_file.touch(mode=0o600)
            self.password_file.write_text(secrets.token_urlsafe(18) + "\n")
        if who.uid is not None:
            os.chown(self.data_dir, who.uid, who.gid or -1)
            os.chown(self.password_file, who.uid, who.gid or -1)
        argv = [str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-U", ROLE, f"--pwfile={self.password_file}",
                "--auth=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-instructions"]
        with open(self.log, "ab") as fh:
            done = subprocess.run(argv, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=False,
                                  cwd=self.root, **who.popen_kwargs())
        if done.returncode != 0:
            raise RuntimeError(f"initdb exited with {done.returncode}; see {self.log}")
        return True

    def argv(self) -> list[str]:
        """The postmaster in the foreground: TCP on 127.0.0.1 only, no Unix socket."""
        return [str(self.bin_dir / "postgres"), "-D", str(self.data_dir), "-h", "127.0.0.1", "-p", str(self.port),
                "-k", "", "-c", "max_connections=200"]

    def start(self) -> subprocess.Popen[bytes]:
        """Start the postmaster detached (own session, output in :attr:`log`); not yet ready."""
        if not self.initialised():
            self.init()
        with open(self.log, "ab") as fh:
            return subprocess.Popen(self.argv(), stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=self.data_dir, start_new_session=True, **run_as().popen_kwargs())

    def ready(self) -> bool:
        """``pg_isready`` says the server accepts connections."""
        argv = [str(self.bin_dir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port), "-d", "postgres",
                "-U", ROLE, "-t", "2"]
        return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, check=False).returncode == 0

    def wait_ready(self, proc_alive: Any, timeout_s: float = 60.0) -> None:
        """Poll :meth:`ready`; ``proc_alive()`` false means the postmaster exited (its log is named)."""
        deadline = time.monotonic() + timeout_s
        while not self.ready():
            if not proc_alive():
                raise RuntimeError(f"postgres exited during start-up; see {self.log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"postgres not ready after {timeout_s:.0f} s; see {self.log}")
            time.sleep(0.2)

    def ensure_database(self) -> None:
        """Create the Prefect database unless it exists (``psql`` as the role, over TCP)."""
        env = {**os.environ, "PGPASSWORD": self.password(), "PGCONNECT_TIMEOUT": "10"}
        base = [str(self.bin_dir / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", ROLE, "-d", "postgres",
                "-v", "ON_ERROR_STOP=1", "-tAc"]
        have = subprocess.run([*base, f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'"], env=env,
                              capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)
        if have.returncode != 0:
            raise RuntimeError(f"psql could not query the databases: {have.stderr.strip()}")
        if have.stdout.strip() != "1":
            made = subprocess.run([*base, f"CREATE DATABASE {DATABASE}"], env=env, capture_output=True, text=True,
                                  check=False, stdin=subprocess.DEVNULL)
            if made.returncode != 0:
                raise RuntimeError(f"psql could not create database {DATABASE}: {made.stderr.strip()}")


def stop_postmaster(pid: int, timeout_s: float = 30.0) -> None:
    """Fast shutdown (SIGINT: roll back open transactions, checkpoint, exit); SIGKILL the group after
    ``timeout_s`` (PostgreSQL then recovers from its WAL at the next start)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@contextlib.contextmanager
def temporary_postgres(timeout_s: float = 60.0) -> Iterator[PostgresCluster]:
    """A throw-away cluster on a free loopback port, removed on exit (tests, benchmarks).

    It lives in a new folder under the system temporary directory, not under the caller's: a
    private parent (pytest's ``/tmp/pytest-of-root`` is 0700) would lock the unprivileged user out.
    """
    import tempfile

    from stack.commands import free_loopback_port

    root = Path(tempfile.mkdtemp(prefix="cstrack-pg-"))
    os.chmod(root, 0o755)
    proc: subprocess.Popen[bytes] | None = None
    try:
        pg = PostgresCluster.at(root, free_loopback_port())
        proc = pg.start()
        pg.wait_ready(lambda: proc is not None and proc.poll() is None, timeout_s)
        pg.ensure_database()
        yield pg
    finally:
        if proc is not None:
            stop_postmaster(proc.pid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)
