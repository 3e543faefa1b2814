"""stack.local: ``status`` of a stack that is not running names the log files ``up`` writes."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from cstrack.errors import ConfigError
from cstrack.paths import REPO_ROOT
from stack.commands import visible_gpus
from stack.local import Stack, StackConfig, dask_worker_name, gpu_plan, is_dask_worker


def test_status_of_a_stopped_stack_points_at_the_logs_up_writes(tmp_path: Path) -> None:
    stack = Stack(tmp_path / "state")
    assert stack.status() == []  # never configured: nothing to report
    stack.state.mkdir()
    stack.config_path.write_text(json.dumps(asdict(StackConfig(workers=1))))
    logs = {s.name: (s.running, s.pid, s.log) for s in stack.status()}
    state = stack.state
    assert logs == {
        # PostgreSQL logs beside its data directory (stack.postgres), the others under logs/
        "postgres": (False, None, str(state / "postgres" / "postgres.log")),
        "prefect-server": (False, None, str(state / "logs" / "prefect-server.log")),
        "dask-scheduler": (False, None, str(state / "logs" / "dask-scheduler.log")),
        "dask-worker-w1": (False, None, str(state / "logs" / "dask-worker-w1.log")),
        "prefect-worker": (False, None, str(state / "logs" / "prefect-worker.log")),
    }


def test_stack_and_its_old_name_answer_the_same(tmp_path: Path) -> None:
    """``python -m stack`` is the entry point; ``python -m flows.services`` still runs it."""
    outs = []
    for module in ("stack", "flows.services"):
        done = subprocess.run([sys.executable, "-m", module, "--state", str(tmp_path / "none"), "status"],
                              cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False)
        outs.append((done.returncode, done.stdout, done.stderr))
    expected = (3, f"no stack in {tmp_path / 'none'} (run `python -m stack up`)\n", "")
    assert outs == [expected, expected]


def test_gpu_workers_are_services_of_their_own_pinned_to_their_device(tmp_path: Path) -> None:
    stack = Stack(tmp_path / "state")
    stack.state.mkdir()
    stack.config_path.write_text(json.dumps(asdict(StackConfig(workers=1, gpu_workers=2, gpu_devices=["3", "5"]))))
    cfg = stack.config()
    assert cfg is not None
    assert stack.service_names(cfg) == ["postgres", "prefect-server", "dask-scheduler", "dask-worker-w1",
                                        "dask-gpu-worker-g1", "dask-gpu-worker-g2", "prefect-worker"]
    addresses = {s.name: s.address for s in stack.status()}
    assert addresses["dask-gpu-worker-g2"] == f"-> tcp://127.0.0.1:{cfg.dask_port} (GPU, CUDA_VISIBLE_DEVICES=5)"
    assert [dask_worker_name(n) for n in stack.service_names(cfg) if is_dask_worker(n)] == ["w1", "g1", "g2"]
    # a stack.json written before GPU workers existed reads as none
    old = {k: v for k, v in asdict(StackConfig(workers=1)).items() if not k.startswith("gpu_")}
    stack.config_path.write_text(json.dumps(old))
    cfg = stack.config()
    assert cfg is not None and cfg.gpu_workers == 0 and "dask-gpu-worker-g1" not in stack.service_names(cfg)


def test_visible_gpus_from_the_driver_and_cuda_visible_devices() -> None:
    two = "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-a)\nGPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-b)\n"
    assert visible_gpus({}, lambda: None) == []  # no driver: no GPU, whatever the environment says
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "0"}, lambda: None) == []
    assert visible_gpus({}, lambda: two) == ["0", "1"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "1"}, lambda: two) == ["1"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "GPU-b, 0"}, lambda: two) == ["GPU-b", "0"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "1,-1,0"}, lambda: two) == ["1"]  # CUDA stops at -1
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}, lambda: two) == []


def test_gpu_workers_default_to_one_per_visible_gpu() -> None:
    assert gpu_plan(None, []) == (0, [])
    assert gpu_plan(None, ["2", "3"]) == (2, ["2", "3"])
    assert gpu_plan(1, ["2", "3"]) == (1, ["2"])
    assert gpu_plan(2, []) == (2, [])  # asked for without a driver in sight: devices 0 and 1
    assert StackConfig(gpu_workers=2).gpu_device(1) == "1"
    with pytest.raises(ConfigError, match="--gpu-workers: 0 or more"):
        StackConfig(gpu_workers=-1)


def test_up_refuses_a_negative_gpu_worker_count(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "stack", "--state", str(tmp_path / "s"), "up", "--gpu-workers", "-1"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", "error: --gpu-workers: 0 or more GPU workers, got -1\n")
    assert not (tmp_path / "s").exists()
