"""Data, results and records on a local disk or in an object store, through one small interface.

A *location* is a local path or a URL: ``s3://bucket/prefix`` (AWS S3, MinIO, SeaweedFS ...), or
any other fsspec URL (``memory://`` in tests).  For ``s3://`` the endpoint and credentials come
from the standard AWS environment variables, so the same parameters work on every S3 service:

- ``AWS_ENDPOINT_URL`` (or ``AWS_ENDPOINT_URL_S3``): the service (unset: AWS itself)
- ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``: the keys (unset: botocore's usual chain,
  e.g. an instance role or ``~/.aws/credentials``)
- ``AWS_DEFAULT_REGION`` (or ``AWS_REGION``): the region (default ``us-east-1``)

What the pipeline needs, on either kind of location (:class:`Location`):

- **read**: ``read_bytes`` / ``read_text`` / ``read_json``, ``listdir``, ``exists``; frames and
  ground truth of a sequence are fetched whole to local files through a bounded on-disk LRU cache
  (:class:`ObjectCache`; downloads stream to disk, never through memory) so that the unchanged
  readers (``cstrack.data.mot``, ``read_image``) work on them;
- **write atomically**: ``write_bytes`` / ``write_json`` / ``put_file``: on a local disk a
  temporary file renamed into place (:mod:`cstrack.fsutil`); on S3 one PUT (a multipart upload for
  large files), which the service publishes whole when it completes, so a reader sees the old
  object or the complete new one.  Results made of several files are published with
  :func:`publish_files`: every file first, then a manifest naming them (with sizes and sha256)
  last; a reader that starts from the manifest never sees a partial set.

Failures of the store itself (a missing bucket, refused keys, an unreachable endpoint) raise
:class:`~cstrack.errors.StorageError` with one line naming the URL; a missing object raises
``FileNotFoundError`` naming it.  Credentials are never part of a message.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem

from cstrack.errors import ConfigError, StorageError, StoreUnreachableError
from cstrack.fsutil import atomic_path, atomic_write_bytes, make_temp_dir, sha256_file

DEFAULT_REGION = "us-east-1"
# Connection settings of the S3 client: a dead endpoint fails in seconds, not minutes, and a
# transient error (a store restarting, a dropped connection) is retried with backoff.
CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 60
MAX_ATTEMPTS = 5
MANIFEST = "MANIFEST.json"


def is_remote(location: str | Path) -> bool:
    """Whether ``location`` is a URL (``s3://...``, ``memory://...``) rather than a local path."""
    text = str(location)
    return "://" in text and not text.startswith("file://")


def s3_options(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Keyword arguments of ``s3fs.S3FileSystem`` from the standard AWS variables of ``env``
    (default: the process environment)."""
    env = os.environ if env is None else env
    opts: dict[str, Any] = {
        "use_listings_cache": False,  # another host writes the same bucket: never trust an old listing
        "config_kwargs": {"connect_timeout": CONNECT_TIMEOUT_S, "read_timeout": READ_TIMEOUT_S,
                          "retries": {"max_attempts": MAX_ATTEMPTS, "mode": "standard"}},
        "client_kwargs": {"region_name": env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION") or DEFAULT_REGION},
    }
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if endpoint:
        opts["endpoint_url"] = endpoint
    key, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
    if key and secret:
        opts["key"], opts["secret"] = key, secret
        if env.get("AWS_SESSION_TOKEN"):
            opts["token"] = env["AWS_SESSION_TOKEN"]
    return opts


def filesystem(location: str | Path) -> tuple[fsspec.AbstractFileSystem, str]:
    """``(filesystem, path inside it)`` of a location; local paths are made absolute."""
    text = str(location)
    if text.startswith("s3://") or text.startswith("s3a://"):
        try:
            import s3fs
        except ImportError:  # pragma: no cover - s3fs is a dependency
            raise StorageError(f"{text}: s3:// needs the s3fs package") from None
        bucket_path = text.split("://", 1)[1].strip("/")
        if not bucket_path:
            raise ConfigError(f"{text}: an s3:// location needs a bucket (s3://bucket/prefix)")
        return s3fs.S3FileSystem(**s3_options()), bucket_path
    fs, path = fsspec.core.url_to_fs(text)
    if isinstance(fs, LocalFileSystem):
        path = str(Path(path).expanduser().resolve())
    return fs, path.rstrip("/") or "/"


def _endpoint_text() -> str:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or "the AWS endpoint"


def _is_connection_error(exc: BaseException) -> bool:
    names = {c.__name__ for c in type(exc).__mro__}
    return bool(names & {"EndpointConnectionError", "ConnectTimeoutError", "ClientConnectorError",
                         "ServerDisconnectedError", "ConnectionClosedError", "ReadTimeoutError"})


def storage_error(exc: BaseException, url: str) -> BaseException:
    """The one-line error a failure of the store under ``url`` becomes (``exc`` itself when it is
    not a failure of the store: e.g. a bug, or a missing object, which stays ``FileNotFoundError``)."""
    msg = " ".join(str(exc).split())
    if isinstance(exc, StorageError):
        return exc
    if _is_connection_error(exc):
        return StoreUnreachableError(f"{url}: object store unreachable at {_endpoint_text()} ({type(exc).__name__})")
    if type(exc).__name__ in ("NoCredentialsError", "PartialCredentialsError"):
        return StorageError(f"{url}: no credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")
    if isinstance(exc, PermissionError):
        return StorageError(f"{url}: access denied by {_endpoint_text()} ({msg}); check AWS_ACCESS_KEY_ID / "
                            f"AWS_SECRET_ACCESS_KEY")
    if isinstance(exc, FileNotFoundError) and ("bucket does not exist" in msg.lower() or "NoSuchBucket" in msg):
        bucket = url.split("://", 1)[-1].split("/", 1)[0]
        return StorageError(f"{url}: no bucket {bucket!r} at {_endpoint_text()}")
    if isinstance(exc, FileNotFoundError):
        return FileNotFoundError(f"{url}: not found")
    return exc


@contextlib.contextmanager
def translated(url: str) -> Iterator[None]:
    """Turn failures of the store under ``url`` into :func:`storage_error`'s one-line errors."""
    try:
        yield
    except Exception as exc:
        new = storage_error(exc, url)
        if new is exc:
            raise
        raise new from None


@dataclass(frozen=True)
class Location:
    """A folder or file on a local disk or in an object store (see the module docstring).

    ``url`` is what the user gave (a local path is kept as given, made absolute); ``/``-joined
    children are built with :meth:`child` or ``/``.
    """

    url: str

    @staticmethod
    def of(location: str | Path | Location) -> Location:
        if isinstance(location, Location):
            return location
        text = str(location)
        if text.startswith("file://"):
            text = text[len("file://"):]
        if not is_remote(text):
            return Location(str(Path(text).expanduser().resolve()))
        return Location(text.rstrip("/"))

    @property
    def remote(self) -> bool:
        return is_remote(self.url)

    @property
    def name(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1]

    def child(self, *parts: str) -> Location:
        tail = "/".join(p.strip("/") for p in parts if p.strip("/"))
        return Location(f"{self.url.rstrip('/')}/{tail}" if tail else self.url)

    def __truediv__(self, part: str) -> Location:
        return self.child(part)

    def __str__(self) -> str:
        return self.url

    @property
    def parent(self) -> Location:
        return Location(self.url.rstrip("/").rsplit("/", 1)[0])

    def local_path(self) -> Path:
        """The path of a local location (``ConfigError`` for a URL: the caller must stage it)."""
        if self.remote:
            raise ConfigError(f"{self.url}: a local path is needed here")
        return Path(self.url)

    def _fs(self) -> tuple[fsspec.AbstractFileSystem, str]:
        return filesystem(self.url)

    # -- reading -------------------------------------------------------------------------------

    def exists(self) -> bool:
        fs, path = self._fs()
        with translated(self.url):
            return bool(fs.exists(path))

    def is_dir(self) -> bool:
        fs, path = self._fs()
        with translated(self.url):
            return bool(fs.isdir(path))

    def is_file(self) -> bool:
        fs, path = self._fs()
        with translated(self.url):
            return bool(fs.isfile(path))

    def listdir(self, detail: bool = False) -> list[Any]:
        """Names of the entries directly under this folder, sorted (``[]`` when it does not exist);
        with ``detail`` the fsspec info dicts (``name`` then the entry's name, ``type``, ``size``)."""
        fs, path = self._fs()
        with translated(self.url):
            try:
                entries = fs.ls(path, detail=True)
            except FileNotFoundError as exc:
                if "bucket" in str(exc).lower():
                    raise
                return []
        out = []
        for e in entries:
            name = str(e["name"]).rstrip("/").rsplit("/", 1)[-1]
            if not name or str(e["name"]).rstrip("/") == path.rstrip("/"):
                continue
            out.append({**e, "name": name} if detail else name)
        return sorted(out, key=lambda e: e["name"] if detail else e)

    def walk_files(self) -> dict[str, dict[str, Any]]:
        """Every file under this folder: relative path -> info (``size``, and the store's ``ETag``
        or ``mtime``); one listing request per 1000 objects on S3."""
        fs, path = self._fs()
        with translated(self.url):
            try:
                found = fs.find(path, detail=True)
            except FileNotFoundError:
                return {}
        base = path.rstrip("/") + "/"
        return {str(name)[len(base):]: info for name, info in found.items()
                if str(name).startswith(base) and info.get("type") != "directory"}

    def read_bytes(self) -> bytes:
        fs, path = self._fs()
        with translated(self.url):
            return bytes(fs.cat_file(path))

    def read_text(self) -> str:
        return self.read_bytes().decode("utf-8")

    def read_json(self) -> Any:
        return json.loads(self.read_text())

    def get_file(self, dest: str | Path) -> Path:
        """Download to ``dest`` (streamed to a temporary file beside it, then renamed)."""
        fs, path = self._fs()
        with translated(self.url), atomic_path(dest) as tmp:
            if isinstance(fs, LocalFileSystem):
                shutil.copyfile(path, tmp)
            else:
                fs.get_file(path, str(tmp))
        return Path(dest)

    # -- writing (atomic) ----------------------------------------------------------------------

    def write_bytes(self, data: bytes) -> Location:
        """Write the object whole: a reader sees the old content or all of ``data``."""
        fs, path = self._fs()
        with translated(self.url):
            if isinstance(fs, LocalFileSystem):
                atomic_write_bytes(path, data)
            else:
                fs.pipe_file(path, data)  # one PUT
        return self

    def write_text(self, text: str) -> Location:
        return self.write_bytes(text.encode("utf-8"))

    def write_json(self, obj: Any) -> Location:
        """The project's JSON record format (sorted keys, indent 2; as ``fsutil.atomic_write_json``)."""
        return self.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")

    def put_file(self, src: str | Path) -> Location:
        """Upload the local file ``src`` here, atomically (see :meth:`write_bytes`)."""
        fs, path = self._fs()
        with translated(self.url):
            if isinstance(fs, LocalFileSystem):
                with atomic_path(path) as tmp:
                    shutil.copyfile(src, tmp)
            else:
                fs.put_file(str(src), path)  # one PUT, or a multipart upload completed at the end
        return self

    def remove(self, recursive: bool = False) -> None:
        fs, path = self._fs()
        with translated(self.url), contextlib.suppress(FileNotFoundError):
            fs.rm(path, recursive=recursive)

    def make_bucket(self) -> None:
        """Create the bucket of an ``s3://`` location (or the folder of a local one) if it is missing."""
        fs, path = self._fs()
        with translated(self.url):
            if self.remote:
                bucket = path.split("/", 1)[0]
                if not fs.exists(bucket):
                    fs.mkdir(bucket)
            else:
                Path(path).mkdir(parents=True, exist_ok=True)


def location(where: str | Path | Location) -> Location:
    """:meth:`Location.of`: a path or URL as a :class:`Location`."""
    return Location.of(where)


# ------------------------------------------------------------------------------------------------
# several files as one result


def publish_files(files: Mapping[str, str | Path], dest: str | Path | Location,
                  manifest: str = MANIFEST, extra: Mapping[str, Any] | None = None) -> Location:
    """Upload ``files`` (name relative to ``dest`` -> local file) and then the manifest
    ``dest/<manifest>`` naming each with its size and sha256 (plus ``extra``); returns the
    manifest's location.  The manifest is written last, so a reader that trusts it (see
    :func:`read_manifest`) never sees a partial set."""
    root = Location.of(dest)
    entries = {}
    for rel, src in sorted(files.items()):
        root.child(rel).put_file(src)
        entries[rel] = {"size": Path(src).stat().st_size, "sha256": sha256_file(src)}
    record = {"files": entries, **dict(extra or {})}
    return root.child(manifest).write_json(record)


def read_manifest(dest: str | Path | Location, manifest: str = MANIFEST) -> dict[str, Any] | None:
    """The manifest record published by :func:`publish_files` (``None`` when there is none yet)."""
    loc = Location.of(dest).child(manifest)
    try:
        data = loc.read_json()
    except FileNotFoundError:
        return None
    except (ValueError, UnicodeDecodeError) as exc:
        raise StorageError(f"{loc}: unreadable manifest ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
        raise StorageError(f"{loc}: unreadable manifest (no 'files' mapping)")
    return data


def upload_tree(src: str | Path, dest: str | Path | Location, manifest: str | None = MANIFEST) -> int:
    """Upload every file under the local folder ``src`` to ``dest`` (same relative paths), then
    (unless ``manifest`` is None) a manifest of them last; returns the number of files."""
    root = Path(src)
    files = {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()}
    if manifest is None:
        target = Location.of(dest)
        for rel, p in files.items():
            target.child(rel).put_file(p)
    else:
        publish_files(files, dest, manifest)
    return len(files)


@dataclass(frozen=True)
class SyncResult:
    uploaded: int  # files sent
    unchanged: int  # files the published manifest already lists with the same size and sha256


def sync_tree(src: str | Path, dest: str | Path | Location, manifest: str = MANIFEST) -> SyncResult:
    """Make ``dest`` hold the files of the local folder ``src``: the files that the manifest
    published there does not list with the same size and sha256 are uploaded, then a new manifest
    last (a re-run after an interrupted upload sends only what is missing; objects under ``dest``
    that ``src`` no longer has are left, unlisted)."""
    root = Path(src)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder")
    target = Location.of(dest)
    old = (read_manifest(target, manifest) or {}).get("files", {})
    entries: dict[str, dict[str, Any]] = {}
    sent = 0
    for p in sorted(root.rglob("*")):
        if not p.is_file():
            continue
        rel = p.relative_to(root).as_posix()
        entries[rel] = {"size": p.stat().st_size, "sha256": sha256_file(p)}
        if old.get(rel) != entries[rel]:
            target.child(rel).put_file(p)
            sent += 1
    if sent or set(old) != set(entries):
        target.child(manifest).write_json({"files": entries})
    return SyncResult(sent, len(entries) - sent)


# ------------------------------------------------------------------------------------------------
# the bounded local cache


def default_cache_dir() -> Path:
    """``$CSTRACK_CACHE/objects`` (default ``~/.cache/cstrack/objects``)."""
    env = os.environ.get("CSTRACK_CACHE")
    return (Path(env) if env else Path.home() / ".cache" / "cstrack") / "objects"


# Default bound of the object cache (``CSTRACK_OBJECT_CACHE_MB``): a few MOT17 sequences (MOT17-04
# is ~0.4 GB of JPEGs), a small part of a worker's disk.
DEFAULT_CACHE_MB = 4096


def default_cache_bytes() -> int:
    text = os.environ.get("CSTRACK_OBJECT_CACHE_MB")
    if not text:
        return DEFAULT_CACHE_MB << 20
    try:
        mb = int(text)
    except ValueError:
        raise ConfigError(f"CSTRACK_OBJECT_CACHE_MB: {text!r} is not a whole number of MiB") from None
    if mb <= 0:
        raise ConfigError(f"CSTRACK_OBJECT_CACHE_MB: must be > 0, got {mb}")
    return mb << 20


def _version(info: Mapping[str, Any]) -> str:
    """What identifies an object's content without reading it: its ETag (S3), else size + mtime."""
    for key in ("ETag", "etag", "VersionId"):
        if info.get(key):
            return str(info[key]).strip('"')
    return f"{info.get('size')}:{info.get('mtime', info.get('LastModified', ''))}"


class ObjectCache:
    """A bounded on-disk LRU of folders and files copied from locations.

    An entry is a whole folder (a sequence: ``seqinfo.ini``, ``gt/``, ``img1/``) or one file, keyed
    by its URL and the listing of its objects (name, size, ETag): a changed object makes a new
    entry.  Entries are filled in a temporary folder and renamed into place (a crash leaves no
    half entry), used under a shared lock, and evicted least recently used first, never while
    another process holds one, until the total is at most ``max_bytes``.  An entry larger than the
    bound on its own is still made (the caller needs it) and is the first evicted afterwards.
    Local locations are used in place, never copied.
    """

    def __init__(self, root: str | Path | None = None, max_bytes: int | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()
        self.max_bytes = default_cache_bytes() if max_bytes is None else int(max_bytes)
        if self.max_bytes <= 0:
            raise ConfigError(f"max_bytes: must be > 0, got {self.max_bytes}")

    # layout: root/entries/<key>/ (the copy), root/entries/<key>.json (url, bytes), root/locks/<key>.lock

    def _entry(self, key: str) -> Path:
        return self.root / "entries" / key

    def _lock_path(self, key: str) -> Path:
        return self.root / "locks" / f"{key}.lock"

    @contextlib.contextmanager
    def _global_lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def folder(self, where: str | Path | Location) -> Iterator[Path]:
        """A local folder of the same name holding the files under ``where`` (the folder itself
        when local), valid inside the ``with`` block."""
        loc = Location.of(where)
        if not loc.remote:
            yield loc.local_path()
            return
        listing = loc.walk_files()
        if not listing:
            raise FileNotFoundError(f"{loc}: no such folder (no object under it)")
        key = hashlib.sha256(json.dumps([loc.url, sorted((k, _version(v), v.get("size")) for k, v in listing.items())],
                                        default=str).encode()).hexdigest()[:32]
        with self._use(key, loc, lambda tmp: self._fill_folder(loc, listing, tmp / loc.name)) as entry:
            yield entry / loc.name  # the folder keeps its name (a sequence's results are named after it)

    @contextlib.contextmanager
    def file(self, where: str | Path | Location) -> Iterator[Path]:
        """A local copy of the file ``where`` (the file itself when local), valid inside the block."""
        loc = Location.of(where)
        if not loc.remote:
            yield loc.local_path()
            return
        fs, path = filesystem(loc.url)
        with translated(loc.url):
            info = fs.info(path)
        key = hashlib.sha256(json.dumps([loc.url, _version(info), info.get("size")], default=str).encode()
                             ).hexdigest()[:32]
        with self._use(key, loc, lambda tmp: loc.get_file(tmp / loc.name)) as entry:
            yield entry / loc.name

    def _fill_folder(self, loc: Location, listing: Mapping[str, Any], tmp: Path) -> None:
        for rel in sorted(listing):
            loc.child(rel).get_file(tmp / rel)

    @contextlib.contextmanager
    def _use(self, key: str, loc: Location, fill: Any) -> Iterator[Path]:
        entry = self._entry(key)
        lock = self._lock_path(key)
        lock.parent.mkdir(parents=True, exist_ok=True)
        with open(lock, "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_SH)  # held while the caller uses the entry: never evicted under it
            try:
                if not entry.is_dir():
                    tmp = make_temp_dir(entry.parent, f".{key}.")
                    try:
                        fill(tmp)
                        size = sum(p.stat().st_size for p in tmp.rglob("*") if p.is_file())
                        with self._global_lock():
                            if entry.is_dir():  # another process filled it meanwhile
                                shutil.rmtree(tmp, ignore_errors=True)
                            else:
                                os.rename(tmp, entry)
                                atomic_write_bytes(entry.with_suffix(".json"),
                                                   json.dumps({"url": loc.url, "bytes": size}).encode())
                    except BaseException:
                        shutil.rmtree(tmp, ignore_errors=True)
                        raise
                now = time.time()
                with contextlib.suppress(OSError):
                    os.utime(entry, (now, now))  # the LRU order is the entries' mtimes
                self.evict(keep=key)
                yield entry
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def entries(self) -> list[tuple[str, int, float]]:
        """``(key, bytes, last use)`` of every complete entry, least recently used first."""
        base = self.root / "entries"
        out = []
        for meta in base.glob("*.json") if base.is_dir() else []:
            entry = meta.with_suffix("")
            try:
                size = int(json.loads(meta.read_text())["bytes"])
                used = entry.stat().st_mtime
            except (OSError, ValueError, KeyError):
                continue
            out.append((entry.name, size, used))
        return sorted(out, key=lambda e: e[2])

    def total_bytes(self) -> int:
        return sum(size for _, size, _ in self.entries())

    def evict(self, keep: str | None = None) -> list[str]:
        """Remove least recently used entries (not ``keep``, not one in use) until the total is at
        most ``max_bytes``; returns the removed keys."""
        removed: list[str] = []
        with self._global_lock():
            entries = self.entries()
            total = sum(size for _, size, _ in entries)
            for key, size, _ in entries:
                if total <= self.max_bytes:
                    break
                if key == keep:
                    continue
                lock = self._lock_path(key)
                with open(lock, "a+") as fh:
                    try:
                        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        continue  # another process is using it
                    try:
                        entry = self._entry(key)
                        entry.with_suffix(".json").unlink(missing_ok=True)
                        shutil.rmtree(entry, ignore_errors=True)
                    finally:
                        fcntl.flock(fh, fcntl.LOCK_UN)
                total -= size
                removed.append(key)
        return removed
