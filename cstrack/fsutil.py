"""Filesystem helpers: atomic writes (temp file + rename) and content hashing.

Nothing already written is lost when a process dies mid-write: readers see either the old file or
the complete new one.  What these helpers create gets the mode ``open()`` / ``mkdir()`` would give
under the process umask (0644 / 0755 under the usual 022), not the private 0600 / 0700 of the
``tempfile`` module, so another user, a worker under another uid or a reader on a shared volume
can read the outputs.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any


def current_umask() -> int:
    """The process umask, read without changing it where the OS reports it (Linux /proc); else
    set and restored at once."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """Mode of a new regular file under the umask (what ``open(path, "w")`` gives)."""
    return 0o666 & ~current_umask()


def dir_mode() -> int:
    """Mode of a new folder under the umask (what ``mkdir`` gives)."""
    return 0o777 & ~current_umask()


def make_temp_dir(parent: str | Path, prefix: str) -> Path:
    """A new hidden-by-prefix folder in ``parent`` (created) with the umask's folder mode, for
    building a result that is renamed into place when complete."""
    Path(parent).mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    os.chmod(tmp, dir_mode())
    return tmp


WRITE_FAILURES = ("file write failed", "No space left on device", "unexpected pos", "Input/output error",
                  "Read-only file system", "Disk quota exceeded")  # torch's / OpenCV's wrapped I/O errors


def io_failure(exc: BaseException, path: str | Path, staged: Iterable[str | Path] = ()) -> OSError | None:
    """``exc``, raised while writing ``path`` (through one of the ``staged`` temporary names), as
    an :class:`OSError` that names ``path`` (the user's file, never a hidden temporary name), or
    None when it is not a write failure.  Recognised: an ``OSError`` naming nothing or a staged
    name (ENOSPC from ``write``, EIO from ``fsync``, EROFS from ``mkstemp``), and torch's
    ``RuntimeError`` / OpenCV's ``cv2.error`` that wrap a failed write."""
    hidden = {str(p) for p in staged}
    if isinstance(exc, OSError):
        if exc.filename is None or str(exc.filename) in hidden or Path(str(exc.filename)).name.startswith("."):
            return OSError(exc.errno, exc.strerror or str(exc) or type(exc).__name__, str(path))
        return None
    cv2 = sys.modules.get("cv2")
    wrapped = isinstance(exc, RuntimeError) or (cv2 is not None and isinstance(exc, getattr(cv2, "error", ())))
    text = str(exc)
    if wrapped and any(w in text for w in WRITE_FAILURES):
        code = errno.ENOSPC if "No space left" in text else errno.EROFS if "Read-only" in text else errno.EIO
        first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
        return OSError(code, f"{os.strerror(code)} ({first})" if code != errno.EIO else f"write failed ({first})",
                       str(path))
    return None


def _staged_name(target: Path) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    return Path(name)


def _finish(tmp: Path) -> None:
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
        os.fchmod(fh.fileno(), file_mode())  # mkstemp made it 0600; the writer may have replaced it


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is fsynced, given the umask's file
    mode and renamed onto ``path``.

    On an exception the temporary file is removed and ``path`` is left untouched; a failed write
    (disk full, I/O error, read-only file system, also torch's and OpenCV's wrapped forms) is
    raised as an ``OSError`` naming ``path`` (:func:`io_failure`).
    """
    target = Path(path)
    tmp: Path | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = _staged_name(target)
        yield tmp
        _finish(tmp)
        os.replace(tmp, target)
    except BaseException as exc:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        mapped = io_failure(exc, target, [tmp] if tmp is not None else [])
        if mapped is not None:
            raise mapped from None
        raise


@contextlib.contextmanager
def locked_folder(folder: str | Path) -> Iterator[None]:
    """Hold an exclusive advisory lock (``flock``) on the existing ``folder`` while the block runs:
    what several processes (or threads) read, change and write back in that folder (timing.json,
    a catalog partition appended to) is updated by one at a time.  No lock file is created; where
    ``flock`` is not available (some network file systems) the block runs unlocked."""
    import fcntl

    fd = os.open(folder, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):  # ENOLCK / EINVAL on file systems without flock
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _journal(primary: Path) -> Path:
    return primary.parent / f".{primary.name}.publish.json"


@contextlib.contextmanager
def atomic_paths(*paths: str | Path) -> Iterator[list[Path]]:
    """Like :func:`atomic_path` for files that must agree (a checkpoint and its record): yields one
    temporary path per target (same folder); when the block ends they are published together by
    :func:`publish_together`, so that a reader finds the old set or the new set, never a mix."""
    targets = [Path(p) for p in paths]
    if len({t.resolve() for t in targets}) != len(targets):
        raise ValueError(f"atomic_paths: the same file twice in {[str(t) for t in targets]}")
    if len({t.parent.resolve() for t in targets}) != 1:
        raise ValueError("atomic_paths: the files of one set must share a folder")
    tmps: list[Path] = []
    try:
        targets[0].parent.mkdir(parents=True, exist_ok=True)
        for t in targets:
            tmps.append(_staged_name(t))
        yield list(tmps)
        for tmp in tmps:
            _finish(tmp)
        publish_together(dict(zip(targets, tmps, strict=True)))
    except BaseException as exc:
        for tmp in tmps:
            tmp.unlink(missing_ok=True)
        mapped = io_failure(exc, targets[0], tmps)
        if mapped is not None:
            raise mapped from None
        raise


def publish_together(staged: Mapping[Path, Path]) -> None:
    """Rename each staged file onto its target (all in one folder) so that the set changes as one.

    The current files are hard-linked aside first and a journal (``.<first>.publish.json``) names
    them; then the renames run and the journal and the copies aside are removed.  A failure during
    the renames puts the old files back before it propagates; a process killed during them leaves
    the journal, and :func:`recover_together` (which every reader of the set calls first) puts the
    old set back.  Either way a reader finds the old set or the new one."""
    targets = list(staged)
    token = next(iter(staged.values())).name.rsplit(".", 2)[-2]  # mkstemp's random part: unique here
    aside = {t: t.parent / f".{t.name}.{token}.old" for t in targets}
    journal = _journal(targets[0])
    made: list[Path] = []
    try:
        for t in targets:
            if t.exists():
                os.link(t, aside[t])
                made.append(aside[t])
        record = {"targets": [t.name for t in targets], "aside": {t.name: aside[t].name for t in targets if aside[t] in made},
                  "staged": {t.name: staged[t].name for t in targets}}
        atomic_write_bytes(journal, json.dumps(record).encode("utf-8"))
    except BaseException:
        for p in made:
            p.unlink(missing_ok=True)
        raise
    done: list[Path] = []
    try:
        for t in targets:
            os.replace(staged[t], t)
            done.append(t)
    except BaseException:
        for t in reversed(done):
            if aside[t] in made:
                os.replace(aside[t], t)
            else:
                t.unlink(missing_ok=True)
        for p in made:
            p.unlink(missing_ok=True)
        journal.unlink(missing_ok=True)
        raise
    journal.unlink()
    for p in made:
        p.unlink(missing_ok=True)


def recover_together(primary: str | Path) -> bool:
    """Undo a publish of :func:`publish_together` whose process was killed midway (its journal
    beside ``primary`` remains): the files set aside go back, new files that had no old version
    are removed, the staged files and the journal too.  True when something was undone."""
    journal = _journal(Path(primary))
    if not journal.is_file():
        return False
    folder = journal.parent
    try:
        record = json.loads(journal.read_text(encoding="utf-8"))
        targets, aside, staged = record["targets"], record["aside"], record["staged"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        journal.unlink()  # written atomically, so only a foreign file can be unreadable
        return False
    for name in targets:
        if name in aside and (folder / aside[name]).exists():
            os.replace(folder / aside[name], folder / name)
        elif name not in aside:
            (folder / name).unlink(missing_ok=True)
        (folder / staged[name]).unlink(missing_ok=True)
    journal.unlink()
    return True


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stable_hash(obj: Any) -> str:
    """sha256 of the canonical JSON of ``obj`` (sorted keys): a config hash stable across runs."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` that refuses a key given twice in one mapping (PyYAML keeps the last one
    silently): a ``yaml.YAMLError`` whose ``problem`` is ``duplicate key 'K' (first on line N)`` and
    whose ``problem_mark`` points at the second one, so callers' YAML error lines name it."""
    import yaml

    class _Loader(yaml.SafeLoader):
        pass

    def construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base constructor reports it
                break
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first on line {first + 1})", key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return loader.construct_mapping(node, deep=deep)

    _Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    return yaml.load(text, Loader=_Loader)  # a SafeLoader subclass


