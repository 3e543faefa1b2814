"""The embedded default of ``python -m flows`` and the demo: without ``PREFECT_API_URL`` one
temporary server (:func:`stack.temporary.temporary_prefect_server`) on SQLite under
``$PREFECT_HOME`` records the flow run, and is gone after the command."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

from cstrack.paths import shared_data
from stack.temporary import STARTUP_ENV, temporary_prefect_server
from tests.flows.harness import BIN, clean_env
from tests.stack.test_temporary_server import _servers_of


@pytest.mark.slow
def test_a_flow_run_without_a_server_is_recorded_on_a_temporary_sqlite_server(tmp_path: Path) -> None:
    golden = shared_data() / "eval-golden"
    params = tmp_path / "evaluate.json"
    params.write_text(json.dumps({"gt_root": str(golden / "tud" / "gt"), "preset": "mot15", "dataset": "TUD",
                                  "results": str(golden / "tud" / "trackers" / "motmetrics-test"),
                                  "tracker_name": "motmetrics-test", "catalog_root": str(tmp_path / "results")}))
    home = tmp_path / "home"
    out = subprocess.run([str(BIN / "python"), "-m", "flows", "evaluate", str(params)], cwd=tmp_path,
                         env=clean_env(PREFECT_HOME=str(home)), capture_output=True, text=True, timeout=400,
                         check=False)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert out.stderr.startswith(f"[flows] no PREFECT_API_URL: starting a temporary Prefect server (database "
                                 f"{home / 'prefect.db'}), waiting up to 180 s ({STARTUP_ENV})\n")
    assert "Traceback" not in out.stderr
    assert isinstance(json.loads(out.stdout), dict) and "TUD-Stadtmitte" in out.stdout  # the result, as JSON
    with sqlite3.connect(home / "prefect.db") as db:  # SQLite under the home, no PostgreSQL
        runs = db.execute("SELECT flow_run.state_type, flow.name FROM flow_run JOIN flow ON flow.id = flow_run.flow_id"
                          ).fetchall()
    assert runs == [("COMPLETED", "evaluate")]
    assert _servers_of(home) == []  # stopped with the command


def test_an_unknown_backend_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="backend"), temporary_prefect_server(tmp_path / "h", backend="mysql"):
        pass
    assert not (tmp_path / "h").exists()
