"""``python -m stack up|status|down`` with the real services (stack/local.py): PostgreSQL,
the Prefect server on it, the deployments, a Dask scheduler + worker and a process worker; a track-all
deployment run on that stack; a Dask scheduler that died is named by the run and brought back by
``up``; ``down`` stops exactly what ``up`` started.  Tests run in file order on one stack."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from cstrack.data.synthetic import SynthConfig, generate
from stack.local import Stack
from tests.flows.harness import BIN, REPO, wait_until

pytestmark = pytest.mark.slow

def services(state: Path, *args: str, timeout_s: float = 420.0) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "DASK_", "CSTRACK_DASK"))}
    return subprocess.run([str(BIN / "python"), "-m", "stack", "--state", str(state), *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=timeout_s, check=False)


@pytest.fixture(scope="module")
def state() -> Iterator[Path]:
    # under the system temp dir, searchable by the unprivileged user PostgreSQL runs as when we are root
    root = Path(tempfile.mkdtemp(prefix="cstrack-stack-"))
    os.chmod(root, 0o755)
    try:
        yield root / "state"
    finally:
        services(root / "state", "down", timeout_s=120)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def up(state: Path) -> dict[str, Any]:
    out = services(state, "up", "--prefect-port", "0", "--dask-port", "0", "--dask-http-port", "0", "--pg-port", "0",
                   "--workers", "1", "--gpu-workers", "1", "--no-ui", "--env", "PREFECT_WORKER_QUERY_SECONDS=1",
                   # a run whose scheduler is gone fails after 5 s instead of the default 30 s
                   "--env", "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT=5s")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    print(out.stdout)
    return {"stdout": out.stdout, "pids": pids(state), "env": env_of(state)}


def pids(state: Path) -> dict[str, int]:
    return {r.name: r.pid for r in Stack(state).records()}


def env_of(state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "DASK_", "CSTRACK_DASK"))}
    for line in (state / "env.sh").read_text().splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = value
    return env


def api(env: dict[str, str], method: str, path: str, body: Any = None) -> Any:
    r = httpx.request(method, env["PREFECT_API_URL"] + path, json=body, timeout=30.0)
    r.raise_for_status()
    return r.json()


def submit_run(env: dict[str, str], params: dict[str, Any], log: Path | None = None) -> str:
    """``prefect deployment run track-all/nightly``: the new flow run's id (the run goes on)."""
    out = subprocess.run([str(BIN / "prefect"), "deployment", "run", "track-all/nightly", "--params",
                          json.dumps({"params": params})], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=120, check=False)
    if log is not None:
        log.write_text(out.stdout + out.stderr)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return out.stdout.split("UUID: ")[1].split()[0]


def wait_ended(env: dict[str, str], run_id: str, what: str, timeout_s: float) -> dict[str, Any]:
    """The terminal state of flow run ``run_id`` (polled through the API)."""
    terminal = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}

    def ended() -> dict[str, Any] | None:
        st = api(env, "GET", f"/flow_runs/{run_id}")["state"]
        return st if st["type"] in terminal else None

    return wait_until(f"flow run {run_id} to end{what}", ended, timeout_s, interval_s=1.0)


def deployment_run(env: dict[str, str], params: dict[str, Any], log: Path) -> tuple[str, dict[str, Any]]:
    """``prefect deployment run track-all/nightly``; waits for the run's terminal state via the API."""
    run_id = submit_run(env, params, log)
    return run_id, wait_ended(env, run_id, "", 420.0)


@dataclass
class FaultRun:
    """A track-all deployment run under way on two synthetic sequences, for killing a service in."""

    run_id: str
    params: dict[str, Any]
    results: Path
    worker_log: Path
    offset: int  # the worker log's size before the run

    def frames_logged(self, marker: bytes = b": 8/40 frames") -> int:
        """How often the Dask worker logged ``marker`` since the run started."""
        with open(self.worker_log, "rb") as fh:
            fh.seek(self.offset)
            return fh.read().count(marker)


