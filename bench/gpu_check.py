"""One prepared GPU check, for the day a GPU is lent (under 8 minutes on one H100): writes JSON.

Usage: python bench/gpu_check.py [--out bench/out/gpu_check.json] [--frames 100] [--size 1088x608]
       python bench/gpu_check.py --tiny      (CPU dry run, seconds: what the test suite runs)

1. ``amp_train``: one AMP training step of cstrack-l on a synthetic batch (random images, random
   boxes and identities): forward under fp16 autocast, CSTrack loss, ``GradScaler`` scale/step/update;
   the loss must be finite; peak memory of the step.
2. ``ddp``: a DistributedDataParallel step launched on every visible GPU (NCCL; gloo on 2 CPU
   processes with ``--tiny``): the ranks' gradients after the all-reduce must agree.
3. ``tracking``: forward + decode fps of cstrack-l at 1088x608 on PETS09-S2L1 frames (letterboxed),
   eager fp32, fp16 autocast, and ONNX Runtime's CUDA provider when onnxruntime offers it
   (``onnxruntime-gpu``; otherwise recorded as unavailable).  ``vs_cpu``: the max absolute difference
   of the decoded outputs of each path against the CPU eager fp32 path on the same frames.

``--tiny``: cstrack-n at 160x128, 3 frames, batch 2, on CPU (fp16 autocast is a CUDA path: the CPU
run uses bfloat16 and no gradient scaling) so that the script cannot rot between GPU loans.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_mb(device: torch.device) -> float | None:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return None


def synthetic_batch(batch: int, size: tuple[int, int], boxes: int, ids: int, seed: int = 0
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """``images [B, 3, H, W]`` in [0, 1] and ``targets [T, 6]`` (image, identity, cx, cy, w, h normalised)."""
    g = torch.Generator().manual_seed(seed)
    w, h = size
    images = torch.rand(batch, 3, h, w, generator=g)
    rows = []
    for b in range(batch):
        for k in range(boxes):
            u = torch.rand(4, generator=g).tolist()
            rows.append([b, 1 + (k % (ids - 1)), 0.1 + 0.8 * u[0], 0.15 + 0.7 * u[1], 0.05 + 0.1 * u[2], 0.1 + 0.2 * u[3]])
    return images, torch.tensor(rows, dtype=torch.float32)


def amp_train_step(variant: str, size: tuple[int, int], batch: int, device: torch.device) -> dict[str, Any]:
    from cstrack.losses.loss import CSTrackLoss
    from cstrack.model import build_model

    torch.manual_seed(0)
    model = build_model(variant).to(device).train()
    ids = 20
    loss_fn = CSTrackLoss(model.emb_dim, ids, model.detect.anchors_grid()).to(device)
    params = [*model.parameters(), *loss_fn.parameters()]
    opt = torch.optim.SGD(params, lr=1e-3, momentum=0.9)
    cuda = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=cuda)
    images, targets = synthetic_batch(batch, size, boxes=6, ids=ids)
    images, targets = images.to(device), targets.to(device)
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    before = [p.detach().clone() for p in model.parameters()][:5]
    _sync(device)
    t0 = time.perf_counter()
    with torch.autocast(device.type, dtype=torch.float16 if cuda else torch.bfloat16):
        emb, raw = model(images)
        loss, parts = loss_fn(emb.float(), [r.float() for r in raw], targets)
    scale0 = scaler.get_scale() if cuda else 1.0
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
    _sync(device)
    seconds = time.perf_counter() - t0
    changed = any(not torch.equal(a, p.detach()) for a, p in zip(before, list(model.parameters())[:5], strict=True))
    return {
        "variant": variant, "input_size": list(size), "batch": batch, "device": str(device),
        "autocast_dtype": "float16" if cuda else "bfloat16", "loss": float(loss.detach()),
        "loss_parts": {k: float(v) for k, v in parts.items()}, "loss_finite": bool(torch.isfinite(loss).item()),
        "scale_before": scale0, "scale_after": scaler.get_scale() if cuda else 1.0, "weights_changed": changed,
        "step_s": seconds, "peak_memory_mb": _peak_mb(device),
    }


def _ddp_worker(rank: int, world: int, port: int, variant: str, size: tuple[int, int], backend: str,
                out: Any) -> None:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from cstrack.model import build_model

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group(backend, rank=rank, world_size=world)
    try:
        device = torch.device("cuda", rank) if backend == "nccl" else torch.device("cpu")
        if device.type == "cuda":
            torch.cuda.set_device(device)
        torch.manual_seed(0)  # same initial weights on every rank
        model = DistributedDataParallel(build_model(variant).to(device).train(),
                                        device_ids=[rank] if device.type == "cuda" else None)
        images, _ = synthetic_batch(1, size, boxes=1, ids=2, seed=rank)  # different data per rank
        emb, raw = model(images.to(device))
        (emb.float().square().mean() + sum(r.float().square().mean() for r in raw)).backward()
        grad = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]).double()
        checksum = torch.stack([grad.sum(), grad.abs().sum()])
        gathered = [torch.zeros_like(checksum) for _ in range(world)]
        dist.all_gather(gathered, checksum)
        if rank == 0:
            out.put({"world_size": world, "backend": backend,
                     "grad_checksums": [g.tolist() for g in gathered],
                     "ranks_agree": all(torch.allclose(g, gathered[0], rtol=1e-6, atol=1e-9) for g in gathered)})
    finally:
        dist.destroy_process_group()


def ddp_check(variant: str, size: tuple[int, int], cuda: bool) -> dict[str, Any]:
    import torch.multiprocessing as mp

    world = torch.cuda.device_count() if cuda else 2
    backend = "nccl" if cuda else "gloo"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    queue = ctx.SimpleQueue()
    t0 = time.perf_counter()
    mp.start_processes(_ddp_worker, args=(world, port, variant, size, backend, queue), nprocs=world, join=True,
                       start_method="spawn")
    res = queue.get()
    res["launch_to_end_s"] = time.perf_counter() - t0
    return res


def pets_frames(n: int, size: tuple[int, int]) -> list[torch.Tensor]:
    """``n`` PETS09-S2L1 frames letterboxed to ``size``, each ``[1, 3, H, W]`` float32 in [0, 1]."""
    import cv2

    from cstrack.data.letterbox import letterbox
    from cstrack.paths import shared_data

    video = shared_data() / "raw" / "PETS09-S2L1.mp4"  # the shipped sequence (795 frames of 768x576)
    cap = cv2.VideoCapture(str(video))
    out: list[torch.Tensor] = []
    try:
        while len(out) < n:
            ok, frame = cap.read()
            if not ok:
                break
            img = letterbox(frame, size)[0]
            out.append(torch.from_numpy(np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1))).float()[None] / 255.0)
    finally:
        cap.release()
    if not out:
        raise FileNotFoundError(f"{video}: no frames decoded")
    return out


def _timed(fn: Any, frames: list[torch.Tensor], device: torch.device, warmup: int) -> tuple[list[np.ndarray], float]:
    outs = []
    for x in frames[:warmup]:
        fn(x)
    _sync(device)
    t0 = time.perf_counter()
    for x in frames:
        outs.append(fn(x))
    _sync(device)
    return outs, len(frames) / (time.perf_counter() - t0)


def tracking_paths(variant: str, size: tuple[int, int], n: int, device: torch.device, tmp: Path) -> dict[str, Any]:
    from cstrack.model import build_model

    torch.manual_seed(0)
    cpu_model = build_model(variant).eval()
    frames = pets_frames(n, size)
    warmup = min(3, n)
    compare = min(3, n)
    res: dict[str, Any] = {"variant": variant, "input_size": list(size), "frames": len(frames), "device": str(device),
                           "fps": {}, "vs_cpu_max_abs": {}}

    @torch.no_grad()
    def cpu_eager(x: torch.Tensor) -> np.ndarray:
        return cpu_model.decode(cpu_model(x)[1]).numpy()

    reference = [cpu_eager(x) for x in frames[:compare]]
    model = build_model(variant).eval().to(device)
    model.load_state_dict(cpu_model.state_dict())

    @torch.no_grad()
    def eager(x: torch.Tensor) -> np.ndarray:
        return model.decode(model(x.to(device, non_blocking=True))[1]).float().cpu().numpy()

    @torch.no_grad()
    def fp16(x: torch.Tensor) -> np.ndarray:
        with torch.autocast(device.type, dtype=torch.float16 if device.type == "cuda" else torch.bfloat16):
            raw = model(x.to(device, non_blocking=True))[1]
        return model.decode([r.float() for r in raw]).cpu().numpy()

    def diff(outs: list[np.ndarray]) -> float:
        # objectness-weighted boxes differ most where the score is tiny: compare every decoded value
        return float(max(np.abs(a - b).max() for a, b in zip(outs[:compare], reference, strict=True)))

    for name, fn in (("eager_fp32", eager), ("autocast_fp16", fp16)):
        outs, fps = _timed(fn, frames, device, warmup)
        res["fps"][name] = fps
        res["vs_cpu_max_abs"][name] = diff(outs)
    res["onnxruntime"] = _ort_path(cpu_model, size, frames, device, tmp, warmup, res, diff)
    return res


def _ort_path(cpu_model: Any, size: tuple[int, int], frames: list[torch.Tensor], device: torch.device, tmp: Path,
              warmup: int, res: dict[str, Any], diff: Any) -> dict[str, Any]:
    """ONNX Runtime with the CUDA provider when it is there (the CPU provider in a CPU dry run)."""
    import onnxruntime as ort

    from cstrack.infer.onnx_export import export_onnx

    available = ort.get_available_providers()
    want = "CUDAExecutionProvider" if device.type == "cuda" else "CPUExecutionProvider"
    info: dict[str, Any] = {"version": ort.__version__, "available_providers": available, "provider": want}
    if want not in available:
        info["status"] = "unavailable (install onnxruntime-gpu matching the CUDA runtime)"
        return info
    path = export_onnx(cpu_model, size, tmp / "gpu_check.onnx")
    sess = ort.InferenceSession(str(path), providers=[want])
    info["providers_in_use"] = sess.get_providers()
    names = [o.name for o in sess.get_outputs()]
    pred_idx = next(i for i, o in enumerate(sess.get_outputs()) if len(o.shape) == 3)

    def run(x: torch.Tensor) -> np.ndarray:
        return np.asarray(sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[pred_idx])

    outs, fps = _timed(run, frames, torch.device("cpu"), warmup)
    res["fps"]["onnxruntime"] = fps
    info["outputs"] = names
    info["status"] = "ran"
    try:  # the export decodes inside the graph, rows in decode()'s order
        res["vs_cpu_max_abs"]["onnxruntime"] = diff(outs)
    except ValueError as exc:
        info["compare_error"] = f"{exc} (output shape {outs[0].shape})"
    return info


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="CPU dry run: cstrack-n at 160x128, 3 frames")
    ap.add_argument("--variant", default=None, help="default cstrack-l (cstrack-n with --tiny)")
    ap.add_argument("--size", default=None, help="tracking input WxH (default 1088x608; 160x128 with --tiny)")
    ap.add_argument("--frames", type=int, default=None, help="PETS09 frames timed (default 100; 3 with --tiny)")
    ap.add_argument("--batch", type=int, default=None, help="training batch (default 8; 2 with --tiny)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "gpu_check.json")
    args = ap.parse_args(argv)
    from cstrack.cli.common import parse_size
    from cstrack.errors import ConfigError
    from cstrack.fsutil import atomic_write_json

    cuda = torch.cuda.is_available() and not args.tiny
    if not cuda and not args.tiny:
        print("error: no CUDA device visible; run with --tiny for the CPU dry run", file=sys.stderr)
        return 2
    try:
        size = parse_size(args.size or ("160x128" if args.tiny else "1088x608"))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    variant = args.variant or ("cstrack-n" if args.tiny else "cstrack-l")
    frames = args.frames or (3 if args.tiny else 100)
    batch = args.batch or (2 if args.tiny else 8)
    device = torch.device("cuda", 0) if cuda else torch.device("cpu")
    t0 = time.perf_counter()
    out: dict[str, Any] = {
        "benchmark": "gpu_check", "tiny": args.tiny, "device": str(device),
        "gpu": torch.cuda.get_device_name(0) if cuda else None, "gpus": torch.cuda.device_count() if cuda else 0,
        "torch": torch.__version__, "cuda_runtime": torch.version.cuda,
    }
    stages = {
        "amp_train": lambda: amp_train_step(variant, size, batch, device),
        "ddp": lambda: ddp_check(variant, size, cuda),
        "tracking": lambda: tracking_paths(variant, size, frames, device, args.out.parent),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    failed = []
    for name, fn in stages.items():
        s0 = time.perf_counter()
        try:
            out[name] = fn()
        except Exception as exc:  # record and go on: one failing path must not hide the others' figures
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}
            failed.append(name)
        out[name]["stage_s"] = time.perf_counter() - s0
        print(f"[gpu_check] {name}: {time.perf_counter() - s0:.1f} s", flush=True)
    out["failed"] = failed
    out["total_s"] = time.perf_counter() - t0
    out["created"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    atomic_write_json(args.out, out)
    print(f"[gpu_check] wrote {args.out} in {out['total_s']:.0f} s; failed: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
