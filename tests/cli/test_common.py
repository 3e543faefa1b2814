"""cstrack.cli.common: expected failures are one line and exit 2, bugs keep their traceback,
``--debug`` / ``CSTRACK_DEBUG=1`` show every traceback, Ctrl-C is one line and exit 130."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from typer.testing import CliRunner

from cstrack.cli import app
from cstrack.cli.common import expected_failure
from cstrack.errors import DatasetError

runner = CliRunner()
HEAD8_ARGS = ["--detections", "gt", "--no-progress"]


def test_expected_failures_become_one_line() -> None:
    assert expected_failure(DatasetError("bad\nvalue", "a.txt", 3)) == "a.txt:3: bad; value"
    assert expected_failure(PermissionError(13, "Permission denied", "/r/runs")) == "/r/runs: Permission denied"
    assert expected_failure(OSError(18, "Invalid cross-device link", "/a", None, "/b")) == "/a -> /b: Invalid cross-device link"
    assert expected_failure(FileExistsError(17, "File exists", "out")) == "out: File exists"
    try:
        b"ab\xff".decode("utf-8")
    except UnicodeDecodeError as exc:
        assert expected_failure(exc) == "not UTF-8 text (invalid start byte at byte 2)"
    assert (expected_failure(pa.ArrowInvalid("Parquet magic bytes not found\nin footer"))
            == "unreadable Arrow / Parquet data (Parquet magic bytes not found; in footer)")
    for bug in (KeyError("dataset"), TypeError("x"), ZeroDivisionError(), AttributeError("y")):
        assert expected_failure(bug) is None


def _boom(exc: BaseException):  # type: ignore[no-untyped-def]
    def raise_it(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise exc

    return raise_it


@pytest.mark.parametrize("bug", [KeyError("dataset"), ZeroDivisionError("division by zero")])
def test_a_bug_keeps_its_traceback(bug: BaseException, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CSTRACK_DEBUG", raising=False)
    monkeypatch.setattr("catalog.report.build_report", _boom(bug))
    res = runner.invoke(app, ["report", "--results", str(tmp_path), "--out", str(tmp_path / "o")])
    assert res.exit_code == 1 and res.exception is bug  # not turned into a clean line
    assert "error:" not in res.stderr


def test_debug_shows_the_traceback_of_an_expected_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    args = ["report", "--results", str(tmp_path / "nocat"), "--out", str(tmp_path / "o")]
    monkeypatch.delenv("CSTRACK_DEBUG", raising=False)
    res = runner.invoke(app, args)
    assert res.exit_code == 2 and res.stderr.startswith("error: ") and "catalog not found" in res.stderr
    monkeypatch.setenv("CSTRACK_DEBUG", "1")
    res = runner.invoke(app, args)
    assert isinstance(res.exception, DatasetError) and res.stderr == ""
    monkeypatch.delenv("CSTRACK_DEBUG")
    res = runner.invoke(app, ["--debug", *args])
    assert isinstance(res.exception, DatasetError)
    assert os.environ.get("CSTRACK_DEBUG") == "1"  # set by --debug (monkeypatch restores the environment)
    monkeypatch.delenv("CSTRACK_DEBUG")


def test_interrupted_track_says_so(head8: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 20 case 6: an interrupted track printed nothing."""
    monkeypatch.delenv("CSTRACK_DEBUG", raising=False)
    monkeypatch.setattr("cstrack.run.sequence.track_sequence", _boom(KeyboardInterrupt()))
    res = runner.invoke(app, ["track", str(head8), "--out", str(tmp_path / "out"), *HEAD8_ARGS])
    assert res.exit_code == 130
    assert [ln for ln in res.stderr.splitlines() if not ln.startswith("settings: ")] == [
        "interrupted (outputs already written are kept; an unfinished file is not written)"]
    assert not (tmp_path / "out" / f"{head8.name}.txt").exists()


def test_installed_entry_point_prints_one_line_or_the_traceback(tmp_path: Path) -> None:
    """Through ``python -m cstrack`` (main()): one line and status 2; with CSTRACK_DEBUG=1 the traceback."""
    args = [sys.executable, "-m", "cstrack", "eval", "--gt-root", str(tmp_path / "nogt"), "--results-root", str(tmp_path)]
    env = {k: v for k, v in os.environ.items() if k != "CSTRACK_DEBUG"}
    res = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 2 and res.stderr == f"error: {tmp_path / 'nogt'}: gt root is not a folder\n"
    res = subprocess.run(args, capture_output=True, text=True, env={**env, "CSTRACK_DEBUG": "1"}, timeout=120)
    assert res.returncode == 1 and "Traceback (most recent call last)" in res.stderr
    assert res.stderr.rstrip().splitlines()[-1].startswith("cstrack.errors.EvaluationError: ")