@pytest.fixture
def fault_run(up: dict[str, Any], state: Path, tmp_path: Path) -> Callable[[str, int], FaultRun]:
    """``start(run_name, seed)``: generate two 40-frame synthetic sequences and start a track-all
    run on them with the real model (private detections: a few seconds per sequence, long enough
    to kill a service in)."""

    def start(run_name: str, seed: int) -> FaultRun:
        data, results = tmp_path / "data", tmp_path / "results"
        generate(data / "synth" / "images" / "train", SynthConfig(sequences=2, length=40, width=320, height=240,
                                                                  objects=3, seed=seed))
        params = {"data_root": str(data), "results_root": str(results), "run_name": run_name,
                  "model": {"variant": "cstrack-n", "weights": "coco", "input_size": [320, 256]},
                  "cluster": {"torch_threads": 1}, "datasets": [{"name": "synth", "mode": "private"}]}
        worker = Stack(state).record("dask-worker-w1")
        assert worker is not None
        worker_log = Path(worker.log)
        offset = worker_log.stat().st_size
        return FaultRun(submit_run(up["env"], params), params, results, worker_log, offset)

    return start


def test_up_starts_every_service_healthy_on_postgres(up: dict[str, Any], state: Path) -> None:
    assert set(up["pids"]) == {"postgres", "prefect-server", "dask-scheduler", "dask-worker-w1",
                               "dask-gpu-worker-g1", "prefect-worker"}
    for name in up["pids"]:
        assert f"{name} healthy" in up["stdout"]
    # the GPU worker (no GPU here: the device is only named) is pinned and declares the resource GPU,
    # the CPU worker CPU: the tracking tasks of this file (device cpu) ask for CPU and run on w1
    cfg = Stack(state).config()
    assert cfg is not None and cfg.gpu_workers == 1
    assert psutil.Process(up["pids"]["dask-gpu-worker-g1"]).environ()["CUDA_VISIBLE_DEVICES"] == cfg.gpu_device(0)
    assert "CUDA_VISIBLE_DEVICES" not in psutil.Process(up["pids"]["dask-worker-w1"]).environ()
    identity = httpx.get(f"http://127.0.0.1:{cfg.dask_http_port}/json/identity.json", timeout=30).json()
    assert {w["name"]: w["resources"] for w in identity["workers"].values()} == {"w1": {"CPU": 1}, "g1": {"GPU": 1}}
    status = services(state, "status", "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    rows = json.loads(status.stdout)["services"]
    assert all(r["running"] for r in rows) and {r["name"] for r in rows} == set(up["pids"])
    # the server stores its state in our PostgreSQL: the deployments are rows there
    pg = Stack(state).postgres(cfg)
    q = subprocess.run([str(pg.bin_dir / "psql"), "-h", "127.0.0.1", "-p", str(cfg.pg_port), "-U", "prefect", "-d",
                        "prefect", "-tAc", "SELECT name FROM deployment ORDER BY name"],
                       env={**os.environ, "PGPASSWORD": pg.password()}, capture_output=True, text=True, check=True)
    assert {"nightly", "gpu"} <= set(q.stdout.split())
    # every listening socket of the stack is on the loopback interface
    for pid in up["pids"].values():
        for p in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]:
            try:  # a short-lived helper child may exit meanwhile
                listening = [c.laddr for c in p.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
            except psutil.NoSuchProcess:
                continue
            assert all(addr.ip == "127.0.0.1" for addr in listening), (pid, listening)


def test_up_twice_starts_nothing_new(up: dict[str, Any], state: Path) -> None:
    again = services(state, "up")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "starting" not in again.stdout and "deploy present" in again.stdout
    assert pids(state) == up["pids"]
    # a different setting for a running stack is refused in one line, naming the option
    bad = services(state, "up", "--workers", "3")
    assert bad.returncode == 2 and bad.stderr.startswith("error: --workers:") and "Traceback" not in bad.stderr


def catalog_sequences(results: Path) -> list[tuple[str, str]]:
    """(dataset, sequence) of every non-COMBINED sequence_metrics row of the last flow run that
    recorded runs in the catalog (every flow run records its own runs: issue 28)."""
    import catalog

    runs = catalog.load("runs", root=results)
    runs = runs[runs["flow_run_id"] == runs.sort_values("started_at")["flow_run_id"].iloc[-1]]
    metrics = catalog.load("sequence_metrics", root=results)
    metrics = metrics[metrics["sequence"] != "COMBINED"].merge(runs[["run_id", "dataset"]], on="run_id")
    return sorted(zip(metrics["dataset"], metrics["sequence"], strict=True))


def test_prefect_server_killed_mid_run_and_restarted_by_up(
    up: dict[str, Any], state: Path, tmp_path: Path, fault_run: Callable[[str, int], FaultRun]
) -> None:
    env = up["env"]
    run = fault_run("srv", 4)
    wait_until("tracking progress in the Dask worker log", lambda: run.frames_logged() >= 1, 300.0, interval_s=0.2)
    server = Stack(state).record("prefect-server")
    assert server is not None
    os.killpg(server.pid, signal.SIGKILL)
    back = services(state, "up")
    assert back.returncode == 0, back.stdout + back.stderr
    assert "starting prefect-server" in back.stdout and "deploy present" in back.stdout
    st = wait_ended(env, run.run_id, " after the server restart", 300.0)
    print(f"run across the server restart ended {st['type']}: {st.get('message')}")
    if st["type"] != "COMPLETED":
        _, st = deployment_run(env, run.params, tmp_path / "rerun.log")
        assert st["type"] == "COMPLETED", st
    assert catalog_sequences(run.results) == [("synth", "SYNTH-01"), ("synth", "SYNTH-02")]  # each exactly once
    up["pids"].update(pids(state))  # what the later tests compare with


def test_dask_scheduler_killed_mid_run_is_named_and_a_rerun_after_up_skips_finished_sequences(
    up: dict[str, Any], state: Path, tmp_path: Path, fault_run: Callable[[str, int], FaultRun]
) -> None:
    env = up["env"]
    run = fault_run("sched", 5)
    failed, params, results = run.run_id, run.params, run.results
    # one worker tracks the sequences one after the other: kill the scheduler during the second
    wait_until("the second sequence under way", lambda: run.frames_logged() >= 2, 300.0, interval_s=0.2)
    os.killpg(up["pids"]["dask-scheduler"], signal.SIGKILL)
    st = wait_ended(env, failed, "", 300.0)
    assert st["type"] == "FAILED", st
    assert "Dask scheduler" in st["message"] and env["CSTRACK_DASK_ADDRESS"] in st["message"], st["message"]
    assert "lost mid-run" in st["message"] and "1 of 2" in st["message"], st["message"]
    assert not (results / "runs").exists()  # nothing of the broken run was catalogued

    back = services(state, "up")
    assert back.returncode == 0, back.stdout + back.stderr
    now = pids(state)
    assert now["dask-scheduler"] != up["pids"]["dask-scheduler"] and now["dask-worker-w1"] != up["pids"][
        "dask-worker-w1"]
    keep = ("postgres", "prefect-server", "prefect-worker")
    assert {k: now[k] for k in keep} == {k: up["pids"][k] for k in keep}
    # the re-run takes the finished sequence(s) from the content cache: the first one at least (the
    # cut-off one too when its task finished while the worker was closing)
    again, st = deployment_run(env, params, tmp_path / "rerun.log")
    assert st["type"] == "COMPLETED", st
    arts = api(env, "POST", "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [again]}}})
    counts = [re.search(r"(\d+) tracked, (\d+) cached, 0 failed", a["data"]) for a in arts]
    tracked, cached = next((int(m[1]), int(m[2])) for m in counts if m)
    assert tracked + cached == 2 and cached >= 1, (tracked, cached)
    assert catalog_sequences(results) == [("synth", "SYNTH-01"), ("synth", "SYNTH-02")]
    # both runs are in the database's history
    assert {r["id"] for r in api(env, "POST", "/flow_runs/filter", {})} >= {failed, again}


def test_down_stops_exactly_what_up_started(up: dict[str, Any], state: Path) -> None:
    before = pids(state)
    family = []
    for pid in before.values():
        p = psutil.Process(pid)
        family += [p, *p.children(recursive=True)]
    bystander = subprocess.Popen(["sleep", "60"], start_new_session=True)  # not ours to stop
    try:
        out = services(state, "down", timeout_s=180)
        assert out.returncode == 0, out.stdout + out.stderr
        assert f"stopped {len(before)} process(es)" in out.stdout
        for p in family:
            assert not p.is_running() or p.status() == psutil.STATUS_ZOMBIE, p
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()
    status = services(state, "status")
    assert status.returncode == 3 and " running " not in status.stdout
    assert Stack(state).records() == []
    # the PostgreSQL data stays for the next `up`
    assert (state / "postgres" / "data" / "PG_VERSION").is_file()
