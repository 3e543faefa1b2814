"""The whole pipeline stack on one machine, started and stopped as a unit (``python -m stack``).

``up`` starts, in order and each after a health check: PostgreSQL (own cluster under the state
folder), the Prefect server on it, the work pools and deployments (``make deploy``, only when the
server does not know them yet), a Dask scheduler, N one-thread Dask workers (``w1`` ...), one
Dask worker per GPU (``g1`` ..., pinned by ``CUDA_VISIBLE_DEVICES``, declaring the resource ``GPU``),
and a process worker on ``cpu-pool`` whose flow runs use that Dask cluster (``CSTRACK_DASK_ADDRESS``).
Everything listens on 127.0.0.1.  Each started process is recorded in ``<state>/pids/<name>.json``
(pid + the process's start time, so a recycled pid is never mistaken for ours); ``up`` leaves a
running service alone and starts only what is missing or dead, ``down`` stops exactly the recorded
processes (with their descendants: the flow runs of the process worker), newest first.

With ``--object-store``, an S3 object store (SeaweedFS, :mod:`stack.objectstore`) starts first; its
keys live in ``secrets/`` (0700, files 0600) and ``env.sh`` gives clients the endpoint and the path
of the credentials file (``AWS_SHARED_CREDENTIALS_FILE``), never the keys.

State folder layout::

    stack.json            ports and settings, fixed at the first ``up``
    env.sh                the client settings (``source`` it to use the stack)
    pids/<service>.json   what ``up`` started
    logs/<service>.log    each service's output
    postgres/             the PostgreSQL cluster (history survives ``down``)
    secrets/              the object store's identities + the clients' AWS credentials file (owner-only)
    object-store/         the object store's data (survives ``down``)
    prefect-home/  prefect-results/  dask-tmp/
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from cstrack.errors import ConfigError
from cstrack.fsutil import atomic_write_json, atomic_write_text
from stack import objectstore
from stack.commands import (
    DASK_GPU_WORKER,
    DASK_SCHEDULER,
    DASK_WORKER,
    DEPLOY,
    PREFECT_SERVER,
    PREFECT_WORKER,
    ServiceCommand,
    free_loopback_port,
    visible_gpus,
)
from stack.postgres import PostgresCluster, stop_postmaster
from stack.postgres import log_file as postgres_log_file

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
STATE_ENV = "CSTRACK_SERVICES_DIR"
DEFAULT_STATE = REPO / ".services"
POOL = "cpu-pool"  # the pool of the track-all and nightly deployments (flows/prefect.yaml)
WORKER_NAME = "worker-1"
CHECK_DEPLOYMENT = "track-all/nightly"  # present on the server = `make deploy` has run against this database
# Start-up limits: generous, the 2-core development VM is shared (Prefect server ready in 5-25 s there).
START_S = {"object-store": 60.0, "postgres": 60.0, "prefect-server": 180.0, "deploy": 300.0, "dask-scheduler": 60.0, "dask-worker": 120.0,
           "prefect-worker": 90.0}
# Prefect client settings of every process of the stack; the worker polls every 2 s (default 10 s).
CLIENT_DEFAULTS = {"PREFECT_WORKER_QUERY_SECONDS": "2", "PREFECT_WORKER_HEARTBEAT_SECONDS": "5",
                   "PREFECT_LOGGING_LEVEL": "INFO", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


@dataclass
class StackConfig:
    """Ports and settings of one stack; written to ``stack.json`` by the first ``up`` and reused."""

    prefect_port: int = 4200
    dask_port: int = 8786
    dask_http_port: int = 8787
    pg_port: int = 5433  # not 5432: a system PostgreSQL may hold that one
    workers: int = 2
    gpu_workers: int = 0  # `up` without --gpu-workers: one per visible GPU (stack.commands.visible_gpus)
    gpu_devices: list[str] = field(default_factory=list)  # CUDA_VISIBLE_DEVICES of each GPU worker
    ui: bool = True
    env: dict[str, str] = field(default_factory=dict)  # extra settings for every service (KEY=VALUE)
    object_store: bool = False  # an S3 store (SeaweedFS) beside the other services (stack/objectstore.py)
    s3_port: int = 8333  # its S3 endpoint; the store's internal ports are picked free at the first up
    object_store_ports: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("prefect_port", "dask_port", "dask_http_port", "pg_port", "s3_port"):
            port = getattr(self, name)
            if not 0 <= port < 65536:
                raise ConfigError(f"--{name.replace('_', '-')}: {port} is not a TCP port (0 picks a free one)")
        if self.workers < 1:
            raise ConfigError(f"--workers: at least 1 Dask worker, got {self.workers}")
        if self.gpu_workers < 0:
            raise ConfigError(f"--gpu-workers: 0 or more GPU workers, got {self.gpu_workers}")
        if self.gpu_devices and len(self.gpu_devices) != self.gpu_workers:
            raise ConfigError(f"--gpu-workers: {self.gpu_workers} worker(s) for {len(self.gpu_devices)} device(s) "
                              f"{self.gpu_devices}")

    def resolved(self) -> StackConfig:
        """Port 0 replaced by a port free now."""
        ports: dict[str, Any] = {k: (getattr(self, k) or free_loopback_port())
                                 for k in ("prefect_port", "dask_port", "dask_http_port", "pg_port", "s3_port")}
        if self.object_store and not self.object_store_ports:
            ports["object_store_ports"] = {**objectstore.free_ports(), "s3": ports["s3_port"]}
        return StackConfig(**{**asdict(self), **ports})

    def gpu_device(self, index: int) -> str:
        """``CUDA_VISIBLE_DEVICES`` of GPU worker ``g<index + 1>``: the recorded device, else the index."""
        return self.gpu_devices[index] if self.gpu_devices else str(index)


@dataclass(frozen=True)
class ProcessRecord:
    """A process ``up`` started: enough to find it again, and to tell it from a recycled pid."""

    name: str
    pid: int
    started: float  # psutil create_time of the process
    argv: list[str]
    log: str

    def process(self) -> psutil.Process | None:
        """The live process, or ``None`` when it exited (or the pid now belongs to another one)."""
        try:
            p = psutil.Process(self.pid)
            if abs(p.create_time() - self.started) > 0.05 or p.status() == psutil.STATUS_ZOMBIE:
                return None
            return p
        except psutil.NoSuchProcess:
            return None

    def alive(self) -> bool:
        return self.process() is not None


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    running: bool
    pid: int | None
    address: str
    log: str


def _http_ok(url: str, timeout_s: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as r:
            return bool(r.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def _http_json(method: str, url: str, body: Any = None, timeout_s: float = 10.0) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout_s) as r:
        return json.loads(r.read() or b"null")


def _wait(what: str, check: Callable[[], bool], timeout_s: float, record: ProcessRecord | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if check():
                return
        except Exception:  # not ready yet (connection refused, partial start-up)
            pass
        if record is not None and not record.alive():
            raise RuntimeError(f"{record.name} exited while waiting for {what}; see {record.log}")
        if time.monotonic() > deadline:
            where = f"; see {record.log}" if record else ""
            raise RuntimeError(f"timed out after {timeout_s:.0f} s waiting for {what}{where}")
        time.sleep(0.3)


class Stack:
    """One stack's state folder: configuration, pid records, and the operations on them."""

    def __init__(self, state: Path | str | None = None) -> None:
        self.state = Path(state or os.environ.get(STATE_ENV) or DEFAULT_STATE).resolve()

    # -- state ------------------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.state / "stack.json"

    def config(self) -> StackConfig | None:
        if not self.config_path.is_file():
            return None
        return StackConfig(**json.loads(self.config_path.read_text()))

    def record(self, name: str) -> ProcessRecord | None:
        path = self.state / "pids" / f"{name}.json"
        if not path.is_file():
            return None
        return ProcessRecord(**json.loads(path.read_text()))

    def records(self) -> list[ProcessRecord]:
        """Every recorded process, in start order."""
        recs = [self.record(p.stem) for p in (self.state / "pids").glob("*.json")]
        return sorted((r for r in recs if r is not None), key=lambda r: r.started)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One ``up``/``down`` at a time per state folder."""
        self.state.mkdir(parents=True, exist_ok=True)
        with open(self.state / ".lock", "w") as fh:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ConfigError(f"{self.state}: another `services up/down` holds this state folder") from None
            yield

    # -- names, addresses, environments -------------------------------------------------------------
    @staticmethod
    def service_names(cfg: StackConfig) -> list[str]:
        """In start order."""
        return [*(["object-store"] if cfg.object_store else []), "postgres", "prefect-server", "dask-scheduler",
                *(f"dask-worker-w{i}" for i in range(1, cfg.workers + 1)),
                *(f"dask-gpu-worker-g{i}" for i in range(1, cfg.gpu_workers + 1)), "prefect-worker"]

    @property
    def postgres_root(self) -> Path:
        """PostgreSQL's folder: its data directory and its log."""
        return self.state / "postgres"

    def postgres(self, cfg: StackConfig) -> PostgresCluster:
        return PostgresCluster.at(self.postgres_root, cfg.pg_port)

    @staticmethod
    def api_url(cfg: StackConfig) -> str:
        return f"http://{HOST}:{cfg.prefect_port}/api"

    @staticmethod
    def dask_address(cfg: StackConfig) -> str:
        return f"tcp://{HOST}:{cfg.dask_port}"

    @property
    def secrets_dir(self) -> Path:
        """Owner-only (0700) folder of the files holding keys (each 0600)."""
        return self.state / "secrets"

    def address(self, name: str, cfg: StackConfig) -> str:
        if name == "object-store":
            return f"{objectstore.endpoint(HOST, cfg.object_store_ports)} (S3, keys in {self.secrets_dir})"
        if name == "postgres":
            return f"postgresql://{HOST}:{cfg.pg_port}/prefect"
        if name == "prefect-server":
            return self.api_url(cfg)
        if name == "dask-scheduler":
            return f"{self.dask_address(cfg)} (health http://{HOST}:{cfg.dask_http_port}/health)"
        if name.startswith("dask-worker-"):
            return f"-> {self.dask_address(cfg)}"
        if name.startswith("dask-gpu-worker-g"):
            return f"-> {self.dask_address(cfg)} (GPU, CUDA_VISIBLE_DEVICES={cfg.gpu_device(_gpu_index(name))})"
        return f"pool {POOL} -> {self.api_url(cfg)}"

    def client_env(self, cfg: StackConfig) -> dict[str, str]:
        """The settings a client of this stack needs (also written to ``env.sh``)."""
        return {
            "PREFECT_API_URL": self.api_url(cfg),
            "PREFECT_HOME": str(self.state / "prefect-home"),
            "PREFECT_RESULTS_LOCAL_STORAGE_PATH": str(self.state / "prefect-results"),
            "CSTRACK_DASK_ADDRESS": self.dask_address(cfg),
            "DASK_TEMPORARY_DIRECTORY": str(self.state / "dask-tmp"),
            **CLIENT_DEFAULTS,
            **self.object_store_env(cfg),
            **cfg.env,
        }

    def object_store_env(self, cfg: StackConfig) -> dict[str, str]:
        """The AWS variables of a client of the stack's object store: the endpoint and the path of
        the owner-only credentials file, never the keys themselves."""
        if not cfg.object_store:
            return {}
        return {"AWS_ENDPOINT_URL": objectstore.endpoint(HOST, cfg.object_store_ports),
                "AWS_DEFAULT_REGION": objectstore.REGION,
                "AWS_SHARED_CREDENTIALS_FILE": str(self.secrets_dir / objectstore.CREDENTIALS)}

    def _env(self, cfg: StackConfig, **extra: str) -> dict[str, str]:
        """A service's environment: ours without any PREFECT_*/DASK_* of the caller, plus the stack's."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "DASK_", "CSTRACK_DASK"))}
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
        env["PYTHONUNBUFFERED"] = "1"
        return {**env, **self.client_env(cfg), **extra}

    def _server_env(self, cfg: StackConfig) -> dict[str, str]:
        return self._env(cfg, PREFECT_API_DATABASE_CONNECTION_URL=self.postgres(cfg).url(),
                         PREFECT_UI_ENABLED=str(cfg.ui).lower(), PREFECT_UI_API_URL=self.api_url(cfg),
                         PREFECT_SERVER_LOGGING_LEVEL="WARNING")

    # -- starting ---------------------------------------------------------------------------------
    def _launch(self, name: str, argv: list[str], env: dict[str, str] | None = None,
                popen: Callable[[], subprocess.Popen[bytes]] | None = None) -> ProcessRecord:
        log = self.log_path(name)
        log.parent.mkdir(parents=True, exist_ok=True)
        if popen is None:
            with open(log, "ab") as fh:
                proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
        else:
            proc = popen()
        rec = ProcessRecord(name, proc.pid, psutil.Process(proc.pid).create_time(), argv, str(log))
        atomic_write_json(self.state / "pids" / f"{name}.json", asdict(rec))
        return rec

    @staticmethod
    def _argv(command: ServiceCommand, **values: object) -> list[str]:
        argv = command.render(**values)
        argv[0] = str(BIN / argv[0])  # the console script of this environment
        return argv

    def _launch_service(self, name: str, cfg: StackConfig) -> ProcessRecord:
        """Start one service (not yet healthy) and record it."""
        if name == "object-store":
            objectstore.settle_keys(self.secrets_dir)
            data = self.state / "object-store"
            data.mkdir(parents=True, exist_ok=True)
            return self._launch(name, objectstore.argv(HOST, data, cfg.object_store_ports,
                                                       self.secrets_dir / objectstore.IDENTITIES), self._env(cfg))
        if name == "postgres":
            pg = self.postgres(cfg)
            pg.init()
            return self._launch(name, pg.argv(), popen=pg.start)
        if name == "prefect-server":
            return self._launch(name, self._argv(PREFECT_SERVER, host=HOST, port=cfg.prefect_port),
                                self._server_env(cfg))
        if name == "dask-scheduler":
            return self._launch(name, self._argv(DASK_SCHEDULER, host=HOST, port=cfg.dask_port,
                                                 http=f"{HOST}:{cfg.dask_http_port}"), self._env(cfg))
        if name.startswith("dask-worker-"):
            return self._launch(name, self._argv(DASK_WORKER, scheduler=self.dask_address(cfg), host=HOST,
                                                 name=dask_worker_name(name), http=f"{HOST}:0"),
                                self._env(cfg))
        if name.startswith("dask-gpu-worker-"):
            return self._launch(name, self._argv(DASK_GPU_WORKER, scheduler=self.dask_address(cfg), host=HOST,
                                                 name=dask_worker_name(name), http=f"{HOST}:0"),
                                self._env(cfg, CUDA_VISIBLE_DEVICES=cfg.gpu_device(_gpu_index(name))))
        if name == "prefect-worker":
            return self._launch(name, self._argv(PREFECT_WORKER, pool=POOL, name=WORKER_NAME), self._env(cfg))
        raise ConfigError(f"unknown service {name!r}")

    def _wait_healthy(self, rec: ProcessRecord, cfg: StackConfig) -> None:
        """The service's health check, polled until it passes (or the process exits, or time runs out)."""
        name = rec.name
        limit = START_S["dask-worker" if is_dask_worker(name) else name]
        if name == "object-store":
            url = objectstore.endpoint(HOST, cfg.object_store_ports)
            _wait(f"the S3 gateway at {url}", lambda: objectstore.ready(url), limit, rec)
        elif name == "postgres":
            pg = self.postgres(cfg)
            pg.wait_ready(rec.alive, limit)
            pg.ensure_database()
        elif name == "prefect-server":
            _wait(f"{self.api_url(cfg)}/health", lambda: _http_ok(f"{self.api_url(cfg)}/health"), limit, rec)
        elif name == "dask-scheduler":
            _wait("the Dask scheduler's /health", lambda: _http_ok(f"http://{HOST}:{cfg.dask_http_port}/health"),
                  limit, rec)
        elif is_dask_worker(name):
            worker = dask_worker_name(name)
            _wait(f"Dask worker {worker} at the scheduler", lambda: worker in self.dask_workers(cfg), limit, rec)
        elif name == "prefect-worker":
            _wait(f"Prefect worker {WORKER_NAME} on {POOL}", lambda: WORKER_NAME in self.prefect_workers(cfg),
                  limit, rec)

    def dask_workers(self, cfg: StackConfig) -> set[str]:
        """Names of the workers the scheduler knows (its HTTP JSON route; no client needed)."""
        info = _http_json("GET", f"http://{HOST}:{cfg.dask_http_port}/json/identity.json", timeout_s=5.0)
        return {str(w.get("name")) for w in info.get("workers", {}).values()}

    def prefect_workers(self, cfg: StackConfig) -> set[str]:
        rows = _http_json("POST", f"{self.api_url(cfg)}/work_pools/{POOL}/workers/filter", {})
        return {r["name"] for r in rows}

    def deployed(self, cfg: StackConfig) -> bool:
        try:
            _http_json("GET", f"{self.api_url(cfg)}/deployments/name/{CHECK_DEPLOYMENT}")
            return True
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return False
            raise

    def deploy(self, cfg: StackConfig) -> None:
        """``make deploy`` (work pools + every deployment of flows/prefect.yaml) against this server."""
        log = self.state / "logs" / "deploy.log"
        with open(log, "ab") as fh:
            done = subprocess.run(DEPLOY.render(), cwd=REPO, env=self._env(cfg), stdout=fh, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, timeout=START_S["deploy"], check=False)
        if done.returncode != 0:
            raise RuntimeError(f"make deploy exited with {done.returncode}; see {log}")

    def _settle_config(self, requested: StackConfig | None, given: set[str]) -> StackConfig:
        """The recorded configuration; options given now must agree with it."""
        have = self.config()
        if have is None:
            cfg = (requested or StackConfig()).resolved()
            atomic_write_json(self.config_path, asdict(cfg))
            return cfg
        if requested is not None:
            for key in sorted(given):
                if getattr(requested, key) != getattr(have, key) and not (key.endswith("port") and
                                                                          getattr(requested, key) == 0):
                    raise ConfigError(f"--{key.replace('_', '-')}: the stack in {self.state} was set up with "
                                      f"{getattr(have, key)!r}, not {getattr(requested, key)!r} (`down` it and remove "
                                      f"{self.config_path} to change it)")
        return have

    def up(self, requested: StackConfig | None = None, given: set[str] | frozenset[str] = frozenset(),
           say: Callable[[str], None] = print) -> dict[str, str]:
        """Start whatever is not running; returns ``{service: "started" | "running"}`` (+ deploy)."""
        with self._locked():
            cfg = self._settle_config(requested, set(given))
            atomic_write_text(self.state / "env.sh",
                              "".join(f"export {k}={v}\n" for k, v in self.client_env(cfg).items()))
            for sub in ("prefect-home", "prefect-results", "dask-tmp"):
                (self.state / sub).mkdir(parents=True, exist_ok=True)
            done: dict[str, str] = {}
            names = self.service_names(cfg)
            workers = [n for n in names if is_dask_worker(n)]
            for name in ("object-store", "postgres", "prefect-server", "dask-scheduler"):
                if name in names:
                    done[name] = self._ensure(name, cfg, say)
            if done["dask-scheduler"] == "started":
                # a Dask worker exits when its scheduler connection breaks: whatever still runs is on its way out
                for name in workers:
                    rec = self.record(name)
                    proc = rec.process() if rec else None
                    if proc is not None:
                        say(f"restarting {name} (its scheduler was restarted)")
                        stop_tree(proc)
            # the workers import torch and the model code while the deployments are registered
            pending = {n: self._launch_service(n, cfg) for n in workers if not self._alive(n)}
            for name in pending:
                say(f"starting {name} ...")
            if self.deployed(cfg):
                done["deploy"] = "present"
            else:
                t0 = time.monotonic()
                say("deploying work pools and flows/prefect.yaml (make deploy) ...")
                self.deploy(cfg)
                done["deploy"] = "deployed"
                say(f"  deployed in {time.monotonic() - t0:.1f} s")
            for name in workers:
                if name in pending:
                    self._wait_healthy(pending[name], cfg)
                    say(f"  {name} healthy")
                done[name] = "started" if name in pending else "running"
            done["prefect-worker"] = self._ensure("prefect-worker", cfg, say)
            return done

    def _alive(self, name: str) -> bool:
        rec = self.record(name)
        return rec is not None and rec.alive()

    def _ensure(self, name: str, cfg: StackConfig, say: Callable[[str], None]) -> str:
        """Start ``name`` unless it runs; ``"started"`` or ``"running"``."""
        if self._alive(name):
            return "running"
        t0 = time.monotonic()
        say(f"starting {name} ...")
        self._wait_healthy(self._launch_service(name, cfg), cfg)
        say(f"  {name} healthy after {time.monotonic() - t0:.1f} s")
        return "started"

    # -- stopping ---------------------------------------------------------------------------------
    def down(self, say: Callable[[str], None] = print) -> list[str]:
        """Stop every recorded process, newest first; returns the names stopped."""
        with self._locked():
            stopped = []
            for rec in reversed(self.records()):
                proc = rec.process()
                if proc is not None:
                    say(f"stopping {rec.name} (pid {rec.pid})")
                    if rec.name == "postgres":
                        stop_postmaster(rec.pid)
                    elif rec.name == "object-store":  # acknowledged writes are on disk; its gateway idles 15 s
                        stop_tree(proc, grace_s=3.0)
                    else:
                        stop_tree(proc)
                    stopped.append(rec.name)
                (self.state / "pids" / f"{rec.name}.json").unlink(missing_ok=True)
            return stopped

    def status(self) -> list[ServiceStatus]:
        cfg = self.config()
        if cfg is None:
            return []
        out = []
        for name in self.service_names(cfg):
            rec = self.record(name)
            running = rec is not None and rec.alive()
            out.append(ServiceStatus(name, running, rec.pid if rec else None, self.address(name, cfg),
                                     rec.log if rec else str(self.log_path(name))))
        return out

    def log_path(self, name: str) -> Path:
        """Where ``name`` logs (PostgreSQL beside its data, the others under ``logs/``), whether or
        not it runs."""
        if name == "postgres":
            return postgres_log_file(self.postgres_root)
        return self.state / "logs" / f"{name}.log"


