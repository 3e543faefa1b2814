"""The one rule for output paths (issue 24), enforced here for every command and flow.

An output (a file or a folder, including the siblings derived from it such as a checkpoint's
``.json`` record or ``--save-video``'s per-source files) may never

- be an input of the same command (same path after resolving symbolic links, or the same file
  through a hard link),
- hold an input (an output folder built as a whole with an input below it), or
- lie inside an input folder (a sequence folder, an image folder, a gt or results root),

and two outputs of one command may never be the same file.  :func:`check_paths` refuses all of
these before any work starts, with one line naming both paths.  :func:`check_writable` refuses an
output folder that cannot be written, naming the user's path (not a temporary name), also before
any work starts.

A library leaf: it imports only :mod:`cstrack.errors`.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cstrack.errors import ConfigError


@dataclass(frozen=True)
class Output:
    """One path a command writes: ``option`` is what the user typed it as (``--json``,
    ``--out``, ``--save-video``, ``record of --out``).  ``folder``: a folder built and replaced as a
    whole (``convert-video``'s ``OUT/NAME``), which may not hold an input either; a folder that only
    receives named files (``track --out``) is given as itself (``folder`` False: it may not be or lie
    inside an input) plus each file written into it."""

    path: Path
    option: str
    folder: bool = False


@dataclass(frozen=True)
class Input:
    """One path a command reads: ``role`` names it for the user (``SOURCE``, ``--gt-root``)."""

    path: Path
    role: str


def _resolved(p: Path) -> Path:
    with contextlib.suppress(OSError, RuntimeError):  # a symlink loop resolves as written
        return Path(os.path.abspath(p)).resolve()
    return Path(os.path.abspath(p))


def _same_file(a: Path, b: Path) -> bool:
    """The same path once resolved, or the same existing file (a hard link)."""
    if _resolved(a) == _resolved(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _inside(child: Path, parent: Path) -> bool:
    c, p = _resolved(child), _resolved(parent)
    return c != p and p in c.parents


def check_paths(outputs: Iterable[Output | None], inputs: Iterable[Input | None]) -> None:
    """Raise :class:`ConfigError` (one line naming both paths) when an output is, holds or lies
    inside an input, or when two outputs are the same file.  ``None`` entries are skipped (an
    option not given)."""
    outs = [o for o in outputs if o is not None]
    ins = [i for i in inputs if i is not None]
    for o in outs:
        for i in ins:
            if _same_file(o.path, i.path):
                raise ConfigError(f"{o.option}: {o.path} is the input {i.role} {i.path}; refusing to overwrite it")
            if _inside(o.path, i.path) and (i.path.is_dir() or not i.path.exists()):
                raise ConfigError(f"{o.option}: {o.path} lies inside the input {i.role} {i.path}; "
                                  "write outputs elsewhere")
            if o.folder and _inside(i.path, o.path):
                raise ConfigError(f"{o.option}: the output folder {o.path} holds the input {i.role} {i.path}; "
                                  "choose another folder")
    for k, a in enumerate(outs):
        for b in outs[k + 1:]:
            if _same_file(a.path, b.path):
                what = a.option if a.option == b.option else f"{a.option} and {b.option}"
                raise ConfigError(f"{what}: {a.path} and {b.path} are the same file; one would overwrite the other")


def check_writable(folder: Path, option: str) -> None:
    """Refuse, before any work, an output folder that cannot be written: the nearest existing
    folder of ``folder`` must accept a new file (a probe created and removed at once).  The error
    names ``folder`` as the user gave it and the OS's reason."""
    existing = Path(folder)
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        return  # the caller's folder checks name the file in the way
    try:
        fd, probe = tempfile.mkstemp(prefix=".cstrack-probe-", dir=existing)
    except OSError as exc:
        raise ConfigError(f"{option}: cannot write to {folder} ({exc.strerror or type(exc).__name__})") from None
    os.close(fd)
    os.unlink(probe)
