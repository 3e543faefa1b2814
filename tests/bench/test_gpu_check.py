"""bench/gpu_check.py --tiny: the GPU check's every stage runs on CPU (so that it cannot rot between
GPU loans) and writes the JSON the GPU run would."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_tiny_dry_run_writes_every_stage(tmp_path: Path) -> None:
    out = tmp_path / "gpu_check.json"
    done = subprocess.run([sys.executable, str(REPO / "bench" / "gpu_check.py"), "--tiny", "--out", str(out)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["failed"] == [] and res["tiny"] and res["device"] == "cpu"
    train = res["amp_train"]
    assert train["loss_finite"] and train["weights_changed"] and train["loss"] > 0
    assert set(train["loss_parts"]) >= {"box", "obj", "id"} and all(v >= 0 for v in train["loss_parts"].values())
    ddp = res["ddp"]
    assert ddp["world_size"] == 2 and ddp["ranks_agree"] and len(ddp["grad_checksums"]) == 2
    track = res["tracking"]
    assert track["frames"] == 3 and set(track["fps"]) == {"eager_fp32", "autocast_fp16", "onnxruntime"}
    # the same weights on the same device: bit-identical; ONNX Runtime's fused kernels: float rounding
    assert track["vs_cpu_max_abs"]["eager_fp32"] == 0.0
    assert track["vs_cpu_max_abs"]["onnxruntime"] < 1e-2
    assert track["onnxruntime"]["status"] == "ran"


def test_without_a_gpu_the_full_run_refuses_in_one_line(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: the full run would start")  # not the case on CI's CPU machines
    done = subprocess.run([sys.executable, str(REPO / "bench" / "gpu_check.py"), "--out", str(tmp_path / "x.json")],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0 and "--tiny" in done.stderr
    assert not (tmp_path / "x.json").exists()
