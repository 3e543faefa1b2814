"""How a training run is started: in this process, or one process per device under ``torchrun``
(DDP, :mod:`cstrack.train.distributed`), the way the ``train`` flow's GPU deployment runs it.

:func:`processes_for` decides the process count (one per visible GPU when the run is on CUDA);
:func:`torchrun_command` builds the command line; :func:`run_torchrun` runs it and returns the
run's ``summary.json``.  Every process resumes from the newest checkpoint of ``out_dir`` when
``resume`` (a relaunch after an interruption continues the run).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from cstrack.errors import ConfigError, CSTrackError

_TAIL = 3000  # characters of a failed run's stderr kept in the error


def visible_gpus() -> int:
    """CUDA devices this process sees (``CUDA_VISIBLE_DEVICES`` applied); 0 without CUDA."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def processes_for(device: str, processes: int | None, gpus: int | None = None) -> int:
    """The number of training processes: ``processes`` when given; otherwise one per visible GPU
    (``gpus``, default :func:`visible_gpus`) when ``device`` is ``auto`` or ``cuda`` and a GPU is
    visible, else 1.  A single device (``cuda:N``) means one process."""
    if processes is not None:
        if processes < 1:
            raise ConfigError(f"processes: must be >= 1, got {processes}")
        if processes > 1 and device.startswith("cuda:"):
            raise ConfigError(f"processes: {processes} processes cannot share the one device {device}; use cuda or auto")
        return processes
    if device not in ("auto", "cuda"):
        return 1
    n = visible_gpus() if gpus is None else gpus
    return max(1, n)


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (the rendezvous of a single-node run)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def torchrun_command(config: str | Path, nproc: int, *, out_dir: str | Path | None = None, device: str | None = None,
                     resume: bool = True, port: int | None = None) -> list[str]:
    """``python -m torch.distributed.run --nproc_per_node N ... -m cstrack train CONFIG`` for one node
    (rendezvous on 127.0.0.1:``port``, default a free one)."""
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", str(nproc),
        "--master_addr", "127.0.0.1", "--master_port", str(port or free_port()),
        "-m", "cstrack", "train", str(config), "--no-progress",
    ]
    if out_dir is not None:
        cmd += ["--out-dir", str(out_dir)]
    if device is not None:
        cmd += ["--device", device]
    if resume:
        cmd.append("--resume")
    return cmd


def run_torchrun(config: str | Path, nproc: int, out_dir: str | Path, *, device: str | None = None, resume: bool = True,
                 env: dict[str, str] | None = None, timeout_s: float | None = None) -> dict[str, Any]:
    """Run :func:`torchrun_command` to the end and return ``out_dir/summary.json``.  A failed run
    raises :class:`CSTrackError` with the end of its stderr (its checkpoints stay for a resume)."""
    cmd = torchrun_command(config, nproc, out_dir=out_dir, device=device, resume=resume)
    full_env = {**os.environ, **(env or {})}
    if device == "cpu" or (device in (None, "auto") and visible_gpus() == 0):
        full_env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    proc = subprocess.run(cmd, env=full_env, capture_output=True, text=True, timeout=timeout_s, check=False)
    if proc.returncode != 0:
        raise CSTrackError(f"torchrun ({nproc} processes) exited with {proc.returncode}: {proc.stderr[-_TAIL:]}")
    summary = Path(out_dir) / "summary.json"
    if not summary.is_file():
        raise CSTrackError(f"torchrun finished but wrote no {summary}")
    result: dict[str, Any] = json.loads(summary.read_text(encoding="utf-8"))
    return result
