"""DDP smoke test: ``torchrun --nproc_per_node 2`` on CPU (gloo on 127.0.0.1), tiny cstrack-n config,
launched the way the ``train`` flow's GPU deployment launches it (tasks.train.train_model_ddp ->
cstrack.train.launch.run_torchrun, with ``--out-dir``/``--device``/``--resume``).

Each rank reports a digest of its final weights (summary.json ``rank_parameter_digests``); after
all-reduced gradient steps the two replicas must be bit-identical.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from cstrack.errors import ConfigError
from cstrack.model import build_model
from cstrack.model.weights import load_coco_yolov5n, load_weights
from cstrack.train.launch import processes_for, torchrun_command


@pytest.mark.slow  # two fresh interpreters importing torch: ~15-25 s on the 2-core machine
def test_torchrun_two_processes_gloo(head8: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tasks.train import train_model_ddp

    out = tmp_path / "run"
    cfg = {
        "name": "ddp", "out_dir": str(tmp_path / "not-this-one"),
        "data": {"sequences": [{"path": str(head8)}], "input_size": [64, 64], "resize": "letterbox"},
        "epochs": 2, "batch": 2, "nominal_batch": 4,
        "optim": {"warmup_epochs": 0, "warmup_min_iters": 0},
        "device": "auto", "deterministic": True,
    }
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    for k, v in {"OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo", "CUDA_VISIBLE_DEVICES": ""}.items():
        monkeypatch.setenv(k, v)
    res = train_model_ddp.fn(str(path), 2, str(out), "cpu", resume=True)  # the flow's task body
    assert res["processes"] == 2 and res["world_size"] == 2 and res["epochs"] == 2
    assert Path(res["weights"]) == out / "weights" / "ddp.pt" and not (tmp_path / "not-this-one").exists()

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


def test_process_count_follows_the_visible_gpus() -> None:
    assert processes_for("auto", None, gpus=4) == 4 and processes_for("cuda", None, gpus=2) == 2
    assert processes_for("auto", None, gpus=0) == 1 and processes_for("cpu", None, gpus=8) == 1
    assert processes_for("cuda:1", None, gpus=8) == 1 and processes_for("cpu", 2) == 2
    with pytest.raises(ConfigError, match="processes"):
        processes_for("cuda:0", 2)
    cmd = torchrun_command("c.yaml", 4, out_dir="o", device="auto", resume=True, port=29500)
    assert cmd[:3] == [sys.executable, "-m", "torch.distributed.run"] and cmd[cmd.index("--nproc_per_node") + 1] == "4"
    assert cmd[cmd.index("train"):] == ["train", "c.yaml", "--no-progress", "--out-dir", "o", "--device", "auto", "--resume"]