def read_mapping(path: str | Path, error: Callable[[str], Exception], yaml_ok: bool = False) -> dict[str, Any]:
    """The mapping a JSON file holds (``yaml_ok``: a JSON or YAML file).  Text that does not parse
    or holds something else raises ``error(reason)``, reason ``unreadable (<parser's first line>)``
    or ``expected a mapping, got a <type>``; the caller's ``error`` names the file and its role."""
    try:
        text = Path(path).read_text(encoding="utf-8")
        if yaml_ok:
            import yaml

            try:
                data = load_yaml(text)
            except yaml.YAMLError as exc:
                raise ValueError(str(exc)) from None
        else:
            data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise error(f"unreadable ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise error(f"expected a mapping, got a {type(data).__name__}")
    return data


PACKAGE_DIR = Path(__file__).resolve().parent  # the cstrack package's source folder
CODE_SUFFIXES = (".py", ".yaml")


def code_fingerprint(package: str | Path = PACKAGE_DIR, parts: Iterable[str] = ("",),
                     suffixes: tuple[str, ...] = CODE_SUFFIXES) -> str:
    """sha256 over (path relative to ``package``, content sha256) of the code files of ``parts``
    (files, or folders whose files with one of ``suffixes`` count; a missing file hashes as
    ``missing``): what decides whether a cached result or exported file is still valid."""
    root = Path(package)
    entries: list[tuple[str, str]] = []
    for part in parts:
        p = root / part
        files = sorted(f for f in p.rglob("*") if f.suffix in suffixes) if p.is_dir() else [p]
        entries.extend((str(f.relative_to(root)), sha256_file(f) if f.is_file() else "missing") for f in files)
    return stable_hash(entries)


def plain(obj: Any) -> Any:
    """JSON-able copy: mappings to dicts with string keys, tuples to lists, and NumPy / torch
    scalars (anything with ``item()`` and no elements beyond one) to Python numbers."""
    if isinstance(obj, Mapping):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [plain(v) for v in obj]
    if hasattr(obj, "item") and getattr(obj, "ndim", None) == 0:
        return obj.item()
    return obj
