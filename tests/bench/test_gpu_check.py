"""bench/gpu_check.py --tiny: the GPU check's every stage runs on CPU (so that it cannot rot between
GPU loans) and writes the JSON the GPU run would: forward speed at batch 1 and 2 in fp32 and half
precision, end-to-end tracking against the CPU, an AMP step, a DDP step, track-all on a worker that
declares a GPU resource."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # every stage in small sizes, a temporary Prefect server and a LocalCluster: ~1-2 min
def test_tiny_dry_run_writes_every_stage(tmp_path: Path) -> None:
    out = tmp_path / "gpu_check.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # one thread per process: no OpenMP barrier stalls on a busy machine
    env.pop("PREFECT_API_URL", None)
    done = subprocess.run([sys.executable, str(REPO / "bench" / "gpu_check.py"), "--tiny", "--out", str(out),
                           "--work", str(tmp_path / "work")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    res = json.loads(out.read_text())
    assert res["failed"] == [] and res["tiny"] and res["device"] == "cpu" and res["batch"] == 2
    fwd = res["forward"]
    assert set(fwd["fps"]) == {"fp32_b1", "fp32_b2", "half_b1", "half_b2", "onnxruntime"}
    assert fwd["half_dtype"] == "bfloat16" and fwd["onnxruntime"]["status"] == "ran"
    # the same weights on the same device: bit-identical; bf16 autocast changes the outputs;
    # ONNX Runtime's fused kernels: float rounding
    assert fwd["vs_cpu_max_abs"]["fp32_b1"] == 0.0 < fwd["vs_cpu_max_abs"]["half_b1"]
    assert fwd["vs_cpu_max_abs"]["onnxruntime"] < 1e-2
    e2e = res["end_to_end"]
    assert set(e2e["runs"]) == {"fp32_b1", "fp32_b2", "bf16_b2"} and e2e["cpu_reference"]["frames"] == 4
    for name in ("fp32_b1", "fp32_b2"):  # fp32 on the reference's device: the CPU's tracks, batched or not
        run = e2e["runs"][name]
        assert run["frames"] == 4 and run["boxes"] > 0
        assert run["vs_cpu"]["same_rows"] and run["vs_cpu"]["max_box_diff_px"] <= 1e-3
    train = res["amp_train"]
    assert train["loss_finite"] and train["weights_changed"] and train["loss"] > 0
    assert set(train["loss_parts"]) >= {"box", "obj", "id"} and all(v >= 0 for v in train["loss_parts"].values())
    ddp = res["ddp"]
    assert ddp["world_size"] == 2 and ddp["ranks_agree"] and len(ddp["grad_checksums"]) == 2
    ta = res["track_all"]
    assert ta["failed"] == [] and ta["sequences"] == ta["tracked"] == 3  # PETS09-S2L1 + the two MOT17-mini sequences
    assert ta["worker_resources"] == [{"GPU": 1}]


def test_without_a_gpu_the_full_run_refuses_in_one_line(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: the full run would start")  # not the case on CI's CPU machines
    done = subprocess.run([sys.executable, str(REPO / "bench" / "gpu_check.py"), "--out", str(tmp_path / "x.json")],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0 and "--tiny" in done.stderr
    assert not (tmp_path / "x.json").exists()