def is_dask_worker(service: str) -> bool:
    """A Dask worker service (``dask-worker-w1``, ``dask-gpu-worker-g1``)."""
    return service.startswith(("dask-worker-", "dask-gpu-worker-"))


def dask_worker_name(service: str) -> str:
    """The worker's name at the scheduler: ``w1`` for ``dask-worker-w1``, ``g1`` for ``dask-gpu-worker-g1``."""
    return service.rpartition("-")[2]


def _gpu_index(service: str) -> int:
    """0 for ``dask-gpu-worker-g1``."""
    return int(dask_worker_name(service).removeprefix("g")) - 1


def gpu_plan(requested: int | None, devices: list[str]) -> tuple[int, list[str]]:
    """``(gpu_workers, gpu_devices)`` of a new stack: one worker per device in ``devices`` (the
    visible GPUs) when ``requested`` is ``None``; else ``requested`` workers, pinned to the first
    devices, or to the indices 0..N-1 when fewer devices are known."""
    if requested is None:
        return len(devices), list(devices)
    return requested, list(devices[:requested]) if len(devices) >= requested else []


def stop_tree(proc: psutil.Process, grace_s: float = 15.0) -> None:
    """SIGTERM a process, its group and every descendant found now (a process worker's flow runs
    run in sessions of their own); SIGKILL what is left after ``grace_s``."""
    try:
        family = [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    for p in family:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            p.send_signal(signal.SIGTERM)
    still = wait_gone(family, grace_s)
    for p in still:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            p.kill()
    wait_gone(still, 5.0)


def _gone(p: psutil.Process) -> bool:
    try:
        return p.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_gone(procs: list[psutil.Process], timeout_s: float) -> list[psutil.Process]:
    """Wait until every process has exited; the ones still running after ``timeout_s``.

    An exited process counts as gone while it is a zombie: ``up`` has exited, so nobody may reap
    the services it started (a container's init often does not), and ``psutil.wait_procs`` would
    wait out its whole timeout on them.
    """
    deadline = time.monotonic() + timeout_s
    left = list(procs)
    while left:
        left = [p for p in left if not _gone(p)]
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    return left


# -- command line -----------------------------------------------------------------------------------
def _summary(stack: Stack, statuses: list[ServiceStatus], cfg: StackConfig) -> str:
    rows = [("service", "state", "pid", "address", "log")]
    rows += [(s.name, "running" if s.running else "stopped", str(s.pid or "-"), s.address, s.log) for s in statuses]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4] for r in rows]
    lines.append("")
    if cfg.ui:
        lines.append(f"Prefect UI:  http://{HOST}:{cfg.prefect_port}")
    lines.append(f"Prefect API: {stack.api_url(cfg)}    Dask: {stack.dask_address(cfg)}")
    lines.append(f"use it:      source {stack.state / 'env.sh'}")
    lines.append(f"stop it:     python -m stack down --state {stack.state}")
    return "\n".join(lines)


