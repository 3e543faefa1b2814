"""Helpers shared by the CLI modules: argument parsing and error reporting.

Error reporting (:func:`guarded`, :func:`expected_failure`): a failure the user can act on (a
project error, a file that cannot be read or written, text that is not UTF-8, a Parquet file
Arrow cannot read, an interruption) prints ONE line naming the file, line, parameter or source
and exits with status 2 (130 after Ctrl-C, 143 after SIGTERM: :mod:`cstrack.signals`); anything else is a bug in this program and keeps its
traceback.  ``--debug`` or ``CSTRACK_DEBUG=1`` shows the full traceback of every failure.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click
import typer

from cstrack.errors import ConfigError, CSTrackError
from cstrack.pathrules import Input, Output, check_paths, check_writable
from cstrack.signals import EXIT_TERMINATED, Aborted, exit_status, terminate_raises

P = ParamSpec("P")
R = TypeVar("R")


def parse_size(text: str, param: str = "--size") -> tuple[int, int]:
    """Parse ``WxH`` (e.g. ``1088x608``) into ``(width, height)``."""
    try:
        w_s, h_s = text.lower().split("x")
        w, h = int(w_s), int(h_s)
    except ValueError:
        raise ConfigError(f"{param}: expected WxH such as 1088x608, got {text!r}") from None
    if w <= 0 or h <= 0:
        raise ConfigError(f"{param}: width and height must be positive, got {text!r}")
    return w, h


DEBUG_ENV = "CSTRACK_DEBUG"
EXIT_BAD_INPUT = 2


def debug_enabled() -> bool:
    """True when ``CSTRACK_DEBUG`` is set to something other than ``""`` / ``0`` (``--debug`` sets it)."""
    return os.environ.get(DEBUG_ENV, "").strip() not in ("", "0")


def one_line(text: str) -> str:
    """``text`` on one line: line breaks become ``; `` (a message may quote several lines)."""
    return "; ".join(part.strip() for part in str(text).splitlines() if part.strip())


def _os_error_line(exc: OSError) -> str:
    what = exc.strerror or type(exc).__name__
    if exc.filename is not None and exc.filename2 is not None:
        return f"{exc.filename} -> {exc.filename2}: {what}"
    if exc.filename is not None:
        return f"{exc.filename}: {what}"
    return str(exc) or what


def expected_failure(exc: BaseException) -> str | None:
    """The one-line message of a failure the user can act on, or None for a bug.

    Expected: :class:`CSTrackError` (already names file / line / parameter), :class:`OSError`
    (permission denied, a file in the way, disk full: named by its ``filename``), text that is not
    UTF-8, an Arrow / Parquet read error.  A ``KeyError`` or ``TypeError`` is a bug: the code that
    reads a record must turn a missing key into a :class:`CSTrackError` naming the file.
    """
    if isinstance(exc, CSTrackError):
        return one_line(str(exc))
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text ({exc.reason} at byte {exc.start})"
    if isinstance(exc, OSError):
        return one_line(_os_error_line(exc))
    arrow = sys.modules.get("pyarrow")
    if arrow is not None and isinstance(exc, arrow.ArrowException):
        return one_line(f"unreadable Arrow / Parquet data ({exc})")
    return None


def report_failure(exc: BaseException) -> int | None:
    """Print the one-line message of an expected failure (or an interruption) on stderr and return
    the exit status; None (nothing printed) for a bug or in debug mode, where the caller re-raises."""
    if debug_enabled():
        return None
    status = exit_status(exc)
    if status is not None:
        what = "terminated (SIGTERM)" if status == EXIT_TERMINATED else "interrupted"
        typer.echo(f"{what} (outputs already written are kept; an unfinished file is not written)", err=True)
        return status
    message = expected_failure(exc)
    if message is None:
        return None
    typer.echo(f"error: {message}", err=True)
    return EXIT_BAD_INPUT


def guarded(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn an expected failure into a one-line message on stderr and exit status 2 (130 when
    interrupted); a bug propagates with its traceback.  See the module docstring."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            with terminate_raises():  # SIGTERM: as Ctrl-C (cstrack.signals)
                return fn(*args, **kwargs)
        except (Exception, KeyboardInterrupt, Aborted) as exc:
            if isinstance(exc, typer.Exit | click.exceptions.Exit | click.ClickException | click.Abort):
                raise  # click's own exits and usage errors
            code = report_failure(exc)
            if code is None:
                raise
            raise typer.Exit(code=code) from None

    return wrapper


def check_output_file(path: Path | None, option: str, inputs: Iterable[Input | None] = ()) -> None:
    """Refuse, before any work, an output file option that names a folder or lies below a file,
    or that is, or lies inside, one of ``inputs`` (:func:`cstrack.pathrules.check_paths`)."""
    if path is None:
        return
    check_paths([Output(path, option)], inputs)
    if not path.is_dir():
        check_writable(path.parent, option)  # before the work, not after it
    if path.is_dir():
        raise ConfigError(f"{option}: {path} is a folder, expected a file name")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{option}: {parent} is a file, so {path} cannot be created")
            break


def check_output_dir(path: Path, option: str, inputs: Iterable[Input | None] = (), whole: bool = False) -> None:
    """Refuse, before any work, an output folder option that names a file or lies below one, that
    cannot be written (:func:`cstrack.pathrules.check_writable`), or that is or lies inside one of
    ``inputs`` (``whole``: a folder built and replaced as a whole, which may not hold one either;
    :func:`cstrack.pathrules.check_paths`)."""
    check_paths([Output(path, option, folder=whole)], inputs)
    for p in (path, *path.parents):
        if p.exists():
            if not p.is_dir():
                what = f"{p} is a file, not a folder" if p == path else f"{p} is a file, so {path} cannot be created"
                raise ConfigError(f"{option}: {what}")
            break
    check_writable(path, option)


def file_inputs(weights: str | Path | None = None, preset: str | None = None,
                **paths: Path | str | None) -> list[Input]:
    """The inputs a command reads for :func:`cstrack.pathrules.check_paths`: a checkpoint given by
    path (``--weights``, with its ``.json`` record beside), a preset given as a file (``--preset``),
    and ``paths`` (role, given as the keyword ``gt_root`` for ``--gt-root``: path)."""
    found: list[Input] = []
    if weights is not None and str(weights) not in ("random", "coco"):
        w = Path(weights)
        found += [Input(w, "--weights"), Input(w.with_suffix(".json"), "--weights record")]
    if preset is not None and Path(preset).suffix.lower() in (".yaml", ".yml", ".json"):
        found.append(Input(Path(preset), "--preset"))
    for key, value in paths.items():
        if value is not None:
            found.append(Input(Path(value), "--" + key.replace("_", "-")))
    return found


def catalog_outputs(root: str | Path, option: str) -> list[Output]:
    """A local catalog root's table folders as outputs (the root itself may hold inputs such as
    ``results/track``); none for an fsspec URL."""
    text = str(root)
    if "://" in text and not text.startswith("file://"):
        return []
    from catalog.schemas import TABLES  # the CLI is the part of cstrack that may import catalog

    base = Path(text.removeprefix("file://"))
    return [Output(base / table, option, folder=True) for table in TABLES]


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def merge_timing(path: Path, runs: dict[str, dict[str, Any]]) -> Path:
    """Merge ``runs`` ({sequence: record}) into the JSON file at ``path`` atomically.

    Entries of other sequences already in the file are kept; an unreadable file is replaced
    (with a warning on stderr).  The read-modify-write holds an advisory lock on the folder, so
    runs writing into the same folder at once lose no entry (issue 24).
    """
    from cstrack.fsutil import atomic_write_json, locked_folder

    path.parent.mkdir(parents=True, exist_ok=True)
    with locked_folder(path.parent):
        return _merge_timing(path, runs, atomic_write_json)


def _merge_timing(path: Path, runs: dict[str, dict[str, Any]], write: Callable[[Path, Any], Path]) -> Path:
    data: dict[str, Any] = {}
    if path.is_file():
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(loaded, dict):
                data = loaded
            else:
                raise ValueError("not a JSON object")
        except (ValueError, UnicodeDecodeError) as exc:
            print(f"warning: replacing unreadable {path} ({exc})", file=sys.stderr)
    data.update(runs)
    return write(path, data)
