"""CPU speed of every model path on this machine, in one run (issue 8).

Usage::

    .venv/bin/python bench/cpu_speed.py [--out bench/out/cpu_speed.json] [--threads 2]
        [--variants cstrack-n cstrack-s cstrack-l] [--paths eager fast onnx int8]

Measures, on ``--threads`` threads:

1. the fp32 peak of the machine: a 4096 x 4096 sgemm (``torch.mm``, MKL) and a 3x3 convolution
   (256 -> 256 channels on a 136 x 76 map, NHWC, oneDNN: the shape of CSTrack-L's P3 convs), in
   GFLOP/s, best of repeats;
2. for ``cstrack-n`` at 576x320 (shipped COCO weights: real detections), ``cstrack-s`` at 864x480
   and ``cstrack-l`` at 1088x608 (random init, 20 synthetic detections per frame so the tracker
   works as in spec §14), each path through ``cstrack bench-speed --json`` in a fresh process:
   end-to-end fps (read to tracks, PETS09-S2L1 frames), ms per stage, forward-only fps, the
   achieved GFLOP/s (FLOPs of :func:`cstrack.model.complexity.count_flops` over the forward time)
   and its fraction of the measured conv peak, and the share of post-processing + tracker;
3. where the forward time of ``cstrack-l`` goes on the fast (PyTorch) path and the onnx path:
   time and achieved GFLOP/s per layer type.

Every measurement runs in its own process.  The build machine is shared, so each records
``foreign_cpu``: the share of the machine's CPU time that *other* processes used while it ran
(0 = quiet), and the 1-minute load average is recorded before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

CASES = {  # variant: (size, weights, fake detections, timed frames)
    "cstrack-n": ("576x320", "coco", 0, 100),
    "cstrack-s": ("864x480", None, 20, 20),
    "cstrack-l": ("1088x608", None, 20, 8),
}
PATHS = ("eager", "fast", "onnx", "int8")
FORWARD_ITERS = {"cstrack-n": 20, "cstrack-s": 8, "cstrack-l": 4}
TARGETS = {
    "cstrack-n_e2e_fps": 25.0,
    "cstrack-l_fp32_e2e_fps": 0.8,
    "cstrack-l_fp32_fraction_of_conv_peak": 0.9,
    "cstrack-l_int8_speedup_vs_fp32": 2.0,
    "post_track_share_max": 0.05,
}
_TCK = os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------------------------------------
# machine-load bookkeeping


def _busy_ticks() -> int:
    with open("/proc/stat") as fh:
        v = [int(x) for x in fh.readline().split()[1:]]
    return sum(v) - v[3] - v[4]  # everything but idle and iowait


def _children_ticks() -> float:
    r = os.times()
    return (r.children_user + r.children_system) * _TCK


def run_isolated(cmd: list[str], timeout: float = 3600) -> tuple[dict[str, Any], float]:
    """Run ``cmd`` (prints one JSON object last) in a fresh process; returns the object and the share
    of the machine's CPU time other processes used meanwhile."""
    b0, c0, t0 = _busy_ticks(), _children_ticks(), time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=REPO)
    wall = time.perf_counter() - t0
    b1, c1 = _busy_ticks(), _children_ticks()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    foreign = max(0.0, (b1 - b0) - (c1 - c0)) / _TCK / (wall * (os.cpu_count() or 1))
    out = proc.stdout
    return json.loads(out[out.index("{"):]), round(foreign, 4)


# ------------------------------------------------------------------------------------------------
# workers (run in their own process through run_isolated)


def _best(fn: Any, repeats: int) -> float:
    fn()
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def worker_peak(threads: int) -> dict[str, Any]:
    import torch

    torch.set_num_threads(threads)
    n = 4096
    a, b, c = torch.rand(n, n), torch.rand(n, n), torch.empty(n, n)
    sgemm = 2 * n**3 / _best(lambda: torch.mm(a, b, out=c), 6) / 1e9
    ci, co, h, w = 256, 256, 76, 136
    x = torch.rand(1, ci, h, w).contiguous(memory_format=torch.channels_last)
    # torch's annotation of Module.to omits memory_format, which it accepts
    conv = torch.nn.Conv2d(ci, co, 3, padding=1).eval().to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    with torch.inference_mode():
        t = _best(lambda: conv(x), 8)
    conv_gflops = 2 * ci * co * 9 * h * w / t / 1e9
    return {"threads": threads, "sgemm_gflops": sgemm, "sgemm_n": n, "conv3x3_gflops": conv_gflops,
            "conv3x3_shape": {"in": ci, "out": co, "h": h, "w": w, "layout": "NHWC"}}


