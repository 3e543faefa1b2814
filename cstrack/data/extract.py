"""Safe archive checking and extraction (zip and tar, optionally gzip/bzip2/xz compressed).

Every member is checked before anything is written: absolute paths, ``..`` components, symbolic and
hard links, device files, FIFOs and sockets are refused with an :class:`ExtractionError` naming the
archive and the member.  Extraction writes into a temporary folder beside the destination and
renames it into place at the end, so the destination either does not exist or is complete.
"""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path, PurePosixPath
from typing import IO, Literal

from cstrack.errors import ExtractionError
from cstrack.fsutil import make_temp_dir

ARCHIVE_SUFFIXES = {
    ".zip": "zip",
    ".tar": "tar",
    ".tar.gz": "tar.gz",
    ".tgz": "tar.gz",
    ".tar.bz2": "tar.bz2",
    ".tbz2": "tar.bz2",
    ".tar.xz": "tar.xz",
    ".txz": "tar.xz",
}
_TAR_MODES: dict[str, Literal["r:", "r:gz", "r:bz2", "r:xz"]] = {
    "tar": "r:", "tar.gz": "r:gz", "tar.bz2": "r:bz2", "tar.xz": "r:xz",
}
_COPY_CHUNK = 1 << 20


def detect_format(path: str | Path) -> str:
    """Archive format from the file name (``zip``, ``tar``, ``tar.gz``, ``tar.bz2``, ``tar.xz``)."""
    name = Path(path).name.lower()
    for suffix in sorted(ARCHIVE_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return ARCHIVE_SUFFIXES[suffix]
    raise ExtractionError(f"{path}: unknown archive type (expected one of {', '.join(ARCHIVE_SUFFIXES)})")


def archive_stem(path: str | Path) -> str:
    """File name without its archive suffix (``MOT17.zip`` -> ``MOT17``)."""
    name = Path(path).name
    for suffix in sorted(ARCHIVE_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def safe_member_path(archive: str | Path, name: str) -> PurePosixPath:
    """The relative path a member may be written to; raises for absolute paths and traversal."""
    if not name or "\x00" in name:
        raise ExtractionError(f"{archive}: member {name!r}: empty name or NUL byte")
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) >= 2 and norm[1] == ":" and norm[0].isalpha()):
        raise ExtractionError(f"{archive}: member {name!r}: absolute path refused")
    parts = [p for p in norm.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ExtractionError(f"{archive}: member {name!r}: '..' path traversal refused")
    if not parts:
        raise ExtractionError(f"{archive}: member {name!r}: empty path")
    return PurePosixPath(*parts)


# --------------------------------------------------------------------------------------------
# a uniform view over zip and tar members


class _Member:
    def __init__(self, name: str, is_dir: bool, opener: Callable[[], IO[bytes]]) -> None:
        self.name = name
        self.is_dir = is_dir
        self._opener = opener

    def open(self) -> IO[bytes]:
        return self._opener()


@contextmanager
def _members(path: Path, fmt: str) -> Iterator[list[_Member]]:
    """Open the archive and yield its members after checking every one of them for safety."""
    if fmt not in ("zip", *_TAR_MODES):
        raise ExtractionError(f"{path}: unsupported archive format {fmt!r}")
    with ExitStack() as stack:
        try:
            if fmt == "zip":
                zf = stack.enter_context(zipfile.ZipFile(path))
                members = [_zip_member(path, zf, info) for info in zf.infolist()]
            else:
                tf = stack.enter_context(tarfile.open(path, _TAR_MODES[fmt]))
                members = [_tar_member(path, tf, info) for info in tf.getmembers()]
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, OSError) as exc:
            raise ExtractionError(f"{path}: corrupt or truncated {fmt} archive ({exc})") from None
        yield members


def _zip_member(path: Path, zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> _Member:
    safe_member_path(path, info.filename)
    mode = (info.external_attr >> 16) & 0xFFFF
    if mode:
        if stat.S_ISLNK(mode):
            raise ExtractionError(f"{path}: member {info.filename!r}: symbolic link refused")
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
            raise ExtractionError(f"{path}: member {info.filename!r}: device/special file refused")
    return _Member(info.filename, info.is_dir(), lambda: zf.open(info))


def _tar_member(path: Path, tf: tarfile.TarFile, info: tarfile.TarInfo) -> _Member:
    safe_member_path(path, info.name)
    if info.issym():
        raise ExtractionError(f"{path}: member {info.name!r}: symbolic link refused")
    if info.islnk():
        raise ExtractionError(f"{path}: member {info.name!r}: hard link refused")
    if info.ischr() or info.isblk() or info.isfifo():
        raise ExtractionError(f"{path}: member {info.name!r}: device/special file refused")
    if not (info.isfile() or info.isdir()):
        raise ExtractionError(f"{path}: member {info.name!r}: unsupported member type refused")

    def opener() -> IO[bytes]:
        fh = tf.extractfile(info)
        if fh is None:  # pragma: no cover - isfile() members always have data
            raise ExtractionError(f"{path}: member {info.name!r}: no data")
        return fh

    return _Member(info.name, info.isdir(), opener)


# --------------------------------------------------------------------------------------------
# public API


def check_archive(path: str | Path, fmt: str | None = None) -> int:
    """Verify an archive end to end without writing anything; return its number of members.

    Every member is checked for safety and every byte is read (zip CRCs, gzip/bz2/xz checksums),
    so a truncated or corrupted archive raises :class:`ExtractionError`.
    """
    p = Path(path)
    fmt = fmt or detect_format(p)
    with _members(p, fmt) as members:
        for m in members:
            if m.is_dir:
                continue
            try:
                with m.open() as fh:
                    while fh.read(_COPY_CHUNK):
                        pass
            except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, OSError) as exc:
                raise ExtractionError(f"{p}: member {m.name!r}: corrupt data ({exc})") from None
        return len(members)


def safe_extract(path: str | Path, dest: str | Path, fmt: str | None = None, overwrite: bool = False) -> Path:
    """Extract ``path`` into the folder ``dest`` (created; must not exist unless ``overwrite``).

    Members are checked first (see the module docstring); files are written into a temporary folder
    beside ``dest`` which is renamed onto ``dest`` when everything succeeded.  Returns ``dest``.
    """
    p, target = Path(path), Path(dest)
    fmt = fmt or detect_format(p)
    if target.exists() and not overwrite:
        raise ExtractionError(f"{target}: destination already exists")
    tmp = make_temp_dir(target.parent, f".{target.name}.extract-")
    try:
        with _members(p, fmt) as members:
            root = tmp.resolve()
            for m in members:
                rel = safe_member_path(p, m.name)
                out = (tmp / rel).resolve()
                if root not in out.parents:  # belt and braces after safe_member_path
                    raise ExtractionError(f"{p}: member {m.name!r}: resolves outside the destination")
                try:
                    if m.is_dir:
                        out.mkdir(parents=True, exist_ok=True)
                        continue
                    out.parent.mkdir(parents=True, exist_ok=True)
                    with m.open() as src, open(out, "xb") as dst:
                        shutil.copyfileobj(src, dst, _COPY_CHUNK)
                except FileExistsError:
                    raise ExtractionError(f"{p}: member {m.name!r}: duplicate member") from None
                except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error) as exc:
                    raise ExtractionError(f"{p}: member {m.name!r}: corrupt data ({exc})") from None
                except OSError as exc:
                    raise ExtractionError(f"{p}: member {m.name!r}: cannot write ({exc.strerror})") from None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target
