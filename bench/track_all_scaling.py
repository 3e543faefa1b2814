"""Scaling of ``track-all`` on Dask: 1 worker x 1 thread against 2 workers x 1 thread, in one run.

Usage: python bench/track_all_scaling.py [--backend sqlite|postgres|both] [--sequences 8] [--frames 60] [--repeats 3]
                                         [--out bench/out/track_all_scaling.json]

One temporary Prefect server; 8 synthetic sequences tracked in private mode (cstrack-n with the
shipped COCO weights, so the detector's forward dominates, as in real runs), a fresh results root
for every run (nothing cached), one torch and one OpenCV thread per task.

- ``fps``: total frames / tracking makespan (first task start to last task end, from the tasks'
  timing records): the throughput of the Dask layer;
- **warm runs** (``1x1``, ``2x1``; the 1.85x target): a LocalCluster started by the benchmark whose
  workers have run an untimed flow of one 10-frame sequence per worker (imports, model load), then the timed flow against it
  via ``dask_address``, as for a long-lived cluster; ``prefetch: 0`` so that "1 worker x 1 thread"
  is one core of work per task. Each ``--repeats`` times, alternating; the ratio is the median over
  the repeats of each 2x1 run against the 1x1 run just before it (the VM's speed drifts by 10-30 %
  over minutes; every run is recorded);
- **cold runs** (``1x1-cold``, ``2x1-cold``): the flow starts its own LocalCluster (what a one-off
  run pays); ``flow_start_to_first_frame_s`` is the Prefect + Dask overhead: flow start (inside the
  flow) to the first tracked frame (worker processes, preload imports, model load);
  ``call_to_first_frame_s`` adds the client side (flow run creation); ``flow_fps`` = frames / flow
  wall time (cluster start-up, evaluation and catalogue included);
- ``1x1-prefetch``: one warm worker with the default read-ahead thread (``cluster.prefetch: 2``),
  whose decode and letterbox run on the second core.

A new Prefect server is busy for its first minute (migrations, background services): one small
untimed run comes first.
The machine's load average is recorded at start and end: on a shared VM other jobs steal cores.

``--backend``: the temporary server's database, SQLite (the demo's default) or a throw-away
PostgreSQL cluster (``stack.postgres``); ``both`` runs everything on each, one after the other.
``cpu_s_by_process``: CPU seconds each kind of process used during a run's flow call (Dask workers,
this process with the flow, the Dask scheduler and the nannies, the Prefect server, PostgreSQL,
other): on 2 cores every CPU second the services take is one the second worker does not get.
``stalls`` counts the ~2-s per-task stalls of a SQLite-backed server two ways: retryable database
errors in the server log ("database is locked", logged with ``PREFECT_API_LOG_RETRYABLE_ERRORS``) and
gaps over 1.5 s between one worker's consecutive tasks in the warm runs' timing records.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _makespan(results: Path) -> tuple[float, int, float, dict[str, float], float]:
    """(first task start to last task end, frames, summed task durations, mean ms per frame by stage,
    summed set-up seconds: model loads) from the timing records."""
    import json

    recs = [json.loads(p.read_text()) for p in results.rglob("*.timing.json")]
    setup = sum(float(r.get("setup_s", 0.0)) for r in recs)
    starts = [dt.datetime.fromisoformat(r["started"]) for r in recs]
    ends = [dt.datetime.fromisoformat(r["finished"]) for r in recs]
    busy = sum((e - b).total_seconds() for b, e in zip(starts, ends, strict=True))
    frames = sum(int(r["frames"]) for r in recs)
    ms: dict[str, float] = {}
    for r in recs:
        for stage, v in r.get("ms", {}).items():
            ms[stage] = ms.get(stage, 0.0) + float(v) * int(r["frames"]) / frames
    return (max(ends) - min(starts)).total_seconds(), frames, busy, {k: round(v, 3) for k, v in ms.items()}, setup


def _role(pid: int, ppid: int, cmdline: list[str], me: int) -> str:
    """What a process is to this benchmark (for the CPU accounting of :func:`_cpu_by_role`)."""
    text = " ".join(cmdline)
    if pid == me:
        return "bench (flow, Dask scheduler, nannies)"
    if ppid == me and "multiprocessing" in text:
        return "dask workers"
    if "prefect" in text and "server" in text:
        return "prefect server"
    if cmdline[:1] and "postgres" in cmdline[0]:
        return "postgresql"
    return "other"


def _cpu_snapshot() -> dict[int, tuple[str, float]]:
    """CPU seconds (user + system) so far of every process on the machine, with its role."""
    import psutil

    me = os.getpid()
    out: dict[int, tuple[str, float]] = {}
    for p in psutil.process_iter(["pid", "ppid", "cmdline", "cpu_times"]):
        info = p.info
        if info["cpu_times"] is None:
            continue
        t = info["cpu_times"]
        out[info["pid"]] = (_role(info["pid"], info["ppid"], info["cmdline"] or [], me), t.user + t.system)
    return out


def _cpu_by_role(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> dict[str, float]:
    """CPU seconds each role used between two snapshots (processes started in between count from 0;
    those that ended in between are missed: short-lived, small)."""
    used: dict[str, float] = {}
    for pid, (role, t) in after.items():
        prev = before.get(pid)
        used[role] = used.get(role, 0.0) + t - (prev[1] if prev and prev[0] == role else 0.0)
    return {k: round(v, 2) for k, v in sorted(used.items())}


def _run(track_all: Any, params_cls: Any, data: Path, results: Path, cluster: dict[str, Any],
         size: tuple[int, int], dataset: str = "synth") -> dict[str, Any]:
    params = params_cls(
        data_root=str(data), results_root=str(results), run_name="bench", tag="bench",
        model={"variant": "cstrack-n", "weights": "coco", "input_size": size},
        cluster={"torch_threads": 1, "prefetch": 0, **cluster}, datasets=[{"name": dataset}],
    )
    t_call = time.time()
    cpu_before = _cpu_snapshot()
    summary = track_all(params)
    wall = time.time() - t_call
    cpu_s = _cpu_by_role(cpu_before, _cpu_snapshot())
    makespan, frames, busy, ms, setup = _makespan(results / "bench")
    first_abs = summary["first_frame_s"]  # relative to the flow's own start
    return {
        "cluster": cluster, "frames": frames, "sequences": summary["sequences"], "workers": summary["workers"],
        "makespan_s": makespan, "fps": frames / makespan, "busy_s": busy, "flow_wall_s": wall, "flow_fps": frames / wall,
        "flow_start_to_first_frame_s": first_abs,
        "call_to_first_frame_s": None if first_abs is None else (wall - summary["wall_s"]) + first_abs,
        "per_sequence_fps": {s["sequence"]: s["fps"] for s in summary["per_sequence"]},
        "cpu_s_by_process": cpu_s, "ms_per_frame": ms, "setup_s": setup,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sequences", type=int, default=8)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--size", default="320x256", help="network input WxH")
    ap.add_argument("--repeats", type=int, default=3, help="warm runs of each configuration (alternating)")
    ap.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="sqlite",
                    help="the Prefect server's database (both: one after the other, same settings)")
    ap.add_argument("--no-cold", action="store_true", help="skip the cold runs (warm throughput only)")
    ap.add_argument("--no-prefetch", action="store_true", help="skip the 1x1 run with the read-ahead thread")
    ap.add_argument("--out", type=Path, default=Path("bench/out/track_all_scaling.json"))
    args = ap.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    from cstrack.fsutil import atomic_write_json

    if len(backends) == 1:
        per = {backends[0]: bench_backend(backends[0], args)}
    else:  # one process per backend: Prefect reads its API URL once per process
        import json
        import subprocess

        per = {}
        for b in backends:
            part = args.out.with_name(f"{args.out.stem}.{b}.json")
            argv = [sys.executable, __file__, "--backend", b, "--sequences", str(args.sequences), "--frames",
                    str(args.frames), "--size", args.size, "--repeats", str(args.repeats), "--out", str(part),
                    *(["--no-cold"] if args.no_cold else []), *(["--no-prefetch"] if args.no_prefetch else [])]
            subprocess.run(argv, check=True)
            per[b] = json.loads(part.read_text())

    out = per[backends[0]] if len(backends) == 1 else {
        "benchmark": "track_all_scaling", "backends": per,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    atomic_write_json(args.out, out)
    for b, o in per.items():
        print(f"[bench] {b}: warm 2x1 / 1x1 = {o['ratio_2x1_over_1x1']:.2f} (pairs "
              f"{', '.join(f'{r:.2f}' for r in o['ratio_pairs'])}; target {TARGET}); stalls: "
              f"{o['stalls']['server_log_retryable_errors']} retryable database errors in the server log, "
              f"{o['stalls']['task_gaps_over_1_5s']} gaps > 1.5 s between a worker's tasks "
              f"(of {o['stalls']['task_gaps']}); load {o['load_average_start']} -> {o['load_average_end']}")
    print(f"[bench] wrote {args.out}")
    return 0


TARGET = 1.9  # issue 18 (was 1.85 in issue 8's SQLite-backed measurement)


def _stalls(server_log: Path, results: list[Path]) -> dict[str, Any]:
    """The ~2-s stalls, counted two ways: retryable database errors the server logged ("database is
    locked" on SQLite, PREFECT_API_LOG_RETRYABLE_ERRORS), and gaps over 1.5 s between one worker's
    consecutive tasks in the timing records (normally 0.1-0.2 s)."""
    import json

    text = server_log.read_text(errors="replace") if server_log.is_file() else ""
    locked = text.count("database is locked")
    retryable = sum(1 for line in text.splitlines() if "retryable" in line.lower() or "database is locked" in line)
    gaps: list[float] = []
    for root in results:
        by_worker: dict[str, list[tuple[dt.datetime, dt.datetime]]] = {}
        for p in root.rglob("*.timing.json"):
            r = json.loads(p.read_text())
            by_worker.setdefault(str(r["worker"]), []).append(
                (dt.datetime.fromisoformat(r["started"]), dt.datetime.fromisoformat(r["finished"])))
        for spans in by_worker.values():
            spans.sort()
            gaps += [(b[0] - a[1]).total_seconds() for a, b in itertools.pairwise(spans)]
    return {"server_log_database_is_locked": locked, "server_log_retryable_errors": retryable,
            "task_gaps": len(gaps), "task_gaps_over_1_5s": sum(g > 1.5 for g in gaps),
            "task_gap_max_s": max(gaps, default=0.0), "task_gap_median_s": sorted(gaps)[len(gaps) // 2] if gaps else 0.0}


def bench_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    """Every run of the benchmark against one temporary Prefect server on ``backend``."""
    w, h = (int(v) for v in args.size.lower().split("x"))
    load_start = os.getloadavg()

    from stack.temporary import temporary_prefect_server

    with tempfile.TemporaryDirectory(prefix="track-all-scaling-") as tmp_name:
        tmp = Path(tmp_name)
        with temporary_prefect_server(tmp / "prefect", backend=backend) as settings:
            os.environ.update(settings)
            os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
            from distributed import LocalCluster

            from cstrack.data.synthetic import SynthConfig, generate
            from cstrack.provenance import collect
            from flows.cluster import local_cluster_kwargs
            from flows.params import ClusterSpec, TrackAllParams
            from flows.track_all import track_all

            data = tmp / "data"
            generate(data / "synth" / "images" / "train",
                     SynthConfig(sequences=args.sequences, length=args.frames, width=640, height=360, objects=6, seed=1))
            # one warm-up sequence per worker: each worker of a warm cluster loads the model before
            # the timed run (with one, the second worker paid its model load inside the timed run)
            generate(data / "warmup" / "images" / "train",
                     SynthConfig(sequences=2, length=10, width=640, height=360, objects=6, seed=2))
            # A fresh Prefect server is busy for its first minute (migrations, background services):
            # one small untimed run first.
            _run(track_all, TrackAllParams, data, tmp / "results-warmup0", {"local_workers": 1}, (w, h),
                 dataset="warmup")

            def cold(name: str, workers: int) -> dict[str, Any]:
                """A LocalCluster started by the flow run itself (what a one-off run pays)."""
                run = _run(track_all, TrackAllParams, data, tmp / f"results-{name}",
                           {"local_workers": workers, "threads_per_worker": 1}, (w, h))
                print(f"[bench] {name}: {run['fps']:.2f} fps (makespan {run['makespan_s']:.1f} s), first frame "
                      f"{run['flow_start_to_first_frame_s']:.1f} s after flow start", flush=True)
                return run

            def warm(name: str, workers: int, prefetch: int, i: int) -> dict[str, Any]:
                """A running cluster whose workers have imported everything and loaded the model (an
                untimed 10-frame run first), as for a long-lived cluster: the Dask layer's throughput."""
                with LocalCluster(**local_cluster_kwargs(ClusterSpec(local_workers=workers))) as cluster:
                    addr = {"dask_address": cluster.scheduler_address, "prefetch": prefetch}
                    _run(track_all, TrackAllParams, data, tmp / f"results-{name}-{i}-warmup", addr, (w, h),
                         dataset="warmup")
                    run = _run(track_all, TrackAllParams, data, tmp / f"results-{name}-{i}", addr, (w, h))
                print(f"[bench] {name} (warm cluster, prefetch {prefetch}): {run['fps']:.2f} fps "
                      f"(makespan {run['makespan_s']:.1f} s, tracking busy {run['busy_s']:.1f} s, set-up {run['setup_s']:.1f} s), "
                      f"first frame {run['flow_start_to_first_frame_s']:.1f} s after flow start; ms/frame "
                      + ", ".join(f"{k} {v:.2f}" for k, v in run["ms_per_frame"].items()) + "; CPU s: "
                      + ", ".join(f"{k} {v:.1f}" for k, v in run["cpu_s_by_process"].items()), flush=True)
                return run

            runs: dict[str, Any] = {} if args.no_cold else {"1x1-cold": cold("1x1-cold", 1),
                                                            "2x1-cold": cold("2x1-cold", 2)}
            trials: dict[str, list[dict[str, Any]]] = {}
            plan = [("1x1", 1, 0), ("2x1", 2, 0)] * args.repeats + ([] if args.no_prefetch else [("1x1-prefetch", 1, 2)])
            for i, (name, workers, prefetch) in enumerate(plan):
                trials.setdefault(name, []).append(warm(name, workers, prefetch, i))
            for name, rs in trials.items():
                runs[name] = {**max(rs, key=lambda r: r["fps"]), "fps_all": [r["fps"] for r in rs]}
            from flows.demo import flush_prefect

            flush_prefect()
            # each 2x1 run against the 1x1 run just before it (the VM's speed drifts by 10-30 % over
            # minutes, so a best-of over the whole run compares different machine states)
            pair_ratios = [b["fps"] / a["fps"] for a, b in zip(trials["1x1"], trials["2x1"], strict=True)]
            ratio = sorted(pair_ratios)[len(pair_ratios) // 2]
            cold_runs = "1x1-cold" in runs
            pre = "1x1-prefetch" in runs
            out = {
                "benchmark": "track_all_scaling",
                "backend": backend,
                "target_ratio": TARGET,
                "ratio_2x1_over_1x1": ratio,
                "ratio_definition": "median over the repeats of 2x1 fps / the 1x1 fps measured just before it (warm)",
                "ratio_pairs": pair_ratios,
                "ratio_best_of": runs["2x1"]["fps"] / runs["1x1"]["fps"],
                "ratio_cold_2x1_over_1x1": runs["2x1-cold"]["fps"] / runs["1x1-cold"]["fps"] if cold_runs else None,
                "flow_fps_ratio_cold": runs["2x1-cold"]["flow_fps"] / runs["1x1-cold"]["flow_fps"] if cold_runs else None,
                "meets_target": ratio >= TARGET,
                "overhead_s": {
                    "cold_flow_start_to_first_frame": runs["2x1-cold"]["flow_start_to_first_frame_s"] if cold_runs else None,
                    "cold_call_to_first_frame": runs["2x1-cold"]["call_to_first_frame_s"] if cold_runs else None,
                    "warm_flow_start_to_first_frame": runs["2x1"]["flow_start_to_first_frame_s"],
                    "warm_call_to_first_frame": runs["2x1"]["call_to_first_frame_s"],
                },
                "setup": {"sequences": args.sequences, "frames_per_sequence": args.frames, "image": "640x360",
                          "input_size": [w, h], "model": "cstrack-n (COCO weights)", "mode": "private",
                          "torch_threads_per_task": 1, "opencv_threads_per_task": 1,
                          "prefetch": "0 in 1x1 and 2x1 (a task uses one core); 2 in 1x1-prefetch (the default: "
                                      "the read-ahead thread runs on the spare core)"},
                "prefetch_1x1_over_1x1": runs["1x1-prefetch"]["fps"] / runs["1x1"]["fps"] if pre else None,
                "ratio_2x1_over_1x1_prefetch": runs["2x1"]["fps"] / runs["1x1-prefetch"]["fps"] if pre else None,
                "stalls": _stalls(tmp / "prefect" / "server.log", sorted(tmp.glob("results-*[0-9]/bench"))),
                "runs": runs,
                "load_average_start": load_start,
                "load_average_end": os.getloadavg(),
                "provenance": collect().to_dict(),
                "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            }
    return out


if __name__ == "__main__":
    sys.exit(main())
