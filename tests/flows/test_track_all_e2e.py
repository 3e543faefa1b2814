"""End to end with real services: `prefect server start` on a PostgreSQL cluster of the test's own
(asyncpg; restarted between the two nightly runs), a process worker on cpu-pool, `dask scheduler`
and two `dask worker`s on loopback, `make deploy`, then
`prefect deployment run 'track-all/nightly' --watch` over PETS09-S2L1 (converted here from the shipped
video), the MOT17-mini frames and synthetic sequences.

The tests share one server/cluster and run in file order: the full run, a re-run served from the
cache, a run with a corrupt image, and a run during which one Dask worker is SIGKILLed.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from cstrack.data.convert import video_to_sequence
from cstrack.data.names import canonical_dataset
from cstrack.data.prepare import prepare
from cstrack.data.synthetic import SynthConfig, generate
from cstrack.paths import shared_data
from stack.commands import DEPLOY
from tasks.runtime import usable_cores
from tests.flows.harness import BIN, REPO, DaskCluster, PrefectStack, wait_until

pytestmark = pytest.mark.slow

# Sizes chosen for CI on 2 cores: the real model path (cstrack-n, COCO weights, private detections)
# on 120 PETS frames and the MOT17 frames; the synthetic sprites (not COCO people) with gt boxes.
PETS_FRAMES = 120
INPUT_SIZE = [320, 256]
SYNTH = SynthConfig(sequences=3, length=40, width=320, height=240, objects=4, seed=7)
RUN_TIMEOUT_S = 600
EXPECTED = {
    ("pets09-s2l1", "PETS09-S2L1"),
    ("mot17-mini", "MOT17-02-FRCNN"),
    ("mot17-mini", "MOT17-05-FRCNN"),
    ("synth", "SYNTH-01"),
    ("synth", "SYNTH-02"),
    ("synth", "SYNTH-03"),
}
# the catalog spells the datasets canonically (mot17-mini -> MOT17-mini; cstrack.data.names)
CATALOGUED = sorted((canonical_dataset(d), s) for d, s in EXPECTED)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("e2e-data")
    video_to_sequence(
        shared_data() / "raw" / "PETS09-S2L1.mp4", root / "pets09-s2l1" / "images" / "train", "PETS09-S2L1",
        gt=shared_data() / "mot15" / "PETS09-S2L1", frames=(1, PETS_FRAMES),
    )
    prepare("mot17-mini", root, progress=False)
    generate(root / "synth" / "images" / "train", SYNTH)
    return root


@pytest.fixture(scope="module")
def deployed(prefect_stack: PrefectStack, dask_cluster: DaskCluster) -> PrefectStack:
    """The work pool with a worker, and every deployment of flows/prefect.yaml (`make deploy`)."""
    out = subprocess.run(DEPLOY.render(), cwd=REPO, env=prefect_stack.env, capture_output=True, text=True,
                         timeout=300, check=False)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    flows = {f["id"]: f["name"] for f in prefect_stack.api("POST", "/flows/filter", json={})}
    names = {f"{flows[d['flow_id']]}/{d['name']}" for d in prefect_stack.api("POST", "/deployments/filter", json={})}
    assert {"track-all/nightly", "nightly/nightly", "train/gpu"} <= names
    nightly = prefect_stack.api("GET", "/deployments/name/track-all/nightly")
    assert [s["schedule"]["cron"] for s in nightly["schedules"]] == ["0 2 * * *"]
    assert nightly["work_pool_name"] == "cpu-pool" and nightly["entrypoint"] == "flows.track_all.track_all"
    prefect_stack.start_worker("cpu-pool")
    return prefect_stack


def track_params(data_root: Path, results: Path, cluster: DaskCluster, datasets: list[dict[str, Any]] | None = None,
                 run_name: str = "e2e") -> dict[str, Any]:
    return {
        "data_root": str(data_root),
        "results_root": str(results),
        "run_name": run_name,
        "tag": "nightly",
        "model": {"variant": "cstrack-n", "weights": "coco", "input_size": INPUT_SIZE},
        "cluster": {"dask_address": cluster.address},
        "datasets": datasets or [{"name": "pets09-s2l1"}, {"name": "mot17-mini"}, {"name": "synth", "mode": "gt"}],
    }


def start_deployment_run(stack: PrefectStack, params: dict[str, Any], log: Path) -> subprocess.Popen[str]:
    cmd = [str(BIN / "prefect"), "deployment", "run", "track-all/nightly", "--params", json.dumps({"params": params}),
           "--watch", "--watch-timeout", str(RUN_TIMEOUT_S)]
    fh = open(log, "w")  # noqa: SIM115 - closed by the caller through finish()
    return subprocess.Popen(cmd, cwd=REPO, env=stack.env, stdout=fh, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


WATCH_GRACE_S = 90  # how long the CLI may keep watching a run the server already shows finished
_TERMINAL = {"COMPLETED": 0, "FAILED": 1, "CRASHED": 1, "CANCELLED": 1}


def finish(stack: PrefectStack, proc: subprocess.Popen[str], log: Path) -> tuple[int, str, str]:
    """Wait for the CLI; returns (exit status, its output, the flow run id it created).

    ``prefect deployment run --watch`` follows the run through the server's event stream and has
    been seen to miss the terminal event of a run that completed (PrefectHQ/prefect#19989): it then
    waits out its whole watch timeout.  So the run's state is also read from the API; once it has
    been terminal for ``WATCH_GRACE_S`` with the CLI still watching, the CLI is stopped and the
    status is the one ``--watch`` gives for that state (0 for Completed, 1 otherwise).
    """
    deadline = time.monotonic() + RUN_TIMEOUT_S + 60
    terminal_since: float | None = None
    rc: int | None = None
    while rc is None:
        rc = proc.poll()
        if rc is not None:
            break
        if time.monotonic() > deadline:
            proc.kill()
            raise subprocess.TimeoutExpired(proc.args, RUN_TIMEOUT_S + 60)
        m = re.search(r"UUID: ([0-9a-f-]{36})", log.read_text())
        state = stack.api("GET", f"/flow_runs/{m.group(1)}")["state"]["type"] if m else None
        if state in _TERMINAL:
            terminal_since = terminal_since or time.monotonic()
            if time.monotonic() - terminal_since > WATCH_GRACE_S:
                proc.kill()
                proc.wait()
                rc = _TERMINAL[state]
                with open(log, "a") as fh:
                    fh.write(f"\n[test harness] the CLI missed the end of the run; state {state} from the API\n")
                break
        time.sleep(1.0)
    text = log.read_text()
    m = re.search(r"UUID: ([0-9a-f-]{36})", text)
    assert m, f"no flow run id in the CLI output:\n{text[-3000:]}"
    return rc, text, m.group(1)


def run_deployment(stack: PrefectStack, params: dict[str, Any], log: Path) -> tuple[int, str, str, float]:
    t0 = time.monotonic()
    rc, text, flow_run_id = finish(stack, start_deployment_run(stack, params, log), log)
    return rc, text, flow_run_id, time.monotonic() - t0


def diagnose(stack: PrefectStack, flow_run_id: str, cli_output: str) -> str:
    """The CLI output, the flow run's final state message and its last log lines (failure messages)."""
    state = stack.api("GET", f"/flow_runs/{flow_run_id}")["state"]
    logs = stack.api("POST", "/logs/filter", json={"logs": {"flow_run_id": {"any_": [flow_run_id]}}, "limit": 60,
                                                   "sort": "TIMESTAMP_DESC"})
    lines = "\n".join(f"{r['level']:>3} {r['message'][:600]}" for r in reversed(logs))
    return f"{cli_output[-2000:]}\n--- state: {state['type']}: {state.get('message')}\n--- logs:\n{lines}"


def task_runs(stack: PrefectStack, flow_run_id: str, prefix: str = "track ") -> list[dict[str, Any]]:
    rows = stack.api("POST", "/task_runs/filter", json={"flow_runs": {"id": {"any_": [flow_run_id]}}, "limit": 200})
    return [r for r in rows if r["name"].startswith(prefix)]


def final_task_states(stack: PrefectStack, flow_run_id: str, expected: int) -> dict[str, tuple[str, str]]:
    """``{task run name: (state type, state name)}`` of the tracking tasks, once all ``expected``
    are terminal (task states reach the server as events, a moment after the flow run ends)."""
    terminal = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}

    def ready() -> dict[str, tuple[str, str]] | None:
        rows = task_runs(stack, flow_run_id)
        if len(rows) >= expected and all(r["state_type"] in terminal for r in rows):
            return {r["name"]: (r["state_type"], r["state_name"]) for r in rows}
        return None

    return wait_until("terminal task run states", ready, 60.0)


