"""Scale of ``track-all``: many short sequences and MOT20 crowds through the real flow.

Usage (one command; every figure lands in ``--out`` with the machine and its load average):

    python bench/pipeline_scale.py [--counts 10,100,1000] [--frames 20] [--modes gt,cached]
        [--backend sqlite|postgres] [--mot20] [--label NAME] [--out bench/out/pipeline_scale.json]

What it does:

1. generates the datasets once under ``--data`` (default ``/tmp/cstrack-pipeline-scale``, reused by
   later runs): ``scale<N>``, N sequences of ``--frames`` frames, through the dataset registry's
   ``synthetic`` converter (a registry file written beside the data; 320x240 images), and with
   ``--mot20`` ``mot20-density``: 4 sequences x 1,000 frames x 200 people at 1920x1080, gt only
   (gt mode never reads a pixel: :func:`cstrack.run.frames.read_frames` numbers the frames without a
   detector, so no image is written);
2. starts the services once: a temporary Prefect server (SQLite or a throw-away PostgreSQL
   cluster), a Dask scheduler and ``--workers`` one-thread Dask workers as separate processes (the
   command templates of :mod:`flows.services`), then one untimed warm-up flow run (the workers
   import everything; a fresh server is busy for its first minute);
3. runs each (mode, count) as a flow run in a child process of its own (so the flow process's peak
   memory is its own), while this process samples the memory of the scheduler and of each worker
   every 0.2 s; ``cached`` runs replay network outputs from a detection cache filled by an untimed
   run first (each timed run has a fresh results root, so nothing is served by the tracking cache).

Per run (``runs[]``): ``wall_s`` (the flow call), ``cold_start_s`` (flow start to the first
sequence started, from the timing records), ``task_compute_s`` (summed tracking time of the
sequences, plus their scoring on the workers where the flow does that: ``scoring_on_workers_s``),
``overhead_ms_per_sequence`` = (wall - cold start - task compute / workers) / sequences,
``evaluation`` (time and where it ran), ``catalog_write_s``, ``task_runs`` (Prefect task runs of
the flow run, by task name), ``api_requests`` (HTTP requests to the Prefect API made by the flow
process and by the workers; websocket events not counted), ``peak_rss_mb`` (flow process,
scheduler, each worker), ``prefect_db_mb`` (on disk, after the run).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO))

DEFAULT_DATA = Path(tempfile.gettempdir()) / "cstrack-pipeline-scale"
MOT20: dict[str, Any] = {"name": "mot20-density", "sequences": 4, "frames": 1000, "people": 200, "width": 1920,
                         "height": 1080}


# ------------------------------------------------------------------------------------------------
# datasets


def scale_dataset(data_root: Path, sequences: int, frames: int, seed: int = 0) -> str:
    """``scale<N>``: N synthetic sequences of ``frames`` frames, prepared by the registry's
    synthetic converter (a no-op when already prepared)."""
    import yaml

    from cstrack.data.prepare import prepare
    from cstrack.data.registry import load_registry

    name = f"scale{sequences}x{frames}"
    registry = data_root / f"{name}.registry.yaml"
    entry: dict[str, Any] = {"title": f"{sequences} synthetic sequences x {frames} frames (bench/pipeline_scale.py)",
             "homepage": None, "licence": "generated data", "converter": "synthetic",
             "options": {"sequences": sequences, "length": frames, "width": 320, "height": 240, "objects": 4,
                         "seed": seed, "frame_rate": 25},
             "files": []}
    data_root.mkdir(parents=True, exist_ok=True)
    registry.write_text(yaml.safe_dump({"datasets": {name: entry}, "mixtures": {}}), encoding="utf-8")
    prepare(name, data_root, registry=load_registry(registry), progress=False)
    return name


def crowd_gt(frames: int, people: int, width: int, height: int, seed: int) -> list[str]:
    """MOT20-like ground truth: ``people`` pedestrians walking with constant velocity and a little
    noise, bouncing off the borders, every one in every frame (MOT20 layout: flag 1, class 1,
    visibility 1)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    h = rng.uniform(0.06, 0.16, people) * height
    w = h * rng.uniform(0.35, 0.45, people)
    x = rng.uniform(0, width - w)
    y = rng.uniform(0, height - h)
    vx, vy = rng.normal(0, 2.0, people), rng.normal(0, 0.7, people)
    lines = []
    for f in range(1, frames + 1):
        for k in range(people):
            lines.append(f"{f},{k + 1},{x[k]:.2f},{y[k]:.2f},{w[k]:.2f},{h[k]:.2f},1,1,1.0\n")
        x += vx + rng.normal(0, 0.3, people)
        y += vy + rng.normal(0, 0.1, people)
        vx = np.where((x < 0) | (x > width - w), -vx, vx)
        vy = np.where((y < 0) | (y > height - h), -vy, vy)
        x, y = np.clip(x, 0, width - w), np.clip(y, 0, height - h)
    return lines


