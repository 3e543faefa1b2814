"""The temporary Prefect server's start-up limit (issue 24): Prefect's own setting read once, and a
server that does not come up in time is one line naming it, from ``python -m flows`` and the demo,
with no traceback and no server process left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from cstrack.errors import ConfigError
from cstrack.paths import REPO_ROOT, shared_data
from stack.temporary import DEFAULT_STARTUP_S, STARTUP_ENV, startup_limit


def test_the_limit_is_prefects_setting_with_our_default() -> None:
    assert STARTUP_ENV == "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
    assert startup_limit({}) == DEFAULT_STARTUP_S == 180
    assert startup_limit({STARTUP_ENV: " 45 "}) == 45
    with pytest.raises(ConfigError, match=rf"^{STARTUP_ENV}='soon': expected a whole number of seconds$"):
        startup_limit({STARTUP_ENV: "soon"})
    with pytest.raises(ConfigError, match=rf"^{STARTUP_ENV}='0': expected at least 1 second$"):
        startup_limit({STARTUP_ENV: "0"})


def test_prefect_reads_the_same_setting() -> None:
    from prefect.settings import Settings

    assert Settings().server.ephemeral.startup_timeout_seconds == 20  # Prefect's default, too short here
    os.environ[STARTUP_ENV] = "77"
    try:
        assert Settings().server.ephemeral.startup_timeout_seconds == 77
    finally:
        del os.environ[STARTUP_ENV]


def _servers_of(home: Path) -> list[int]:
    """Prefect server processes whose PREFECT_HOME is ``home``."""
    pids = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            cmd = p.info["cmdline"] or []
            if any(c.endswith("prefect") for c in cmd[:2]) and "server" in cmd and p.environ().get(
                    "PREFECT_HOME") == str(home):
                pids.append(p.pid)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return pids


def _run(argv: list[str], home: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "DASK_", "CSTRACK_DASK"))}
    env |= {"PREFECT_HOME": str(home), STARTUP_ENV: "1", "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
                          check=False)


def test_a_server_that_does_not_come_up_is_one_line_naming_the_setting(tmp_path: Path) -> None:
    golden = shared_data() / "eval-golden"
    params = tmp_path / "evaluate.json"
    params.write_text(json.dumps({"gt_root": str(golden / "tud" / "gt"), "preset": "mot15", "dataset": "TUD",
                                  "results": str(golden / "tud" / "trackers" / "motmetrics-test"),
                                  "tracker_name": "motmetrics-test", "catalog_root": str(tmp_path / "results")}))
    home = tmp_path / "home"
    done = _run(["-m", "flows", "evaluate", str(params)], home, tmp_path)  # 1 s: never enough for the server
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    note, error = done.stderr.splitlines()  # the wait announced, then one error line
    assert note == (f"[flows] no PREFECT_API_URL: starting a temporary Prefect server (database {home / 'prefect.db'}), "
                    f"waiting up to 1 s ({STARTUP_ENV})")
    assert error == (f"error: the temporary Prefect server did not answer within 1 s (see {home / 'server.log'}); "
                     f"set {STARTUP_ENV} to more seconds, or start a server (`python -m stack up`) and point "
                     f"PREFECT_API_URL at it")
    assert (home / "server.log").is_file()
    assert not (tmp_path / "results").exists()  # the flow never ran
    assert _servers_of(home) == []


def test_the_demo_says_the_same_in_one_line(tmp_path: Path) -> None:
    results = tmp_path / "results"
    home = results / ".prefect-demo"
    done = _run(["-m", "flows.demo", "--data", str(tmp_path / "data"), "--results", str(results)], home, tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines() == [
        f"[demo] error: the temporary Prefect server did not answer within 1 s (see {home / 'server.log'}); "
        f"set {STARTUP_ENV} to more seconds, or start a server (`python -m stack up`) and point PREFECT_API_URL at it"]
    assert (home / "server.log").is_file()  # kept: the message names it
    assert not (tmp_path / "data").exists()
    assert _servers_of(home) == []
