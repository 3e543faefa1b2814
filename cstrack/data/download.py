"""Verified, resumable downloads over HTTP(S) and from local files.

``download(urls, dest, sha256=..., size=...)`` fetches the first mirror that works into
``dest.part``, resuming a previous partial transfer with an HTTP ``Range`` request, retrying
transient failures with exponential backoff, and only then verifies the bytes:

- ``size`` (when known) and the size announced by the server must match;
- ``sha256`` (when known) must match;
- the optional ``verify(path)`` hook must pass (``prepare`` checks the archive's integrity there
  when the registry has no checksum).

Only a verified file is renamed (atomically) to ``dest``.  A failed verification raises
:class:`DownloadError` and keeps ``dest.part`` so that nothing already transferred is lost and
``dest`` is never a bad file.  Sources may be ``http(s)://`` URLs, ``file://`` URLs, plain paths or
``shared:<path>`` (see :func:`cstrack.data.registry.resolve_url`).
"""

from __future__ import annotations

import http.client
import os
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tqdm import tqdm

from cstrack.errors import DownloadError
from cstrack.fsutil import sha256_file

USER_AGENT = "cstrack-downloader/1"
_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


@dataclass(frozen=True)
class DownloadResult:
    """What :func:`download` produced: the verified file and how it was obtained."""

    path: Path
    sha256: str  # computed from the final file
    size: int
    source: str  # the URL or path the bytes came from ("" when the file was already complete)
    transferred: int  # bytes transferred by this call
    resumed_from: int  # size of the partial file the first transfer started from
    cached: bool  # True when ``dest`` already existed and verified


class _TransientError(Exception):
    """A failure worth retrying (connection dropped, timeout, 5xx)."""


class _RestartError(_TransientError):
    """The partial file cannot be resumed from this source: discard it and retry from byte 0."""


class _FatalError(Exception):
    """A failure of this source that retrying will not fix (404, missing file); try the next mirror."""


@dataclass
class _Stream:
    body: IO[bytes]
    start: int  # offset the body starts at
    total: int | None  # full size of the resource when known


def part_path(dest: str | Path) -> Path:
    """Where the partial transfer of ``dest`` lives."""
    d = Path(dest)
    return d.with_name(d.name + ".part")