def _parse_env(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--env: expected KEY=VALUE, got {item!r}")
        out[key] = value
    return out


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m stack",
                                 description="Start, stop or inspect the pipeline's services on this machine.")
    ap.add_argument("--state", default=None, help=f"state folder (default ${STATE_ENV} or {DEFAULT_STATE})")
    sub = ap.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start what is not running (PostgreSQL, Prefect server + deployments, "
                                   "Dask scheduler + workers, process worker)")
    defaults = StackConfig()
    for key in ("prefect_port", "dask_port", "dask_http_port", "pg_port"):
        up.add_argument(f"--{key.replace('_', '-')}", type=int, default=None,
                        help=f"default {getattr(defaults, key)}; 0 picks a free port (fixed at the first up)")
    up.add_argument("--workers", type=int, default=None, help=f"Dask workers (default {defaults.workers})")
    up.add_argument("--gpu-workers", type=int, default=None,
                    help="Dask workers with one GPU each, declaring the resource GPU (default: one per visible GPU, "
                         "0 without CUDA)")
    up.add_argument("--no-ui", action="store_true", help="serve the API without the Prefect UI")
    up.add_argument("--object-store", action="store_true",
                    help="also an S3 object store (SeaweedFS) with keys of its own (env.sh points clients at it)")
    up.add_argument("--s3-port", type=int, default=None,
                    help=f"the object store's S3 port (default {defaults.s3_port}; 0 picks a free one)")
    up.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                    help="an extra setting for every service (repeatable)")
    sub.add_parser("down", help="stop exactly what `up` started (the PostgreSQL data stays)")
    st = sub.add_parser("status", help="what runs (exit 0: everything, 3: not everything)")
    st.add_argument("--json", action="store_true", help="print the status as JSON")
    args = ap.parse_args(argv)
    stack = Stack(args.state)
    try:
        if args.command == "up":
            given = {k for k in ("prefect_port", "dask_port", "dask_http_port", "pg_port", "workers", "gpu_workers",
                                 "s3_port")
                     if getattr(args, k) is not None}
            if args.no_ui:
                given.add("ui")
            if args.object_store:
                given.add("object_store")
            if args.env:
                given.add("env")
            values: dict[str, Any] = {k: getattr(args, k) for k in given - {"ui", "env", "object_store"}}
            if args.gpu_workers is not None and args.gpu_workers < 0:
                raise ConfigError(f"--gpu-workers: 0 or more GPU workers, got {args.gpu_workers}")
            values["gpu_workers"], values["gpu_devices"] = gpu_plan(args.gpu_workers, visible_gpus())
            requested = StackConfig(**values, ui=not args.no_ui, env=_parse_env(args.env),
                                    object_store=args.object_store)
            t0 = time.monotonic()
            try:
                done = stack.up(requested, given)
            except (RuntimeError, OSError) as exc:
                print(f"error: up failed: {exc}\n(what started is recorded: `python -m stack "
                      f"--state {stack.state} down` stops it)", file=sys.stderr)
                return 1
            cfg = stack.config()
            assert cfg is not None
            print(f"stack in {stack.state} ({', '.join(f'{k} {v}' for k, v in done.items())}) "
                  f"in {time.monotonic() - t0:.1f} s\n")
            print(_summary(stack, stack.status(), cfg))
            return 0
        if args.command == "down":
            stopped = stack.down()
            print(f"stopped {len(stopped)} process(es): {', '.join(stopped) or 'none was running'}")
            return 0
        statuses = stack.status()
        cfg = stack.config()
        if args.json:
            print(json.dumps({"state": str(stack.state), "config": asdict(cfg) if cfg else None,
                              "services": [asdict(s) for s in statuses]}, indent=2))
        elif cfg is None:
            print(f"no stack in {stack.state} (run `python -m stack up`)")
        else:
            print(_summary(stack, statuses, cfg))
        return 0 if statuses and all(s.running for s in statuses) else 3
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