def worker_flops(variant: str, size: str) -> dict[str, Any]:
    from cstrack.cli.common import parse_size
    from cstrack.model import build_model
    from cstrack.model.complexity import count_flops

    total, groups, _ = count_flops(build_model(variant), parse_size(size))
    return {"flops": total, "groups": groups}


def _conv_kind(m: Any, out_hw: tuple[int, int]) -> str:
    import torch

    k = m.kernel_size[0]
    if isinstance(m, torch.nn.ConvTranspose2d):
        return "transposed conv (depthwise)"
    if out_hw[0] * out_hw[1] <= 60:
        return "REN 3x3 conv on 6x10"
    if k == 3:
        return "conv 3x3 stride 2" if m.stride[0] == 2 else "conv 3x3"
    if k == 1:
        return "conv 1x1"
    return f"conv {k}x{k}"


def worker_layers_torch(variant: str, size: str, threads: int, iters: int) -> dict[str, Any]:
    """Per layer type of the fast path: ms and GFLOP/s, from forward hooks (the CPU is synchronous)."""
    import torch

    from cstrack.cli.common import parse_size
    from cstrack.infer.graph import InferenceREN, inference_model, to_channels_last
    from cstrack.model import build_model

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    w, h = parse_size(size)
    net = to_channels_last(inference_model(build_model(variant), (w, h)))
    x = torch.rand(1, 3, h, w).contiguous(memory_format=torch.channels_last)
    stats: dict[str, list[float]] = {}
    starts: dict[int, float] = {}
    ren_conv: dict[int, float] = {}

    def pre(mod: Any, _inp: Any) -> None:
        starts[id(mod)] = time.perf_counter()

    def post_conv(mod: Any, inp: Any, out: Any) -> None:
        dt = time.perf_counter() - starts[id(mod)]
        if isinstance(mod, torch.nn.ConvTranspose2d):
            flops = 2 * inp[0].numel() * mod.out_channels // mod.groups * mod.kernel_size[0] * mod.kernel_size[1]
        else:
            flops = 2 * out.numel() * mod.in_channels // mod.groups * mod.kernel_size[0] * mod.kernel_size[1]
        s = stats.setdefault(_conv_kind(mod, tuple(out.shape[2:])), [0.0, 0.0])
        s[0] += dt
        s[1] += flops
        ren_conv[id(mod)] = dt

    def post_ren(mod: Any, inp: Any, out: Any) -> None:
        dt = time.perf_counter() - starts[id(mod)] - ren_conv.get(id(mod.conv), 0.0)
        _, c, hh, ww = inp[0].shape
        s = stats.setdefault("REN relations + channel mix (GEMM)", [0.0, 0.0])
        s[0] += dt
        s[1] += 2 * 2 * c * c * hh * ww + 2 * (2 * c) ** 2 * 60

    for mod in net.modules():
        if isinstance(mod, torch.nn.Conv2d | torch.nn.ConvTranspose2d):
            mod.register_forward_pre_hook(pre)
            mod.register_forward_hook(post_conv)
        elif isinstance(mod, InferenceREN):
            mod.register_forward_pre_hook(pre)
            mod.register_forward_hook(post_ren)
    with torch.inference_mode():
        net(x)
        net(x)
        stats.clear()
        t0 = time.perf_counter()
        for _ in range(iters):
            net(x)
        total = (time.perf_counter() - t0) / iters
    rows = {k: {"ms": 1000 * v[0] / iters, "gflops": v[1] / iters / 1e9, "gflop_per_s": v[1] / v[0] / 1e9}
            for k, v in sorted(stats.items(), key=lambda kv: -kv[1][0])}
    other = total - sum(v[0] for v in stats.values()) / iters
    rows["other (element-wise, pooling, concat, decode)"] = {"ms": 1000 * other, "gflops": 0.0, "gflop_per_s": 0.0}
    return {"path": "fast", "forward_ms": 1000 * total, "by_type": rows}


