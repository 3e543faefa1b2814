"""The demo's embedded default: :func:`stack.temporary.temporary_prefect_server` on SQLite records a
flow run started from the command line, and is gone (with its port) after the ``with`` block."""

from __future__ import annotations

import json
import socket
import subprocess
import urllib.parse
from pathlib import Path

import httpx
import pytest

from cstrack.paths import shared_data
from stack.temporary import temporary_prefect_server
from tests.flows.harness import BIN, clean_env


@pytest.mark.slow
def test_a_flow_run_is_recorded_on_the_sqlite_backed_temporary_server(tmp_path: Path) -> None:
    golden = shared_data() / "eval-golden"
    params = tmp_path / "evaluate.json"
    params.write_text(json.dumps({"gt_root": str(golden / "tud" / "gt"), "preset": "mot15", "dataset": "TUD",
                                  "results": str(golden / "tud" / "trackers" / "motmetrics-test"),
                                  "tracker_name": "motmetrics-test", "catalog_root": str(tmp_path / "results")}))
    home = tmp_path / "home"
    with temporary_prefect_server(home) as settings:
        api = settings["PREFECT_API_URL"]
        assert (home / "prefect.db").is_file()  # SQLite under the home, no PostgreSQL
        out = subprocess.run([str(BIN / "python"), "-m", "flows", "evaluate", str(params)], cwd=tmp_path,
                             env=clean_env(**settings), capture_output=True, text=True, timeout=300, check=False)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        runs = httpx.post(f"{api}/flow_runs/filter", json={}, timeout=30).json()
        assert [(r["name"] != "", r["state"]["type"]) for r in runs] == [(True, "COMPLETED")]
    port = urllib.parse.urlparse(api).port
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0  # the server is stopped


def test_an_unknown_backend_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="backend"), temporary_prefect_server(tmp_path / "h", backend="mysql"):
        pass
    assert not (tmp_path / "h").exists()
