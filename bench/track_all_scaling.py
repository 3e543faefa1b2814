"""Scaling of ``track-all`` on Dask: 1 worker x 1 thread against 2 workers x 1 thread, in one run.

Usage: python bench/track_all_scaling.py [--sequences 8] [--frames 60] [--size 320x256]
                                         [--out bench/out/track_all_scaling.json]

One temporary Prefect server; 8 synthetic sequences tracked in private mode (cstrack-n with the
shipped COCO weights, so the detector's forward dominates, as in real runs).  Each configuration
runs the real ``track-all`` flow on a LocalCluster with a fresh results root (nothing cached):

- ``fps``: total frames / tracking makespan (first task start to last task end, from the tasks'
  timing records): the throughput of the Dask layer, the number the 1.85x target is about;
- ``flow_fps``: total frames / flow wall time (cluster start-up, evaluation and catalogue included);
- ``flow_start_to_first_frame_s``: Prefect + Dask overhead of a run: flow start (inside the flow) to
  the first tracked frame, with a cold LocalCluster started by the run (worker processes, preload
  imports, model load); ``call_to_first_frame_s`` adds the client side (flow run creation);
- ``warm``: the same overhead against an already running 2-worker cluster (``dask_address``), as
  for a long-lived cluster.

The machine's load average is recorded at start and end: on a shared VM other jobs steal cores.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _makespan(results: Path) -> tuple[float, int]:
    import json

    recs = [json.loads(p.read_text()) for p in results.rglob("*.timing.json")]
    start = min(dt.datetime.fromisoformat(r["started"]) for r in recs)
    end = max(dt.datetime.fromisoformat(r["finished"]) for r in recs)
    return (end - start).total_seconds(), sum(int(r["frames"]) for r in recs)


def _run(track_all: Any, params_cls: Any, data: Path, results: Path, cluster: dict[str, Any],
         size: tuple[int, int]) -> dict[str, Any]:
    params = params_cls(
        data_root=str(data), results_root=str(results), run_name="bench", tag="bench",
        model={"variant": "cstrack-n", "weights": "coco", "input_size": size},
        cluster={**cluster, "torch_threads": 1}, datasets=[{"name": "synth"}],
    )
    t_call = time.time()
    summary = track_all(params)
    wall = time.time() - t_call
    makespan, frames = _makespan(results / "bench")
    first_abs = summary["first_frame_s"]  # relative to the flow's own start
    return {
        "cluster": cluster, "frames": frames, "sequences": summary["sequences"], "workers": summary["workers"],
        "makespan_s": makespan, "fps": frames / makespan, "flow_wall_s": wall, "flow_fps": frames / wall,
        "flow_start_to_first_frame_s": first_abs,
        "call_to_first_frame_s": None if first_abs is None else (wall - summary["wall_s"]) + first_abs,
        "per_sequence_fps": {s["sequence"]: s["fps"] for s in summary["per_sequence"]},
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sequences", type=int, default=8)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--size", default="320x256", help="network input WxH")
    ap.add_argument("--out", type=Path, default=Path("bench/out/track_all_scaling.json"))
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    load_start = os.getloadavg()

    from flows.services import temporary_prefect_server

    with tempfile.TemporaryDirectory(prefix="track-all-scaling-") as tmp_name:
        tmp = Path(tmp_name)
        with temporary_prefect_server(tmp / "prefect") as settings:
            os.environ.update(settings)
            os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
            from distributed import LocalCluster

            from cstrack.data.synthetic import SynthConfig, generate
            from cstrack.fsutil import atomic_write_json
            from cstrack.provenance import collect
            from flows.cluster import local_cluster_kwargs
            from flows.params import ClusterSpec, TrackAllParams
            from flows.track_all import track_all

            data = tmp / "data"
            generate(data / "synth" / "images" / "train",
                     SynthConfig(sequences=args.sequences, length=args.frames, width=640, height=360, objects=6, seed=1))
            runs: dict[str, Any] = {}
            for name, workers in (("1x1", 1), ("2x1", 2)):
                print(f"[bench] {name}: LocalCluster {workers} worker(s) x 1 thread", flush=True)
                runs[name] = _run(track_all, TrackAllParams, data, tmp / f"results-{name}",
                                  {"local_workers": workers, "threads_per_worker": 1}, (w, h))
                print(f"[bench] {name}: {runs[name]['fps']:.2f} fps (makespan {runs[name]['makespan_s']:.1f} s), "
                      f"first frame {runs[name]['flow_start_to_first_frame_s']:.1f} s after flow start", flush=True)
            # warm: a long-lived cluster, first used once so that every worker has imported and
            # loaded the model, then measured
            with LocalCluster(**local_cluster_kwargs(ClusterSpec(local_workers=2))) as cluster:
                addr = {"dask_address": cluster.scheduler_address}
                _run(track_all, TrackAllParams, data, tmp / "results-warmup", addr, (w, h))
                runs["2x1-warm"] = _run(track_all, TrackAllParams, data, tmp / "results-warm", addr, (w, h))
            print(f"[bench] warm cluster: first frame {runs['2x1-warm']['flow_start_to_first_frame_s']:.1f} s after "
                  "flow start", flush=True)
            from flows.demo import flush_prefect

            flush_prefect()
            ratio = runs["2x1"]["fps"] / runs["1x1"]["fps"]
            out = {
                "benchmark": "track_all_scaling",
                "target_ratio": 1.85,
                "ratio_2x1_over_1x1": ratio,
                "flow_fps_ratio": runs["2x1"]["flow_fps"] / runs["1x1"]["flow_fps"],
                "meets_target": ratio >= 1.85,
                "overhead_s": {
                    "cold_flow_start_to_first_frame": runs["2x1"]["flow_start_to_first_frame_s"],
                    "cold_call_to_first_frame": runs["2x1"]["call_to_first_frame_s"],
                    "warm_flow_start_to_first_frame": runs["2x1-warm"]["flow_start_to_first_frame_s"],
                    "warm_call_to_first_frame": runs["2x1-warm"]["call_to_first_frame_s"],
                },
                "setup": {"sequences": args.sequences, "frames_per_sequence": args.frames, "image": "640x360",
                          "input_size": [w, h], "model": "cstrack-n (COCO weights)", "mode": "private",
                          "torch_threads_per_task": 1},
                "runs": runs,
                "load_average_start": load_start,
                "load_average_end": os.getloadavg(),
                "provenance": collect().to_dict(),
                "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            }
            atomic_write_json(args.out, out)
    print(f"[bench] 2x1 / 1x1 = {ratio:.2f} (target 1.85); cold overhead "
          f"{out['overhead_s']['cold_flow_start_to_first_frame']:.1f} s, warm "
          f"{out['overhead_s']['warm_flow_start_to_first_frame']:.1f} s; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