def worker_layers_ort(variant: str, size: str, threads: int, iters: int, path: str) -> dict[str, Any]:
    """Per op type of an ONNX Runtime session, from its profiler (ms and, for convs, GFLOP/s)."""
    import tempfile

    import numpy as np
    import onnxruntime as ort
    import torch

    from cstrack.cli.common import parse_size
    from cstrack.infer import int8_file, onnx_file
    from cstrack.infer.ort import session_options
    from cstrack.model import build_model

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    w, h = parse_size(size)
    model = build_model(variant)
    file = onnx_file(model, (w, h)) if path == "onnx" else int8_file(model, (w, h))
    so = session_options(threads)
    so.enable_profiling = True
    so.profile_file_prefix = str(Path(tempfile.gettempdir()) / f"cpu_speed_{os.getpid()}")
    sess = ort.InferenceSession(str(file), so, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((1, 3, h, w), dtype=np.float32)
    for _ in range(2):
        sess.run(None, {"images": x})
    t0 = time.perf_counter()
    for _ in range(iters):
        sess.run(None, {"images": x})
    total = (time.perf_counter() - t0) / iters
    prof = sess.end_profiling()
    events = json.loads(Path(prof).read_text())
    Path(prof).unlink()
    rows: dict[str, list[float]] = {}
    for e in events:
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time"):
            continue
        op = e["args"]["op_name"]
        flops = 0.0
        if op in ("Conv", "FusedConv", "QLinearConv", "ConvTranspose"):
            shapes = [next(iter(s.values())) for s in e["args"].get("input_type_shape", [])]
            outs = [next(iter(s.values())) for s in e["args"].get("output_type_shape", [])]
            if len(shapes) > 1 and outs:
                wshape = shapes[3] if op == "QLinearConv" else shapes[1]
                if op == "ConvTranspose":
                    flops = 2.0 * float(np.prod(shapes[0])) * float(np.prod(wshape[1:]))
                else:
                    flops = 2.0 * float(np.prod(outs[0])) * float(np.prod(wshape[1:]))
                k = wshape[2] if len(wshape) > 2 else 1
                op = f"{op} {k}x{k}"
        r = rows.setdefault(op, [0.0, 0.0])
        r[0] += e["dur"] / 1e6
        r[1] += flops
    runs = iters + 2
    out = {k: {"ms": 1000 * v[0] / runs, "gflops": v[1] / runs / 1e9, "gflop_per_s": (v[1] / v[0] / 1e9) if v[1] else 0.0}
           for k, v in sorted(rows.items(), key=lambda kv: -kv[1][0])}
    return {"path": path, "forward_ms": 1000 * total, "by_type": out}


# ------------------------------------------------------------------------------------------------
# the run


def _worker_cmd(*args: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--worker", *args]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "cpu_speed.json")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--variants", nargs="+", default=list(CASES), choices=list(CASES))
    ap.add_argument("--paths", nargs="+", default=list(PATHS), choices=list(PATHS))
    ap.add_argument("--images", type=Path, default=None, help="frames to cycle (default: PETS09-S2L1-head8)")
    ap.add_argument("--no-layers", action="store_true", help="skip the per-layer-type profile of cstrack-l")
    ap.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        kind, *rest = args.worker
        if kind == "peak":
            res = worker_peak(int(rest[0]))
        elif kind == "flops":
            res = worker_flops(rest[0], rest[1])
        elif kind == "layers-fast":
            res = worker_layers_torch(rest[0], rest[1], int(rest[2]), int(rest[3]))
        else:
            res = worker_layers_ort(rest[0], rest[1], int(rest[2]), int(rest[3]), rest[4])
        print(json.dumps(res))
        return 0

    from cstrack.fsutil import atomic_write_json
    from cstrack.paths import shared_data
    from cstrack.provenance import collect

    images = args.images or shared_data() / "mot15" / "PETS09-S2L1-head8" / "img1"
    started = time.time()
    load0 = os.getloadavg()
    peak, foreign = run_isolated(_worker_cmd("peak", str(args.threads)))
    peak["foreign_cpu"] = foreign
    conv_peak = peak["conv3x3_gflops"]
    print(f"peak: sgemm {peak['sgemm_gflops']:.1f} GFLOP/s, conv3x3 {conv_peak:.1f} GFLOP/s (foreign cpu {foreign:.0%})",
          flush=True)

    results: dict[str, Any] = {}
    for variant in args.variants:
        size, weights, fake, frames = CASES[variant]
        flops, _ = run_isolated(_worker_cmd("flops", variant, size))
        gflop = flops["flops"] / 1e9
        entry: dict[str, Any] = {"size": size, "weights": weights or "random (seed 0)", "fake_dets": fake,
                                 "gflop_per_frame": gflop, "flop_groups": flops["groups"], "paths": {}}
        for path in args.paths:
            cmd = [sys.executable, "-m", "cstrack", "bench-speed", "--variant", variant, "--size", size,
                   "--images", str(images), "--frames", str(frames), "--path", path, "--threads", str(args.threads),
                   "--fake-dets", str(fake), "--forward-iters", str(FORWARD_ITERS[variant]), "--json"]
            if weights:
                cmd += ["--weights", weights]
            rec, foreign = run_isolated(cmd)
            fwd_s = rec["forward"]["ms_median"] / 1000
            row = {
                "e2e_fps": rec["fps"],
                "ms_per_frame": rec["ms_per_frame"],
                "ms": rec["ms"],
                "forward_fps": rec["forward"]["fps"],
                "forward_ms_median": rec["forward"]["ms_median"],
                "forward_ms_best": rec["forward"]["ms_best"],
                "achieved_gflop_per_s": gflop / fwd_s,
                "fraction_of_conv_peak": gflop / fwd_s / conv_peak,
                "e2e_gflop_per_s": gflop * rec["fps"],
                "post_track_share": rec["post_track_share"],
                "detections_per_frame": rec["detections_per_frame"],
                "build_s": rec["build_s"],
                "foreign_cpu": foreign,
            }
            entry["paths"][path] = row
            print(f"{variant} {size} {path:5s}: e2e {row['e2e_fps']:6.2f} fps, forward {row['forward_fps']:6.2f} fps "
                  f"({row['achieved_gflop_per_s']:6.1f} GFLOP/s = {row['fraction_of_conv_peak']:.0%} of conv peak), "
                  f"post+track {row['post_track_share']:.1%}, foreign cpu {foreign:.0%}", flush=True)
        results[variant] = entry

    layers: dict[str, Any] = {}
    if "cstrack-l" in args.variants and not args.no_layers:
        v, size = "cstrack-l", CASES["cstrack-l"][0]
        for path in ("fast", "onnx", "int8"):
            if path not in args.paths:
                continue
            worker = ("layers-fast", v, size, str(args.threads), "3") if path == "fast" else \
                ("layers-ort", v, size, str(args.threads), "3", path)
            rec, foreign = run_isolated(_worker_cmd(*worker))
            rec["foreign_cpu"] = foreign
            layers[f"{v}/{path}"] = rec

    summary = _targets(results, conv_peak)
    report = {
        "machine": {"cpu_count": os.cpu_count(), "threads": args.threads, "load_avg_1min_start": load0[0],
                    "load_avg_1min_end": os.getloadavg()[0], "provenance": collect().to_dict()},
        "peak": peak,
        "variants": results,
        "layers": layers,
        "targets": summary,
        "images": str(images),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        "wall_s": time.time() - started,
    }
    atomic_write_json(args.out, report)
    print(json.dumps(summary, indent=2))
    print(f"wrote {args.out}")
    return 0


def _targets(results: dict[str, Any], conv_peak: float) -> dict[str, Any]:
    """Each issue-8 target with the measured value and whether it is met."""
    out: dict[str, Any] = {}
    n = results.get("cstrack-n", {}).get("paths", {})
    if n:
        best = max(n, key=lambda p: n[p]["e2e_fps"])
        out["cstrack-n e2e fps >= 25"] = {"best_path": best, "value": n[best]["e2e_fps"], "met": n[best]["e2e_fps"] >= 25}
    l_paths = results.get("cstrack-l", {}).get("paths", {})
    fp32 = {p: r for p, r in l_paths.items() if p != "int8"}
    if fp32:
        best = max(fp32, key=lambda p: fp32[p]["e2e_fps"])
        r = fp32[best]
        out["cstrack-l fp32 e2e fps >= 0.8"] = {"best_path": best, "value": r["e2e_fps"], "met": r["e2e_fps"] >= 0.8}
        frac = max(x["fraction_of_conv_peak"] for x in fp32.values())
        out["cstrack-l fp32 achieved >= 0.9 x conv peak"] = {"value": frac, "conv_peak": conv_peak, "met": frac >= 0.9}
        if "int8" in l_paths:
            speedup = l_paths["int8"]["e2e_fps"] / r["e2e_fps"]
            out["cstrack-l int8 >= 2x fp32"] = {"value": speedup, "met": speedup >= 2.0}
    shares = {f"{v}/{p}": r["post_track_share"] for v, e in results.items() for p, r in e["paths"].items()}
    if shares:
        worst = max(shares, key=lambda k: shares[k])
        out["post-processing + tracker <= 5% (every variant, optimised paths)"] = {
            "worst": worst, "value": shares[worst], "per_run": shares,
            "met": all(s <= 0.05 for k, s in shares.items() if not k.endswith("/eager")),
        }
    return out


if __name__ == "__main__":
    raise SystemExit(main())
