"""DDP smoke test: ``torchrun --nproc_per_node 2`` on CPU (gloo on 127.0.0.1), tiny cstrack-n config.

Each rank reports a digest of its final weights (summary.json ``rank_parameter_digests``); after
all-reduced gradient steps the two replicas must be bit-identical.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cstrack.model import build_model
from cstrack.model.weights import load_coco_yolov5n, load_weights


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow  # two fresh interpreters importing torch: ~15-25 s on the 2-core machine
def test_torchrun_two_processes_gloo(head8: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    cfg = {
        "name": "ddp", "out_dir": str(out),
        "data": {"sequences": [{"path": str(head8)}], "input_size": [64, 64], "resize": "letterbox"},
        "epochs": 2, "batch": 2, "nominal_batch": 4,
        "optim": {"warmup_epochs": 0, "warmup_min_iters": 0},
        "device": "cpu", "deterministic": True,
    }
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
        "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
        "-m", "cstrack", "train", str(path), "--no-progress",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]

    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2
    digests = summary["rank_parameter_digests"]
    assert len(digests) == 2 and digests[0] == digests[1]
    # 8 images per epoch shared by the two ranks: 2 batches of 2 images on each
    assert [h["images"] for h in summary["history"]] == [8, 8]
    assert [h["iterations"] for h in summary["history"]] == [2, 2]
    # training moved the weights away from the COCO start
    trained = load_weights(out / "weights" / "ddp.pt").state_dict()
    start = load_coco_yolov5n(build_model("cstrack-n")).state_dict()
    assert any(not trained[k].equal(start[k]) for k in start if k.startswith("trunk."))
