"""The e2e harness's wait on `prefect deployment run --watch` (tests/flows/test_track_all_e2e.py):
a CLI that exits is believed; a CLI still watching a run the server shows finished is stopped after
the grace period, with the exit status --watch gives for that state."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.flows import test_track_all_e2e as e2e

RUN_ID = "0b5c1c5e-3a34-4c7a-9a53-2f1f4e0c9d11"


class FakeStack:
    """Answers GET /flow_runs/<id> with a fixed state type and counts the calls."""

    def __init__(self, state: str) -> None:
        self.state = state
        self.calls = 0

    def api(self, method: str, path: str, json: Any = None) -> Any:
        assert (method, path) == ("GET", f"/flow_runs/{RUN_ID}")
        self.calls += 1
        return {"state": {"type": self.state}}


def cli(log: Path, code: str) -> subprocess.Popen[str]:
    """A stand-in for the CLI: prints the run id as Prefect does, then runs ``code``."""
    fh = open(log, "w")  # noqa: SIM115 - the child holds it; closed with the process
    script = f"print('Created flow run. UUID: {RUN_ID}', flush=True)\n{code}"
    return subprocess.Popen([sys.executable, "-c", script], stdout=fh, stderr=subprocess.STDOUT, text=True)


@pytest.mark.parametrize(("state", "expected"), [("COMPLETED", 0), ("FAILED", 1), ("CRASHED", 1)])
def test_a_watcher_that_missed_the_end_is_stopped(state: str, expected: int, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(e2e, "WATCH_GRACE_S", 1.5)
    proc = cli(tmp_path / "cli.log", "import time; time.sleep(120)")
    rc, text, run_id = e2e.finish(FakeStack(state), proc, tmp_path / "cli.log")  # type: ignore[arg-type]
    assert (rc, run_id) == (expected, RUN_ID)
    assert proc.poll() is not None  # the hanging CLI was stopped
    assert f"state {state} from the API" in text


def test_a_cli_that_exits_is_believed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(e2e, "WATCH_GRACE_S", 60.0)
    stack = FakeStack("RUNNING")
    proc = cli(tmp_path / "cli.log", "import sys, time; time.sleep(3); sys.exit(1)")
    rc, text, run_id = e2e.finish(stack, proc, tmp_path / "cli.log")  # type: ignore[arg-type]
    assert (rc, run_id) == (1, RUN_ID) and "from the API" not in text
    assert stack.calls >= 1  # the run's state was read while the CLI was watching
