"""One prepared GPU check, for the day a GPU is lent (under 8 minutes on one H100): writes JSON.

Usage (docs/gpu.md has the exact command and what to copy to the GPU machine):
    python bench/gpu_check.py [--shared DIR] [--out bench/out/gpu_check.json] [--stages ...]
    python bench/gpu_check.py --tiny      (CPU dry run, seconds: what the test suite runs)

Stages, each recorded (or its error recorded) in the JSON, which is rewritten after every stage:

1. ``forward``: cstrack-l (random weights) forward + decode fps at 1088x608 on PETS09-S2L1 frames,
   fp32 and half precision (fp16 autocast on CUDA), at batch 1 and the chosen batch (the device's
   default inference batch, :data:`cstrack.infer.batch.DEFAULT_BATCH`); the decoded outputs of batch
   1 against the CPU fp32 model on the same frames (``vs_cpu_max_abs``); ONNX Runtime's CUDA provider
   when onnxruntime-gpu is installed (otherwise recorded as unavailable).
2. ``end_to_end``: the tracking loop of ``cstrack track`` on PETS09-S2L1 (all 795 frames) with the
   shipped cstrack-n checkpoint on the GPU: fp32 batch 1, fp32 at the chosen batch, half at the
   chosen batch; fps, MOTA / IDF1, and the largest box difference against a CPU fp32 run over the
   first ``--compare-frames`` frames (the tracker is causal, so those rows must agree).
3. ``amp_train``: one AMP training step of cstrack-l on a synthetic batch: fp16 autocast, CSTrack
   loss, ``GradScaler``; the loss must be finite; peak memory.
4. ``ddp``: a DistributedDataParallel step on every visible GPU (NCCL; gloo on 2 CPU processes with
   ``--tiny``): the ranks' gradients after the all-reduce must agree.
5. ``track_all``: the ``track-all`` flow over PETS09-S2L1 and MOT17-mini on a LocalCluster whose one
   worker declares ``resources={"GPU": 1}`` (a temporary Prefect server unless PREFECT_API_URL is set).

Data: PETS09-S2L1 and MOT17-mini are prepared under ``--work`` from the shared folder (``--shared
DIR`` or ``$CSTRACK_SHARED``; default ``../shared`` beside the repository), or taken from ``--data``.

``--tiny``: cstrack-n at 160x128 and 4 frames for the forward, training and DDP stages, 4 PETS09
frames at 320x192 for tracking, batch 2, all on the CPU (half precision is bf16 there) so that the
script cannot rot between GPU loans.
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
for _p in (REPO, REPO / "bench"):  # the project, and the sibling bench scripts (batch_precision)
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))


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


def forward_speed(variant: str, size: tuple[int, int], n: int, batch: int, device: torch.device, tmp: Path,
                  ort: bool = True) -> dict[str, Any]:
    """Network forward + decode fps of ``variant`` (random weights) on PETS09 frames, fp32 and half
    precision, at batch 1 and ``batch``; the decoded outputs of batch 1 against the CPU fp32 path."""
    from cstrack.infer.batch import autocast_dtype
    from cstrack.model import build_model

    torch.manual_seed(0)
    cpu_model = build_model(variant).eval()
    frames = pets_frames(n, size)
    compare = min(2, len(frames))
    half = autocast_dtype("fp16", device)  # fp16 on CUDA, bf16 on the CPU
    res: dict[str, Any] = {"variant": variant, "input_size": list(size), "frames": len(frames), "device": str(device),
                           "batch": batch, "half_dtype": str(half).removeprefix("torch."), "fps": {},
                           "vs_cpu_max_abs": {}}
    with torch.inference_mode():
        reference = [cpu_model.decode(cpu_model(x)[1]).numpy() for x in frames[:compare]]
    model = build_model(variant).eval().to(device)
    model.load_state_dict(cpu_model.state_dict())

    def run(x: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
        with torch.inference_mode(), torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            raw = model(x.to(device, non_blocking=True))[1]
        with torch.inference_mode():
            return model.decode([r.float() for r in raw])

    for prec, dtype in (("fp32", None), ("half", half)):
        for b in sorted({1, batch}):
            groups = [torch.cat(frames[k:k + b]) for k in range(0, len(frames), b)]
            for g in groups[:2]:  # warm-up: cuDNN algorithm choice, allocator
                run(g, dtype)
            _sync(device)
            t0 = time.perf_counter()
            outs = [run(g, dtype) for g in groups]
            _sync(device)
            res["fps"][f"{prec}_b{b}"] = len(frames) / (time.perf_counter() - t0)
            if b == 1:
                got = [o.cpu().numpy() for o in outs[:compare]]
                res["vs_cpu_max_abs"][f"{prec}_b1"] = float(max(np.abs(a - r).max() for a, r in zip(got, reference, strict=True)))
    if ort:
        res["onnxruntime"] = _ort_path(cpu_model, size, frames, device, tmp, min(3, n), res, reference)
    return res


def _ort_path(cpu_model: Any, size: tuple[int, int], frames: list[torch.Tensor], device: torch.device, tmp: Path,
              warmup: int, res: dict[str, Any], reference: list[np.ndarray]) -> dict[str, Any]:
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
        res["vs_cpu_max_abs"]["onnxruntime"] = float(max(np.abs(a - r).max() for a, r in zip(outs, reference, strict=False)))
    except ValueError as exc:
        info["compare_error"] = f"{exc} (output shape {outs[0].shape})"
    return info


def prepared_data(work: Path, data: Path | None, log: Any, pets_frames: int = 0) -> Path:
    """A data root holding ``pets09-s2l1`` and ``mot17-mini``: ``data`` when given, else prepared
    under ``work`` from the shared folder (``$CSTRACK_SHARED``: the video and MOT17-mini frames);
    ``pets_frames > 0`` decodes only the first frames of the PETS09 video (the tiny run)."""
    from cstrack.data.convert import video_to_sequence
    from cstrack.data.prepare import prepare
    from cstrack.paths import shared_data

    if data is not None:
        return data
    root = work / "data"
    if pets_frames > 0:
        if not (root / "pets09-s2l1" / "images" / "train" / "PETS09-S2L1" / "seqinfo.ini").is_file():
            video_to_sequence(shared_data() / "raw" / "PETS09-S2L1.mp4", root / "pets09-s2l1" / "images" / "train",
                              "PETS09-S2L1", gt=shared_data() / "mot15" / "PETS09-S2L1", frames=(1, pets_frames))
        names = ["mot17-mini"]
    else:
        names = ["pets09-s2l1", "mot17-mini"]
    for name in names:
        res = prepare(name, root, progress=False)
        log(f"[gpu_check] {name}: {'already prepared' if res.skipped else 'prepared'} in {res.path}")
    return root


def _rows_upto(table: Any, frames: int) -> Any:
    from types import SimpleNamespace

    keep = table.frame <= frames
    return SimpleNamespace(frame=table.frame[keep], id=table.id[keep], tlwh=table.tlwh[keep])


def _cstrack_track(seq: Path, out: Path, device: str, batch: int, precision: str, size: tuple[int, int] | None,
                   max_frames: int | None = None) -> dict[str, Any]:
    """``cstrack track SEQ --path eager --device D --batch-size B --precision P`` in a subprocess; its
    ``timing.json`` entry of the sequence (frames, fps, stage ms, settings)."""
    import json
    import subprocess

    cmd = [sys.executable, "-m", "cstrack", "track", str(seq), "--path", "eager", "--device", device, "--batch-size",
           str(batch), "--precision", precision, "--out", str(out), "--no-progress"]
    if size is not None:
        cmd += ["--size", f"{size[0]}x{size[1]}"]
    if max_frames is not None:
        cmd += ["--max-frames", str(max_frames)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=REPO)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[2:])}: exit {done.returncode}: {done.stderr.strip()[-1500:]}")
    record: dict[str, Any] = json.loads((out / "timing.json").read_text())[seq.name]
    record["command"] = " ".join(["cstrack", *cmd[3:]])
    return record


def end_to_end(data_root: Path, work: Path, size: tuple[int, int] | None, frames: int, batch: int,
               compare_frames: int, device: torch.device) -> dict[str, Any]:
    """``cstrack track`` (a subprocess each) on PETS09-S2L1 with the shipped cstrack-n checkpoint on
    ``device``: fp32 batch 1, fp32 at ``batch``, half precision at ``batch``; fps, MOTA/IDF1, and the
    largest box difference against ``cstrack track --device cpu`` over the first ``compare_frames`` frames
    (the tracker is causal: those rows must agree)."""
    from batch_precision import compare, pets_sequence, truncated  # bench/ is on sys.path (see the top)

    from cstrack.data.mot import read_results
    from cstrack.eval import evaluate

    seq = pets_sequence(data_root)
    if frames > 0:
        seq = truncated(seq, frames, work / "e2e-seq")
    dev = "cuda" if device.type == "cuda" else "cpu"
    half = "fp16" if device.type == "cuda" else "bf16"
    res: dict[str, Any] = {"weights": "the shipped default (weights/cstrack-n_cpu.pt)", "device": dev, "batch": batch,
                           "half": half, "compare_frames": compare_frames, "runs": {}}
    t0 = time.perf_counter()
    cpu_out = work / "e2e" / "cpu"
    res["cpu_reference"] = {**_cstrack_track(seq, cpu_out, "cpu", 1, "fp32", size, compare_frames),
                            "seconds": time.perf_counter() - t0}
    cpu_rows = read_results(cpu_out / f"{seq.name}.txt")
    for prec, b in (("fp32", 1), ("fp32", batch), (half, batch)):
        name = f"{prec}_b{b}"
        out = work / "e2e" / name
        rec = _cstrack_track(seq, out, dev, b, prec, size)
        rows = read_results(out / f"{seq.name}.txt")
        m = evaluate(seq.parent, out, [seq.name], "mot15").combined
        res["runs"][name] = {**rec, "boxes": len(rows), "MOTA": m["MOTA"], "IDF1": m["IDF1"], "IDSW": m["IDSW"],
                             "vs_cpu": compare(_rows_upto(rows, compare_frames), _rows_upto(cpu_rows, compare_frames))}
    return res


def track_all_on_gpu_worker(data_root: Path, work: Path, size: tuple[int, int] | None, device: torch.device,
                            pets_frames_limit: int) -> dict[str, Any]:
    """The ``track-all`` flow over PETS09-S2L1 and MOT17-mini on a LocalCluster of one Dask worker
    declaring ``resources={"GPU": 1}`` (a temporary Prefect server under ``work`` when PREFECT_API_URL
    is unset; $PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS bounds its start, default 180 s)."""
    from batch_precision import truncated
    from distributed import Client, LocalCluster

    from cstrack.data.mot import read_seqinfo
    from cstrack.paths import shipped_weights
    from flows.__main__ import prefect_api
    from flows.params import ModelSpec, TrackAllParams

    root = data_root
    pets_seq = data_root / "pets09-s2l1" / "images" / "train" / "PETS09-S2L1"
    if 0 < pets_frames_limit < read_seqinfo(pets_seq).seq_length:  # a data root of its own, PETS09 cut short
        root = work / "track-all-data"
        pets = root / "pets09-s2l1" / "images" / "train"
        truncated(pets_seq, pets_frames_limit, pets)
        (root / "mot17-mini").mkdir(parents=True, exist_ok=True)
        for sub in ("images",):
            link = root / "mot17-mini" / sub
            if not link.exists():
                link.symlink_to(data_root / "mot17-mini" / sub)
    model: dict[str, Any] = {"variant": "cstrack-n", "weights": str(shipped_weights()), "path": "eager"}
    if size is not None:
        model["input_size"] = list(size)
    device_field = "device" in ModelSpec.model_fields
    if device_field:
        model["device"] = "cuda" if device.type == "cuda" else "cpu"
    saved_home = os.environ.get("PREFECT_HOME")
    os.environ.setdefault("PREFECT_HOME", str(work / "prefect"))  # a temporary server's database goes here
    try:
        with prefect_api(), LocalCluster(n_workers=1, threads_per_worker=1, processes=True, resources={"GPU": 1},
                                         dashboard_address=None, host="127.0.0.1") as cluster:
            with Client(cluster) as client:
                client.wait_for_workers(1, timeout=120)
                resources = [w.get("resources", {}) for w in client.scheduler_info()["workers"].values()]
            params = TrackAllParams.model_validate({
                "data_root": str(root), "results_root": str(work / "track-all-results"), "run_name": "gpu-check",
                "tag": "gpu-check", "model": model, "cluster": {"dask_address": cluster.scheduler_address},
                "datasets": [{"name": "pets09-s2l1"}, {"name": "mot17-mini"}],
            })
            from flows.track_all import track_all  # Prefect is imported once PREFECT_API_URL is set

            t0 = time.perf_counter()
            summary = track_all(params)
    finally:
        if saved_home is None:
            os.environ.pop("PREFECT_HOME", None)
    return {"device_param": model.get("device", "not yet a ModelSpec field: the model ran on the worker's default (CPU)"),
            "worker_resources": resources,
            "sequences": summary["sequences"], "tracked": summary["tracked"], "cached": summary["cached"],
            "failed": summary["failed"], "wall_s": time.perf_counter() - t0, "per_sequence": summary["per_sequence"],
            "metrics": summary["metrics"]}


STAGES = ("forward", "end_to_end", "amp_train", "ddp", "track_all")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="CPU dry run in seconds (what the test suite runs)")
    ap.add_argument("--variant", default=None, help="forward-speed model (default cstrack-l; cstrack-n with --tiny)")
    ap.add_argument("--size", default=None, help="forward-speed input WxH (default 1088x608; 160x128 with --tiny)")
    ap.add_argument("--frames", type=int, default=None, help="PETS09 frames of the forward timing (default 96; 4 with --tiny)")
    ap.add_argument("--batch", type=int, default=None,
                    help="inference batch compared with batch 1 and training batch (default: the device's default "
                         "inference batch, 8 on CUDA; 2 with --tiny)")
    ap.add_argument("--track-frames", type=int, default=None,
                    help="PETS09 frames tracked end to end (default 0 = all 795; 4 with --tiny)")
    ap.add_argument("--compare-frames", type=int, default=None,
                    help="frames tracked on the CPU for the box comparison (default 40; 4 with --tiny)")
    ap.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES), help="stages to run (default all)")
    ap.add_argument("--shared", type=Path, default=None,
                    help="the shared folder (data/raw/PETS09-S2L1.mp4, data/mot17-mini, ...); default $CSTRACK_SHARED "
                         "or ../shared beside the repository")
    ap.add_argument("--data", type=Path, default=None, help="an already prepared data root (default: prepared under --work)")
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: a new temporary folder)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "gpu_check.json")
    args = ap.parse_args(argv)
    if args.shared is not None:
        os.environ["CSTRACK_SHARED"] = str(args.shared.resolve())
    import tempfile

    from cstrack.cli.common import parse_size
    from cstrack.errors import ConfigError
    from cstrack.fsutil import atomic_write_json
    from cstrack.infer.batch import default_batch_size
    from cstrack.paths import shared_data

    cuda = torch.cuda.is_available() and not args.tiny
    if not cuda and not args.tiny:
        print("error: no CUDA device visible; run with --tiny for the CPU dry run", file=sys.stderr)
        return 2
    try:
        size = parse_size(args.size or ("160x128" if args.tiny else "1088x608"))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not (shared_data() / "raw" / "PETS09-S2L1.mp4").is_file():
        print(f"error: {shared_data() / 'raw' / 'PETS09-S2L1.mp4'} not found; give the shared folder with --shared DIR "
              "or CSTRACK_SHARED", file=sys.stderr)
        return 2
    variant = args.variant or ("cstrack-n" if args.tiny else "cstrack-l")
    frames = args.frames or (4 if args.tiny else 96)
    device = torch.device("cuda", 0) if cuda else torch.device("cpu")
    batch = args.batch or (2 if args.tiny else default_batch_size(device))
    track_size = (320, 192) if args.tiny else None  # None: the checkpoint's 1088x608
    track_frames = args.track_frames if args.track_frames is not None else (4 if args.tiny else 0)
    compare_frames = args.compare_frames or (4 if args.tiny else 40)
    work = args.work or Path(tempfile.mkdtemp(prefix="gpu_check-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    out: dict[str, Any] = {
        "benchmark": "gpu_check", "tiny": args.tiny, "device": str(device),
        "gpu": torch.cuda.get_device_name(0) if cuda else None, "gpus": torch.cuda.device_count() if cuda else 0,
        "torch": torch.__version__, "cuda_runtime": torch.version.cuda, "batch": batch, "work": str(work),
    }
    data: dict[str, Path] = {}

    def data_root() -> Path:
        if "root" not in data:
            data["root"] = prepared_data(work, args.data, print, max(track_frames, compare_frames) if args.tiny else 0)
        return data["root"]

    stages = {
        "forward": lambda: forward_speed(variant, size, frames, batch, device, work),
        "end_to_end": lambda: end_to_end(data_root(), work, track_size, track_frames, batch, compare_frames, device),
        "amp_train": lambda: amp_train_step(variant, size, batch, device),
        "ddp": lambda: ddp_check(variant, size, cuda),
        "track_all": lambda: track_all_on_gpu_worker(data_root(), work, track_size, device, track_frames),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    failed = []
    for name in args.stages:
        s0 = time.perf_counter()
        try:
            out[name] = stages[name]()
        except Exception as exc:  # record and go on: one failing path must not hide the others' figures
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}
            failed.append(name)
        out[name]["stage_s"] = time.perf_counter() - s0
        print(f"[gpu_check] {name}: {time.perf_counter() - s0:.1f} s", flush=True)
        atomic_write_json(args.out, {**out, "failed": failed, "partial": True})  # what is done survives a timeout
    out["failed"] = failed
    out["total_s"] = time.perf_counter() - t0
    out["created"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    atomic_write_json(args.out, out)
    print(f"[gpu_check] wrote {args.out} in {out['total_s']:.0f} s; failed: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