def mot20_dataset(data_root: Path) -> str:
    """``mot20-density``: MOT20's shape (4 x 1,000 frames x 200 people, 1920x1080), gt only."""
    from cstrack.data.mot import SeqInfo, write_seqinfo
    from cstrack.fsutil import atomic_write_text

    m = MOT20
    split = data_root / str(m["name"]) / "images" / "train"
    for i in range(int(m["sequences"])):
        seq = split / f"CROWD-{i + 1:02d}"
        if (seq / "gt" / "gt.txt").is_file():
            continue
        (seq / "img1").mkdir(parents=True, exist_ok=True)
        write_seqinfo(seq, SeqInfo(seq.name, 25.0, int(m["frames"]), int(m["width"]), int(m["height"]), "img1", ".jpg"))
        atomic_write_text(seq / "gt" / "gt.txt", "".join(crowd_gt(int(m["frames"]), int(m["people"]), int(m["width"]),
                                                                  int(m["height"]), seed=i)))
    return str(m["name"])


# ------------------------------------------------------------------------------------------------
# services


def _stack_module(name: str) -> Any:
    """``stack.<name>`` (the services stack), or where it lived before (``flows.services``), so
    that the same script measures an older checkout (the baseline)."""
    import importlib

    try:
        return importlib.import_module(f"stack.{name}")
    except ImportError:
        return importlib.import_module("flows.services" + ("" if name == "commands" else f".{name}"))


@contextlib.contextmanager
def prefect_server(home: Path, backend: str) -> Iterator[tuple[dict[str, str], Path]]:
    """A temporary Prefect server; yields (client settings, the folder its database lives in)."""
    temporary_prefect_server = _stack_module("temporary").temporary_prefect_server
    with temporary_prefect_server(home, backend=backend) as settings:
        yield settings, home


def db_size_mb(home: Path, backend: str) -> float | None:
    """The Prefect database on disk: the SQLite file (+ WAL), or the PostgreSQL server's data
    folders (found from its processes' command lines; the whole cluster, a few MB of it fixed)."""
    if backend == "sqlite":
        files = [p for p in home.glob("prefect.db*") if p.is_file()]
        return round(sum(p.stat().st_size for p in files) / 2**20, 2) if files else None
    import psutil

    sizes = []
    for p in psutil.process_iter(["cmdline", "ppid"]):
        cmd = p.info["cmdline"] or []
        if cmd and cmd[0].endswith("postgres") and "-D" in cmd:
            d = Path(cmd[cmd.index("-D") + 1])
            with contextlib.suppress(OSError):
                sizes.append(sum(f.stat().st_size for f in d.rglob("*") if f.is_file()))
    return round(max(sizes) / 2**20, 2) if sizes else None


class Dask:
    """A ``dask scheduler`` and one-thread ``dask worker`` processes (flows.services templates)."""

    def __init__(self, env: dict[str, str], workers: int, logs: Path) -> None:
        from distributed import Client

        commands = _stack_module("commands")
        DASK_SCHEDULER, DASK_WORKER = commands.DASK_SCHEDULER, commands.DASK_WORKER
        free_loopback_port = commands.free_loopback_port

        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        port = free_loopback_port()
        self.address = f"tcp://127.0.0.1:{port}"
        logs.mkdir(parents=True, exist_ok=True)
        self._start("scheduler", DASK_SCHEDULER.render(host="127.0.0.1", port=port, http="127.0.0.1:0"), env, logs)
        for i in range(workers):
            argv = DASK_WORKER.render(scheduler=self.address, host="127.0.0.1", name=f"w{i + 1}", http="127.0.0.1:0")
            self._start(f"w{i + 1}", argv, env, logs)
        self.client = Client(self.address, timeout=120)
        self.client.wait_for_workers(workers, timeout=300)

    def _start(self, name: str, argv: list[str], env: dict[str, str], logs: Path) -> None:
        argv[0] = str(Path(sys.executable).parent / argv[0])
        with open(logs / f"{name}.log", "ab") as fh:
            self.procs[name] = subprocess.Popen(argv, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL, start_new_session=True)

    def close(self) -> None:
        import signal

        self.client.close()
        for proc in reversed(list(self.procs.values())):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)