def download(
    urls: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    dest: str | Path,
    *,
    sha256: str | None = None,
    size: int | None = None,
    verify: Callable[[Path], object] | None = None,
    retries: int = 4,
    backoff: float = 1.0,
    max_backoff: float = 60.0,
    timeout: float = 30.0,
    chunk_size: int = 1 << 20,
    progress: bool = True,
    sleep: Callable[[float], None] = time.sleep,
) -> DownloadResult:
    """Fetch ``urls`` (mirrors, tried in order) into ``dest``; see the module docstring.

    ``retries`` is the number of retries per mirror after a transient failure; the n-th retry waits
    ``min(backoff * 2**(n-1), max_backoff)`` seconds.  A failed attempt that transferred bytes
    counts as the first failure again, so a long transfer over a flaky link that keeps making
    progress is not abandoned (``retries=0`` still means: never retry).
    """
    from cstrack.data.registry import resolve_url

    sources = [str(urls)] if isinstance(urls, str | os.PathLike) else [str(u) for u in urls]
    if retries < 0 or backoff < 0:
        raise DownloadError("retries and backoff must be non-negative")
    expected_sha = sha256.lower() if sha256 else None
    dest = Path(dest)
    part = part_path(dest)

    if dest.exists():  # complete earlier (or placed by hand): verify, never overwrite
        digest = _verify(dest, expected_sha, size, verify, keep_hint=f"remove {dest} to download it again")
        return DownloadResult(dest, digest, dest.stat().st_size, "", 0, 0, True)
    if not sources:
        raise DownloadError(f"{dest}: not present and no source URL to fetch it from")
    dest.parent.mkdir(parents=True, exist_ok=True)

    resumed_from = part.stat().st_size if part.exists() else 0
    errors: list[str] = []
    transferred = 0
    for raw in sources:
        src = resolve_url(raw)
        attempt = 0
        while True:
            before = part.stat().st_size if part.exists() else 0
            try:
                transferred += _transfer(src, part, size, timeout, chunk_size, progress, dest.name)
                break
            except _FatalError as exc:
                errors.append(f"{raw}: {exc}")
                src = ""
                break
            except _TransientError as exc:
                got = (part.stat().st_size if part.exists() else 0) - before
                transferred += max(got, 0)
                attempt = 1 if got > 0 else attempt + 1
                if attempt > retries:
                    errors.append(f"{raw}: {exc} (gave up after {retries} retries)")
                    src = ""
                    break
                sleep(min(backoff * 2 ** (attempt - 1), max_backoff))
        if src:
            hint = f"partial file kept at {part}; delete it to start over"
            digest = _verify(part, expected_sha, size, verify, keep_hint=hint)
            with open(part, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(part, dest)
            return DownloadResult(dest, digest, dest.stat().st_size, src, transferred, resumed_from, False)
    kept = f"; partial file kept at {part}" if part.exists() else ""
    offline = f" (offline? fetch it elsewhere and place it at {dest}: it is verified and used as it is)"
    raise DownloadError(f"{dest.name}: every source failed: " + "; ".join(errors) + kept + offline)


def _verify(
    path: Path, sha: str | None, size: int | None, verify: Callable[[Path], object] | None, keep_hint: str
) -> str:
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        raise DownloadError(f"{path}: size {actual_size} bytes, expected {size} ({keep_hint})")
    digest = sha256_file(path)
    if sha is not None and digest != sha:
        raise DownloadError(f"{path}: sha256 mismatch: expected {sha}, got {digest} ({keep_hint})")
    if verify is not None:
        try:
            verify(path)
        except Exception as exc:  # the hook's own error type (e.g. ExtractionError) becomes a DownloadError
            raise DownloadError(f"{path}: verification failed: {exc} ({keep_hint})") from exc
    return digest


def _transfer(
    src: str, part: Path, size: int | None, timeout: float, chunk_size: int, progress: bool, label: str
) -> int:
    """Append the missing bytes of ``src`` to ``part``; return the number of bytes written."""
    offset = part.stat().st_size if part.exists() else 0
    if size is not None and offset == size:
        return 0  # already complete: verification decides
    if size is not None and offset > size:
        part.unlink()
        offset = 0
    try:
        stream = _open_http(src, offset, timeout) if _is_http(src) else _open_local(src, offset)
    except _RestartError:
        part.unlink(missing_ok=True)
        raise
    if stream is None:  # the server says the range starts at (or past) the end: nothing missing
        return 0
    with stream.body:
        if stream.start != offset:  # server ignored the Range header: start over
            part.unlink(missing_ok=True)
            offset = 0
        if size is not None and stream.total is not None and stream.total != size:
            raise _FatalError(f"server reports {stream.total} bytes, the registry expects {size}")
        written = 0
        bar = tqdm(
            total=stream.total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
            desc=label, disable=not progress, leave=False,
        )
        with bar, open(part, "ab") as out:
            try:
                while True:
                    block = stream.body.read(chunk_size)
                    if not block:
                        break
                    out.write(block)
                    written += len(block)
                    bar.update(len(block))
            except (http.client.HTTPException, OSError) as exc:  # incl. IncompleteRead, resets, timeouts
                raise _TransientError(f"transfer interrupted after {offset + written} bytes ({exc!r})") from None
        if stream.total is not None and offset + written < stream.total:
            raise _TransientError(f"connection closed after {offset + written} of {stream.total} bytes")
        return written


def _is_http(src: str) -> bool:
    return src.startswith(("http://", "https://"))


def _open_http(url: str, offset: int, timeout: float) -> _Stream | None:
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    req = urllib.request.Request(url, headers=headers)
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:
            total = _total_from_content_range(exc.headers.get("Content-Range"))
            if total == offset:
                return None
            raise _RestartError(f"HTTP 416 for a resume at byte {offset} (server size {total})") from None
        if exc.code in _RETRY_STATUS:
            raise _TransientError(f"HTTP {exc.code}") from None
        raise _FatalError(f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, socket.gaierror):
            raise _FatalError(f"cannot resolve host ({exc.reason})") from None
        raise _TransientError(f"cannot connect ({exc.reason})") from None
    except (http.client.HTTPException, OSError) as exc:
        raise _TransientError(f"cannot connect ({exc!r})") from None
    if resp.status == 206:
        m = _CONTENT_RANGE.match(resp.headers.get("Content-Range", ""))
        if not m:
            resp.close()
            raise _TransientError("206 response without a valid Content-Range")
        start = int(m.group(1))
        total = None if m.group(3) == "*" else int(m.group(3))
        return _Stream(resp, start, total)
    length = resp.headers.get("Content-Length")
    return _Stream(resp, 0, int(length) if length and length.isdigit() else None)


def _total_from_content_range(value: str | None) -> int | None:
    if not value:
        return None
    m = re.match(r"bytes\s+\*/(\d+)", value)
    return int(m.group(1)) if m else None


def _open_local(src: str, offset: int) -> _Stream:
    if src.startswith("file://"):
        parsed = urllib.parse.urlparse(src)
        path = Path(urllib.request.url2pathname(parsed.path))
    else:
        path = Path(src)
    if not path.is_file():
        raise _FatalError(f"no such file {path}")
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed by the caller through _Stream.body
    except OSError as exc:
        raise _FatalError(f"cannot read {path} ({exc.strerror})") from None
    total = os.fstat(fh.fileno()).st_size
    start = offset if offset <= total else 0  # a partial file longer than the source restarts
    fh.seek(start)
    return _Stream(fh, start, total)
