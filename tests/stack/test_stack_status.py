"""stack.local: ``status`` of a stack that is not running names the log files ``up`` writes."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

from cstrack.paths import REPO_ROOT
from stack.local import Stack, StackConfig


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