class PeakSampler:
    """Peak RSS (MB) of process trees, sampled every ``interval`` seconds in a thread."""

    def __init__(self, pids: dict[str, int], interval: float = 0.2) -> None:
        self.pids, self.interval = pids, interval
        self.peak: dict[str, float] = dict.fromkeys(pids, 0.0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _rss(self, pid: int) -> float:
        import psutil

        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0.0
        total = 0
        for p in procs:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                total += p.memory_info().rss
        return total / 2**20

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, pid in self.pids.items():
                self.peak[name] = max(self.peak[name], self._rss(pid))
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# ------------------------------------------------------------------------------------------------
# request counting (installed in the flow process and, through Dask, in every worker)

def _counts() -> dict[str, int]:
    """The process's counter, kept on the httpx module (this function is pickled by value to the
    Dask workers, so a module global of this script would be a copy per call)."""
    import httpx

    if not hasattr(httpx, "_cstrack_request_counts"):
        httpx._cstrack_request_counts = {}  # type: ignore[attr-defined]
    counts: dict[str, int] = httpx._cstrack_request_counts  # type: ignore[attr-defined]
    return counts


def install_request_counter() -> bool:
    """Count every HTTP request an httpx client of this process sends (Prefect's clients are httpx
    clients; their retries count as requests)."""
    import httpx

    count = _counts()
    count.clear()
    if getattr(httpx.AsyncClient.send, "_counted", False):
        return True
    async_send, sync_send = httpx.AsyncClient.send, httpx.Client.send

    async def counted_async(self: Any, request: Any, *a: Any, **k: Any) -> Any:
        count[request.url.path] = count.get(request.url.path, 0) + 1
        return await async_send(self, request, *a, **k)

    def counted_sync(self: Any, request: Any, *a: Any, **k: Any) -> Any:
        count[request.url.path] = count.get(request.url.path, 0) + 1
        return sync_send(self, request, *a, **k)

    counted_async._counted = True  # type: ignore[attr-defined]
    httpx.AsyncClient.send = counted_async  # type: ignore[method-assign]
    httpx.Client.send = counted_sync  # type: ignore[method-assign]
    return True


def request_counts() -> dict[str, int]:
    return dict(_counts())


def _kinds(counts: dict[str, int]) -> dict[str, int]:
    """Requests grouped by the API's resource (``/api/task_runs/<id>/set_state`` -> ``task_runs/set_state``)."""
    out: dict[str, int] = {}
    for path, n in counts.items():
        parts = [p for p in path.split("/") if p and p != "api" and not _is_id(p)]
        key = "/".join(parts[:2]) or "/"
        out[key] = out.get(key, 0) + n
    return dict(sorted(out.items()))


def _is_id(part: str) -> bool:
    return len(part) == 36 and part.count("-") == 4


# ------------------------------------------------------------------------------------------------
# one flow run (child process)


class _Timer:
    """Wraps module functions to add up their wall time (evaluation and catalog writes in the flow
    process: what the baseline's evaluate task spends)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    def wrap(self, module: Any, attr: str, key: str) -> None:
        if not hasattr(module, attr):
            return
        fn = getattr(module, attr)

        def timed(*a: Any, **k: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                self.seconds[key] = self.seconds.get(key, 0.0) + time.perf_counter() - t0
                self.calls[key] = self.calls.get(key, 0) + 1

        setattr(module, attr, timed)


def child(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one track-all flow run as described by ``spec``; return its figures."""
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    import catalog.ingest
    import cstrack.eval
    from flows.demo import flush_prefect
    from flows.params import TrackAllParams
    from flows.track_all import SequencesFailedError, track_all

    timer = _Timer()
    timer.wrap(cstrack.eval, "prepare", "evaluation_in_flow")
    timer.wrap(cstrack.eval, "evaluate_prepared", "evaluation_in_flow")
    timer.wrap(cstrack.eval, "evaluate", "evaluation_in_flow")
    timer.wrap(catalog.ingest, "ingest_evaluation", "catalog_write")
    timer.wrap(catalog.ingest, "ingest_tracking", "catalog_write")
    install_request_counter()
    params = TrackAllParams.model_validate(spec["params"])
    t_call = time.time()
    error = None
    try:
        summary = track_all(params)
    except SequencesFailedError as exc:
        summary, error = exc.summary, str(exc).splitlines()[0]
    t_end = time.time()
    flush_prefect()
    return {"t_call": t_call, "t_end": t_end, "summary": _small(summary), "error": error,
            "timers": timer.seconds, "timer_calls": timer.calls,
            "flow_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "api_requests_flow": request_counts()}


def _small(summary: dict[str, Any]) -> dict[str, Any]:
    keep = ("flow_run_id", "sequences", "tracked", "cached", "failed", "wall_s", "first_frame_s", "workers",
            "catalog_runs", "timings", "evaluation")
    out = {k: summary.get(k) for k in keep if k in summary}
    out["failed"] = (summary.get("failed") or [])[:5]
    out["metrics"] = [{"label": m["label"], "combined": _combined(m)} for m in summary.get("metrics", [])]
    return out


def _combined(m: dict[str, Any]) -> Any:
    table = m.get("table", "")
    lines = [ln for ln in table.splitlines() if ln.startswith("COMBINED")]
    return lines[0] if lines else None


# ------------------------------------------------------------------------------------------------
# the parent: services, runs, figures


def _records(results: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in results.rglob("*.timing.json")]


def _flow_start(api: str, flow_run_id: str | None) -> float | None:
    """When the flow run started (the server's record), as a Unix time."""
    import httpx

    if not flow_run_id:
        return None
    start = httpx.get(f"{api}/flow_runs/{flow_run_id}", timeout=60).json().get("start_time")
    return dt.datetime.fromisoformat(start).timestamp() if start else None


def _task_runs(api: str, flow_run_id: str | None) -> dict[str, Any]:
    """Task runs of the flow run: count by task name, and the evaluation tasks' durations."""
    import httpx

    if not flow_run_id:
        return {}
    body: dict[str, Any] = {"flow_runs": {"id": {"any_": [flow_run_id]}}}
    total = httpx.post(f"{api}/task_runs/count", json=body, timeout=60).json()
    by_name: dict[str, int] = {}
    eval_s = 0.0
    offset = 0
    while True:
        page = httpx.post(f"{api}/task_runs/filter", json={**body, "limit": 200, "offset": offset}, timeout=60).json()
        for tr in page:
            key = tr["name"].split(" ")[0]
            by_name[key] = by_name.get(key, 0) + 1
            if key in ("evaluate", "score"):
                eval_s += float(tr.get("total_run_time") or 0.0)
        if len(page) < 200:
            break
        offset += 200
    return {"total": total, "by_name": dict(sorted(by_name.items())), "evaluate_tasks_s": round(eval_s, 3)}


def run_one(spec: dict[str, Any], env: dict[str, str], dask: Dask, api: str, home: Path, backend: str,
            workdir: Path) -> dict[str, Any]:
    """One flow run in a child process, with memory sampling and request counts."""
    dask.client.run(install_request_counter)
    load = os.getloadavg()
    spec_file, out_file = workdir / "spec.json", workdir / "child.json"
    spec_file.write_text(json.dumps(spec))
    out_file.unlink(missing_ok=True)
    proc = subprocess.Popen([sys.executable, __file__, "--child", str(spec_file), "--child-out", str(out_file)],
                            env=env, cwd=REPO)
    pids = {"scheduler": dask.procs["scheduler"].pid, **{n: p.pid for n, p in dask.procs.items() if n != "scheduler"}}
    with PeakSampler(pids) as sampler:
        rc = proc.wait()
    if rc != 0 or not out_file.is_file():
        raise RuntimeError(f"flow run child exited with {rc}")
    res = json.loads(out_file.read_text())
    worker_req: dict[str, int] = {}
    for counts in dask.client.run(request_counts).values():
        for k, v in counts.items():
            worker_req[k] = worker_req.get(k, 0) + v
    results = Path(spec["params"]["results_root"]) / spec["params"]["run_name"]
    recs = _records(results)
    s = res["summary"]
    wall = res["t_end"] - res["t_call"]
    flow_start = _flow_start(api, s.get("flow_run_id")) or res["t_call"]
    starts = [dt.datetime.fromisoformat(r["started"]).timestamp() for r in recs]
    cold = (min(starts) - flow_start) if starts else None
    scoring = float((s.get("evaluation") or {}).get("workers_s") or 0.0)  # scored on the workers (after the change)
    compute = sum(float(r.get("wall_s", 0.0)) for r in recs) + scoring
    workers = len(pids) - 1
    n = int(s.get("sequences") or 0)
    overhead = ((wall - (cold or 0.0) - compute / workers) / n * 1000.0) if n else None
    flow_req = res["api_requests_flow"]
    evaluation = s.get("evaluation") or {
        "where": "flow process (one evaluate task per dataset/split, after every sequence was tracked)",
        "flow_s": round(res["timers"].get("evaluation_in_flow", 0.0), 3)}
    return {
        "mode": spec["mode"], "dataset": spec["dataset"], "sequences": n,
        "frames": sum(int(r["frames"]) for r in recs), "tracked": s.get("tracked"), "cached": s.get("cached"),
        "failed": s.get("failed"), "error": res["error"],
        "wall_s": round(wall, 3), "flow_wall_s": s.get("wall_s"),
        "cold_start_s": None if cold is None else round(cold, 3),
        "task_compute_s": round(compute, 3), "scoring_on_workers_s": round(scoring, 3), "workers": workers,
        "overhead_ms_per_sequence": None if overhead is None else round(overhead, 2),
        "evaluation": evaluation,
        "evaluate_tasks_s": None,  # filled below from the API
        "catalog_write_s": round(res["timers"].get("catalog_write", 0.0), 3),
        "timings": s.get("timings"),
        "api_requests": {"flow_process": sum(flow_req.values()), "workers": sum(worker_req.values()),
                         "flow_by_kind": _kinds(flow_req), "workers_by_kind": _kinds(worker_req)},
        "peak_rss_mb": {"flow_process": round(res["flow_peak_rss_mb"], 1),
                        **{k: round(v, 1) for k, v in sampler.peak.items()}},
        "prefect_db_mb": db_size_mb(home, backend),
        "metrics": s.get("metrics"),
        "load_average_start": [round(v, 2) for v in load],
        "load_average_end": [round(v, 2) for v in os.getloadavg()],
        "flow_run_id": s.get("flow_run_id"),
    }


def params_for(data: Path, results: Path, dataset: str, mode: str, address: str, preset: str | None = None,
               run_name: str = "scale", extra: dict[str, Any] | None = None) -> dict[str, Any]:
    sel: dict[str, Any] = {"name": dataset}
    if preset:
        sel["eval_preset"] = preset
    p: dict[str, Any] = {
        "data_root": str(data), "results_root": str(results), "run_name": run_name, "tag": "scale",
        "mode": mode, "datasets": [sel],
        "model": {"variant": "cstrack-n", "weights": "coco", "input_size": [320, 256]},
        "cluster": {"dask_address": address, "torch_threads": 1, "prefetch": 0},
    }
    p.update(extra or {})
    return p


def machine() -> dict[str, Any]:
    from cstrack.provenance import cpu_model

    return {"cpu": cpu_model(), "cores": os.cpu_count(), "load_average": [round(v, 2) for v in os.getloadavg()],
            "python": sys.version.split()[0]}


def bench(args: argparse.Namespace) -> dict[str, Any]:
    counts = [int(c) for c in args.counts.split(",") if c]
    modes = [m for m in args.modes.split(",") if m]
    data = Path(args.data)
    t0 = time.time()
    datasets = {n: scale_dataset(data, n, args.frames) for n in counts}
    datasets[1] = scale_dataset(data, 2, 10, seed=7)  # the warm-up dataset
    crowd = mot20_dataset(data) if args.mot20 else None
    gen_s = time.time() - t0
    print(f"[scale] datasets ready in {gen_s:.0f} s", flush=True)
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="pipeline-scale-") as tmp_name:
        tmp = Path(tmp_name)
        t_server = time.time()
        with prefect_server(tmp / "prefect", args.backend) as (settings, home):
            server_s = time.time() - t_server
            env = {**{k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "DASK_"))}, **settings,
                   "PREFECT_LOGGING_LEVEL": "WARNING", "DASK_TEMPORARY_DIRECTORY": str(tmp / "dask")}
            t_dask = time.time()
            dask = Dask(env, args.workers, tmp / "logs")
            dask_s = time.time() - t_dask
            try:
                def go(dataset: str, mode: str, results: Path, preset: str | None = None, timed: bool = True,
                       extra: dict[str, Any] | None = None) -> dict[str, Any] | None:
                    spec = {"mode": mode, "dataset": dataset,
                            "params": params_for(data, results, dataset, mode, dask.address, preset, extra=extra)}
                    r = run_one(spec, env, dask, settings["PREFECT_API_URL"], home, args.backend, tmp)
                    r["task_runs"] = _task_runs(settings["PREFECT_API_URL"], r.pop("flow_run_id"))
                    if not timed:
                        if r["failed"] or r["error"]:
                            raise RuntimeError(f"untimed {mode} run over {dataset} failed: {r['error']}")
                        return None
                    print(f"[scale] {mode} {dataset}: {r['sequences']} seq, wall {r['wall_s']:.1f} s, cold "
                          f"{r['cold_start_s']} s, overhead {r['overhead_ms_per_sequence']} ms/seq, task runs "
                          f"{r['task_runs'].get('total')}, flow rss {r['peak_rss_mb']['flow_process']} MB, "
                          f"load {r['load_average_end']}", flush=True)
                    runs.append(r)
                    out_partial = {"runs": runs}
                    args.out.with_suffix(".partial.json").write_text(json.dumps(out_partial, indent=1))
                    return r

                extra = json.loads(args.params) if args.params else None
                go(datasets[1], "gt", tmp / "warmup", timed=False, extra=extra)
                for mode in modes:
                    for n in counts:
                        results = tmp / f"results-{mode}-{n}"
                        if mode == "cached":  # fill the detection cache first (untimed), then replay
                            fill = tmp / f"fill-{n}"
                            go(datasets[n], mode, fill, timed=False, extra=extra)
                            results.mkdir(parents=True)
                            (results / "detcache").symlink_to(fill / "detcache")
                        go(datasets[n], mode, results, extra=extra)
                if crowd:
                    go(crowd, "gt", tmp / "results-mot20", preset="mot20", extra=extra)
            finally:
                dask.close()
    return {
        "benchmark": "pipeline_scale", "label": args.label, "backend": args.backend, "workers": args.workers,
        "frames_per_sequence": args.frames, "counts": counts, "modes": modes,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine(), "generation_s": round(gen_s, 1),
        "startup_s": {"prefect_server": round(server_s, 2), "dask_scheduler_and_workers": round(dask_s, 2)},
        "runs": runs, "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--counts", default="10,100", help="sequence counts, comma separated (issue 27: 10,100,1000,5000)")
    ap.add_argument("--frames", type=int, default=20, help="frames per sequence")
    ap.add_argument("--modes", default="gt", help="detection modes, comma separated: gt, cached")
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--mot20", action="store_true", help="also the MOT20-density run (4 x 1,000 frames x 200 people)")
    ap.add_argument("--params", default=None, help="extra track-all parameters (JSON object) for every run")
    ap.add_argument("--label", default="run", help="the name of this measurement in --out (baseline, final, ...)")
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="where the generated datasets are kept")
    ap.add_argument("--out", type=Path, default=Path("bench/out/pipeline_scale.json"))
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the services on the way out
    if args.child:
        res = child(json.loads(args.child.read_text()))
        args.child_out.write_text(json.dumps(res))
        return 0
    from cstrack.fsutil import atomic_write_json

    result = bench(args)
    previous = json.loads(args.out.read_text()) if args.out.is_file() else {}
    measurements = previous.get("measurements", {}) if isinstance(previous, dict) else {}
    measurements[args.label] = result
    atomic_write_json(args.out, {"benchmark": "pipeline_scale", "measurements": measurements})
    print(f"[scale] wrote {args.out} ({args.label})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
