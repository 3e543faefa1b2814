"""CPU forward time per frame of every model variant (eager PyTorch, fp32, random init).

Usage: python bench/model_speed.py [--threads 2] [--repeats 5] [--out bench/out/model_speed.json]

For each variant and input size: params, GFLOPs, median / min forward ms over ``repeats`` timed
runs after one warm-up, and the achieved GFLOP/s.  The machine's load average at start and end
is recorded, since shared VMs are noisy.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--variants", nargs="+", default=["cstrack-n", "cstrack-s", "jde-l", "cstrack-l"])
    ap.add_argument("--sizes", nargs="+", default=["1088x608", "576x320"])
    ap.add_argument("--out", type=Path, default=Path("bench/out/model_speed.json"))
    args = ap.parse_args()

    import torch

    from cstrack.fsutil import atomic_write_json
    from cstrack.model import build_model
    from cstrack.model.complexity import count_flops, count_params

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rows = []
    load_start = os.getloadavg()
    for variant in args.variants:
        model = build_model(variant).eval()
        for size in args.sizes:
            w, h = (int(v) for v in size.split("x"))
            flops, _, _ = count_flops(model, (w, h))
            x = torch.rand(1, 3, h, w)
            times = []
            with torch.inference_mode():
                for _ in range(3):  # warm-up: oneDNN builds its primitives on the first calls per shape
                    model(x)
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    model(x)
                    times.append((time.perf_counter() - t0) * 1e3)
            med = statistics.median(times)
            row = {
                "variant": variant,
                "size": size,
                "params": count_params(model),
                "gflops": flops / 1e9,
                "forward_ms_median": med,
                "forward_ms_min": min(times),
                "forward_ms_all": times,
                "fps_forward": 1e3 / med,
                "achieved_gflops_per_s": flops / 1e9 / (med / 1e3),
            }
            rows.append(row)
            print(f"{variant:10s} {size:9s} {row['gflops']:7.2f} GFLOPs  {med:9.1f} ms  "
                  f"{row['fps_forward']:6.2f} fps  {row['achieved_gflops_per_s']:6.1f} GFLOP/s", flush=True)
    result = {
        "bench": "model_speed",
        "threads": args.threads,
        "torch": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "machine": platform.processor() or platform.machine(),
        "python": sys.version.split()[0],
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
        "rows": rows,
    }
    atomic_write_json(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
