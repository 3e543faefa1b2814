"""Two real processes update the same files at once (issue 24): ``timing.json`` (the CLI's
merge_timing) and one catalog run partition appended to (catalog.store, mode="append"), 20 times
each, started together.  Nothing is lost: 40 timing entries, 40 rows.  Without the advisory locks
a read-modify-write of one process overwrites the other's (53 of 100 entries kept in the issue)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROUNDS = 20

WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from catalog import store
    from cstrack.cli.common import merge_timing

    out, who, start = Path(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    while time.time() < start:  # both processes begin together
        time.sleep(0.005)
    for i in range({rounds}):
        merge_timing(out / "timing.json", {{f"{{who}}-{{i}}": {{"frames": i}}}})
        row = {{"run_id": "shared", "epoch": 0, "step": i + (1000 if who == "b" else 0), "time": None,
               **dict.fromkeys(["loss_total", "loss_box", "loss_obj", "loss_id", "lr", "images_per_s"], 0.0)}}
        store.write("train_steps", [row], out / "catalog", run_id="shared", mode="append")
""").format(rounds=ROUNDS)


def test_two_processes_writing_one_folder_lose_nothing(tmp_path: Path) -> None:
    from catalog import store

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    start = time.time() + 6.0  # after both have imported pyarrow on a loaded machine
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path), who, str(start)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for who in ("a", "b")]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    timing = json.loads((tmp_path / "timing.json").read_text())
    assert sorted(timing) == sorted(f"{w}-{i}" for w in "ab" for i in range(ROUNDS))
    steps = store.load("train_steps", root=tmp_path / "catalog")
    assert sorted(steps["step"]) == sorted([*range(ROUNDS), *range(1000, 1000 + ROUNDS)])
    assert not [p for p in tmp_path.rglob(".*") if p.is_file()]  # no staged or temporary file left