def catalog_sequences(results: Path, flow_run_id: str | None = None) -> list[tuple[str, str]]:
    """(dataset, sequence) of every non-COMBINED sequence_metrics row of the catalog (of the runs
    recorded by ``flow_run_id`` when given: every flow run records its own runs)."""
    import catalog

    runs = catalog.load("runs", root=results)
    if flow_run_id is not None:
        runs = runs[runs["flow_run_id"] == flow_run_id]
    metrics = catalog.load("sequence_metrics", root=results)
    metrics = metrics[metrics["sequence"] != "COMBINED"].merge(runs[["run_id", "dataset"]], on="run_id")
    return sorted(zip(metrics["dataset"], metrics["sequence"], strict=True))


def timing_records(results: Path, run_name: str = "e2e") -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for p in (results / run_name).rglob("*.timing.json"):
        rec = json.loads(p.read_text())
        out[(rec["dataset"], rec["sequence"])] = rec
    return out


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e-results")


def test_nightly_deployment_tracks_every_sequence_once_on_both_workers(
    deployed: PrefectStack, dask_cluster: DaskCluster, data_root: Path, results: Path, tmp_path: Path
) -> None:
    rc, text, flow_run_id, seconds = run_deployment(deployed, track_params(data_root, results, dask_cluster),
                                                    tmp_path / "run.log")
    print(f"first deployment run: {seconds:.1f} s")
    assert rc == 0, diagnose(deployed, flow_run_id, text)
    assert deployed.api("GET", f"/flow_runs/{flow_run_id}")["state"]["type"] == "COMPLETED"

    # one catalog row per sequence, exactly once, all from this flow run
    assert catalog_sequences(results) == CATALOGUED
    import catalog

    runs = catalog.load("runs", root=results)
    assert set(runs["flow_run_id"]) == {flow_run_id}
    assert set(runs["tag"]) == {"nightly"}
    assert set(runs["dataset"]) == {"pets09-s2l1", "MOT17-mini", "synth"}  # canonical names
    assert set(runs["run_name"]) == {"e2e"} and set(runs["run_group"]) == {flow_run_id}
    assert set(runs["sequences_tracked"]) == {1, 2, 3} and set(runs["sequences_cached"]) == {0}

    # every sequence tracked once, by a task of this flow run; both Dask workers took part
    states = final_task_states(deployed, flow_run_id, len(EXPECTED))
    assert states == {f"track {d}/{s}": ("COMPLETED", "Completed") for d, s in EXPECTED}
    recs = timing_records(results)
    assert set(recs) == EXPECTED
    assert {r["worker"] for r in recs.values()} == {"w1", "w2"}
    for (dataset, seq), rec in recs.items():
        assert Path(rec["result_path"]).is_file()
        assert rec["frames"] == {"PETS09-S2L1": PETS_FRAMES, "MOT17-02-FRCNN": 4, "MOT17-05-FRCNN": 6}.get(
            seq, SYNTH.length), (dataset, seq)
        assert rec["torch_threads"] == max(1, usable_cores() // 2)  # two one-thread workers share the host
    # the real model ran on PETS (private detections: forward time recorded)
    assert recs[("pets09-s2l1", "PETS09-S2L1")]["ms"]["forward"] > 0

    # the tables artifact of this run
    arts = deployed.api("POST", "/artifacts/filter",
                        json={"artifacts": {"key": {"any_": ["track-all-e2e"]}, "flow_run_id": {"any_": [flow_run_id]}}})
    assert len(arts) == 1 and arts[0]["type"] == "markdown"
    md = arts[0]["data"]
    for _, seq in EXPECTED:
        assert seq in md
    assert "6 tracked, 0 cached, 0 failed" in md
    assert "Table VI" in md


def test_rerun_is_served_from_the_cache_without_duplicates(
    deployed: PrefectStack, dask_cluster: DaskCluster, data_root: Path, results: Path, tmp_path: Path
) -> None:
    before = {p: p.stat().st_mtime_ns for p in (results / "e2e").rglob("*.txt")}
    import catalog

    runs_before = sorted(catalog.load("runs", root=results)["run_id"])
    rc, text, flow_run_id, seconds = run_deployment(deployed, track_params(data_root, results, dask_cluster),
                                                    tmp_path / "rerun.log")
    print(f"cached re-run: {seconds:.1f} s")
    assert rc == 0, diagnose(deployed, flow_run_id, text)
    states = final_task_states(deployed, flow_run_id, len(EXPECTED))
    assert states == {f"track {d}/{s}": ("COMPLETED", "Cached") for d, s in EXPECTED}
    # nothing re-written: same result files; the re-run is an observation of its own (one new run
    # per dataset, with this flow run's id and counts) sharing the earlier runs' tracks and events
    assert {p: p.stat().st_mtime_ns for p in (results / "e2e").rglob("*.txt")} == before
    runs = catalog.load("runs", root=results)
    new = runs[~runs["run_id"].isin(runs_before)]
    assert len(runs) == 2 * len(runs_before) and set(new["flow_run_id"]) == {flow_run_id}
    assert set(new["sequences_tracked"]) == {0} and sorted(new["sequences_cached"]) == [1, 2, 3]
    assert set(new["results_run_id"]) == set(runs_before)
    assert sorted(catalog.store.run_ids("tracks", results)) == runs_before
    assert catalog_sequences(results, flow_run_id) == CATALOGUED
    arts = deployed.api("POST", "/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}})
    assert any("0 tracked, 6 cached, 0 failed" in a["data"] for a in arts)


def test_a_cached_sequence_whose_result_was_deleted_is_tracked_again(
    deployed: PrefectStack, dask_cluster: DaskCluster, data_root: Path, results: Path, tmp_path: Path
) -> None:
    gone = results / "e2e" / "synth" / "train" / "SYNTH-02.txt"
    content = gone.read_bytes()
    gone.unlink()
    rc, text, flow_run_id, _ = run_deployment(deployed, track_params(data_root, results, dask_cluster),
                                              tmp_path / "stale.log")
    assert rc == 0, diagnose(deployed, flow_run_id, text)
    assert gone.read_bytes() == content  # gt mode is deterministic
    names = [r["name"] for r in task_runs(deployed, flow_run_id)]
    # the cache hit was refused and the sequence tracked by a second, refreshing task run
    assert sorted(names) == sorted([*(f"track {d}/{s}" for d, s in EXPECTED), "track synth/SYNTH-02"])
    logs = deployed.api("POST", "/logs/filter", json={"logs": {"flow_run_id": {"any_": [flow_run_id]}}, "limit": 200})
    assert any("synth/train/SYNTH-02: cached record unusable" in r["message"] and "missing" in r["message"]
               for r in logs)
    arts = deployed.api("POST", "/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}})
    assert any("1 tracked, 5 cached, 0 failed" in a["data"] for a in arts)


def test_a_corrupt_image_fails_only_its_sequence_and_the_flow(
    deployed: PrefectStack, dask_cluster: DaskCluster, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    generate(data / "synth-bad" / "images" / "train", SynthConfig(sequences=3, length=12, width=320, height=256,
                                                                  objects=3, seed=11, prefix="BAD"))
    corrupt = data / "synth-bad" / "images" / "train" / "BAD-02" / "img1" / "000006.jpg"
    corrupt.write_bytes(b"\xff\xd8 this is not a JPEG")
    results = tmp_path / "results"
    params = track_params(data, results, dask_cluster, datasets=[{"name": "synth-bad"}], run_name="bad")
    rc, text, flow_run_id, _ = run_deployment(deployed, params, tmp_path / "bad.log")
    assert rc == 1, diagnose(deployed, flow_run_id, text)
    state = deployed.api("GET", f"/flow_runs/{flow_run_id}")["state"]
    assert state["type"] == "FAILED"
    assert "synth-bad/train/BAD-02" in state["message"] and "000006.jpg" in state["message"]
    assert "BAD-01" not in state["message"] and "BAD-03" not in state["message"]
    tasks = {k: v[0] for k, v in final_task_states(deployed, flow_run_id, 3).items()}
    assert tasks == {"track synth-bad/BAD-01": "COMPLETED", "track synth-bad/BAD-02": "FAILED",
                     "track synth-bad/BAD-03": "COMPLETED"}
    # the others were evaluated and catalogued; the bad one left no result behind
    assert catalog_sequences(results, flow_run_id) == [("synth-bad", "BAD-01"), ("synth-bad", "BAD-03")]
    assert not (results / "bad" / "synth-bad" / "train" / "BAD-02.txt").exists()


def _worker_logging(cluster: DaskCluster, marker: str, offsets: dict[str, int]) -> str | None:
    """The worker whose log has ``marker`` after byte ``offsets[name]`` (output of this run only)."""
    for name, svc in cluster.workers.items():
        with open(svc.log, "rb") as fh:
            fh.seek(offsets.get(name, 0))
            if marker.encode() in fh.read():
                return name
    return None


def test_sigkill_of_a_dask_worker_mid_run_still_tracks_every_sequence_once(
    deployed: PrefectStack, dask_cluster: DaskCluster, data_root: Path, tmp_path: Path
) -> None:
    results = tmp_path / "results"  # a fresh cache: everything is tracked again
    offsets = {name: svc.log.stat().st_size for name, svc in dask_cluster.workers.items()}
    params = track_params(data_root, results, dask_cluster)
    # one torch thread per task: alone on the host, the survivor's share would be every core, and
    # on a busy machine two OpenMP threads next to other jobs crawl (seen: 0.6 fps instead of 9)
    params["cluster"]["torch_threads"] = 1
    proc = start_deployment_run(deployed, params, tmp_path / "kill.log")
    try:
        # PETS is the longest sequence; kill its worker once it has done a tenth of the frames
        victim = wait_until("PETS09-S2L1 progress in a Dask worker log",
                            lambda: _worker_logging(dask_cluster, f"PETS09-S2L1: {PETS_FRAMES // 10}/", offsets),
                            RUN_TIMEOUT_S, interval_s=0.2)
        dask_cluster.workers[victim].kill(signal.SIGKILL)
        rc, text, flow_run_id = finish(deployed, proc, tmp_path / "kill.log")
    finally:
        if proc.poll() is None:
            proc.kill()
    assert rc == 0, diagnose(deployed, flow_run_id, text)
    assert catalog_sequences(results) == CATALOGUED
    recs = timing_records(results)
    assert set(recs) == EXPECTED
    survivor = ({"w1", "w2"} - {victim}).pop()
    assert recs[("pets09-s2l1", "PETS09-S2L1")]["worker"] == survivor
    assert recs[("pets09-s2l1", "PETS09-S2L1")]["frames"] == PETS_FRAMES
    states = final_task_states(deployed, flow_run_id, len(EXPECTED))
    assert set(states) == {f"track {d}/{s}" for d, s in EXPECTED}
    assert {v[0] for v in states.values()} == {"COMPLETED"}
    # bring the cluster back to two workers for whatever runs next
    dask_cluster.add_worker(victim)
    dask_cluster.wait_for_workers({"w1", "w2"})


def run_named_deployment(stack: PrefectStack, name: str, params: dict[str, Any], log: Path) -> tuple[int, str, str]:
    cmd = [str(BIN / "prefect"), "deployment", "run", name, "--params", json.dumps({"params": params}), "--watch",
           "--watch-timeout", str(RUN_TIMEOUT_S)]
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, cwd=REPO, env=stack.env, stdout=fh, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
    return finish(stack, proc, log)


def test_nightly_compares_with_the_previous_nightly_and_fails_on_a_regression(
    deployed: PrefectStack, dask_cluster: DaskCluster, tmp_path: Path
) -> None:
    data, results = tmp_path / "data", tmp_path / "results"

    def params(tracker_preset: str) -> dict[str, Any]:
        track = track_params(data, results, dask_cluster, datasets=[{"name": "synth-mini", "mode": "gt"}],
                             run_name="nightly")
        # the drop below is about 0.9 MOTA points: warn above 0.1, fail above 0.5
        return {"prepare": ["synth-mini"], "track": {**track, "tracker_preset": tracker_preset},
                "thresholds": {"metric_warn": 0.001, "metric_fail": 0.005}}

    rc, text, first = run_named_deployment(deployed, "nightly/nightly", params("default"), tmp_path / "n1.log")
    assert rc == 0, diagnose(deployed, first, text)
    art = deployed.api("POST", "/artifacts/filter", json={"artifacts": {"key": {"any_": ["nightly-comparison-nightly"]},
                                                                        "flow_run_id": {"any_": [first]}}})
    assert len(art) == 1 and "first nightly of this set" in art[0]["data"]

    # PostgreSQL restarted between the nights: the server keeps its history (the first night's run
    # and artifact), and the comparison below still finds the previous run
    deployed.restart_postgres()
    assert wait_until("the API after the database restart",
                      lambda: deployed.api("GET", f"/flow_runs/{first}")["state"]["type"] == "COMPLETED", 60.0)

    # the next night runs the SOTS-compatible preset: new tracks are reported one frame later, so
    # MOTA drops (fps is not compared: gt-mode runs have no model to time)
    rc, text, second = run_named_deployment(deployed, "nightly/nightly", params("original"), tmp_path / "n2.log")
    assert rc == 1, diagnose(deployed, second, text)
    state = deployed.api("GET", f"/flow_runs/{second}")["state"]
    assert "NightlyRegressionError" in state["message"] and "MOTA" in state["message"]
    import catalog

    runs = catalog.load("runs", root=results).sort_values("started_at")
    assert list(runs["tag"]) == ["nightly", "nightly"] and runs["run_id"].nunique() == 2
    prev_id, cur_id = list(runs["run_id"])
    md = deployed.api("POST", "/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [second]},
                                                                       "key": {"like_": "nightly-comparison"}}})[0]["data"]
    assert f"| {cur_id} | {prev_id} |" in md
    assert "| FAIL | synth-mini | train | COMBINED | MOTA | 1.000 |" in md
    assert "| fps |" not in md


def test_the_same_flow_runs_on_a_local_cluster_from_the_command_line(deployed: PrefectStack, tmp_path: Path) -> None:
    data = tmp_path / "data"
    generate(data / "synth" / "images" / "train", SynthConfig(sequences=4, length=20, width=320, height=240,
                                                              objects=3, seed=5))
    params = tmp_path / "params.yaml"
    params.write_text(f"data_root: {data}\nresults_root: {tmp_path / 'results'}\ndatasets:\n  - name: synth\n")
    cmd = [str(BIN / "python"), "-m", "flows", "track-all", str(params), "--set", "mode=gt",
           "--set", "cluster.local_workers=2", "--set", "run_name=local"]
    out = subprocess.run(cmd, cwd=tmp_path, env=deployed.env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
                         check=False)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    summary = cli_json(out.stdout)
    assert (summary["sequences"], summary["tracked"], summary["failed"]) == (4, 4, [])
    assert set(summary["workers"]) <= {"0", "1"}
    assert catalog_sequences(tmp_path / "results") == [("synth", f"SYNTH-0{i}") for i in range(1, 5)]
    # a bad parameter is refused before anything runs, naming the field
    bad = subprocess.run([*cmd, "--set", "cluster.local_workers=0"], cwd=tmp_path, env=deployed.env,
                         capture_output=True, text=True, timeout=120, check=False)
    assert bad.returncode == 2 and "cluster.local_workers" in bad.stderr


def run_flow_cli(stack: PrefectStack, flow: str, params: dict[str, Any], cwd: Path) -> dict[str, Any]:
    """``python -m flows FLOW PARAMS.json`` recorded on the module's server; returns its JSON result."""
    path = cwd / f"{flow}.json"
    path.write_text(json.dumps(params))
    out = subprocess.run([str(BIN / "python"), "-m", "flows", flow, str(path)], cwd=cwd, env=stack.env,
                         capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return cli_json(out.stdout)


def cli_json(stdout: str) -> dict[str, Any]:
    """The JSON document ``python -m flows`` prints last (log lines may precede it)."""
    start = 0 if stdout.startswith("{") else stdout.rindex("\n{\n") + 1
    return json.loads(stdout[start:])


def test_evaluate_imports_an_external_tracker_and_report_regenerates_the_tables(
    prefect_stack: PrefectStack, tmp_path: Path
) -> None:
    golden = shared_data() / "eval-golden"
    expected = json.loads((golden / "EXPECTED.json").read_text())["tud"]["sequences"]
    results = tmp_path / "results"
    params = {"gt_root": str(golden / "tud" / "gt"), "results": str(golden / "tud" / "trackers" / "motmetrics-test"),
              "preset": "mot15", "dataset": "TUD", "tracker_name": "motmetrics-test", "catalog_root": str(results)}
    res = run_flow_cli(prefect_stack, "evaluate", params, tmp_path)
    rows = {r["sequence"]: r for r in res["rows"]}
    for seq in ("TUD-Campus", "TUD-Stadtmitte"):
        for m in ("MOTA", "IDF1", "HOTA"):
            assert rows[seq][m] == pytest.approx(expected[seq][m], abs=1e-9)
    import catalog

    runs = catalog.load("runs", root=results)
    assert list(runs["source"]) == ["external"] and list(runs["tracker"]) == ["motmetrics-test"]
    # evaluating the same files again is a run of its own that shares the first one's tracks/events
    run_flow_cli(prefect_stack, "evaluate", params, tmp_path)
    runs = catalog.load("runs", root=results).sort_values("started_at")
    assert len(runs) == 2 and list(runs["results_run_id"].fillna("-")) == ["-", runs["run_id"].iloc[0]]
    rep = run_flow_cli(prefect_stack, "report", {"catalog_root": str(results)}, tmp_path)
    assert "| TUD |" in rep["report_md"] and "motmetrics-test" in rep["report_md"]
    assert (results / "tables" / "table_vi.md").is_file()
    arts = prefect_stack.api("POST", "/artifacts/filter", json={"artifacts": {"key": {"any_": ["report"]}}})
    assert arts and "motmetrics-test" in arts[0]["data"]


def test_train_flow_returns_the_checkpoint_and_its_record(prefect_stack: PrefectStack, tmp_path: Path) -> None:
    import yaml

    from cstrack.fsutil import sha256_file

    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({
        "name": "tiny", "out_dir": str(tmp_path / "run"), "epochs": 1, "batch": 4, "nominal_batch": 4,
        "data": {"sequences": [{"path": str(shared_data() / "mot15" / "PETS09-S2L1-head8")}], "input_size": [64, 64],
                 "resize": "letterbox"},
        "init": {"kind": "random"}, "optim": {"warmup_epochs": 0, "warmup_min_iters": 0},
    }))
    res = run_flow_cli(prefect_stack, "train", {"config": str(config), "device": "auto"}, tmp_path)
    weights = Path(res["weights"])
    assert weights.is_file() and res["epochs"] == 1
    assert res["record"]["sha256"] == sha256_file(weights) and res["record"]["variant"] == "cstrack-n"
    # resuming a finished run trains nothing more and exports the same weights
    again = run_flow_cli(prefect_stack, "train", {"config": str(config), "resume": True}, tmp_path)
    assert again["resumed_from"] == 1 and again["epochs"] == 1
