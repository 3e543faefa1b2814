"""Frame sources for ``cstrack track``: what a SOURCE argument is, and how its frames are read.

:func:`classify` decides, without opening anything:

==========================  =====================================================================
``rtsp://…``, ``http://…``   a stream (:class:`~cstrack.sources.live.LiveSource`); other URL schemes
                             are refused (:data:`STREAM_SCHEMES`)
``0``, ``1``, …              a camera index (live)
a folder with seqinfo.ini    a MOTChallenge sequence (``"mot"``: tracked by :mod:`cstrack.run`)
another folder               its image files, sorted by name
a file                       a video file (:class:`~cstrack.sources.files.VideoFileSource`)
a pattern with * ? [         the image files it matches, sorted
==========================  =====================================================================
"""

from __future__ import annotations

import glob
import re
from pathlib import Path
from urllib.parse import urlsplit

from cstrack.errors import ConfigError, DatasetError
from cstrack.sources.base import Frame, FrameSource, SourceStats
from cstrack.sources.files import IMAGE_EXTENSIONS, ImageFilesSource, VideoFileSource, image_files
from cstrack.sources.live import DEFAULT_BACKOFF_S, DEFAULT_QUEUE, DEFAULT_RECONNECTS, LiveSource

__all__ = [
    "DEFAULT_QUEUE", "DEFAULT_RECONNECTS", "STREAM_SCHEMES", "Frame", "FrameSource", "ImageFilesSource",
    "LiveSource", "SourceStats", "VideoFileSource", "classify", "make_source", "source_name",
]

STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https")
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_GLOB_CHARS = re.compile(r"[*?\[]")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def classify(spec: str) -> str:
    """``"stream"``, ``"camera"``, ``"mot"``, ``"images"``, ``"video"`` or ``"glob"`` (see the
    module docstring); a URL of another scheme raises :class:`ConfigError`, a path that does not
    exist :class:`DatasetError`, both naming ``spec``."""
    if _URL.match(spec):
        scheme = spec.split("://", 1)[0].lower()
        if scheme not in STREAM_SCHEMES:
            raise ConfigError(f"{spec}: unsupported URL scheme {scheme!r} (supported: {', '.join(STREAM_SCHEMES)})")
        return "stream"
    if spec.isdigit():
        return "camera"
    p = Path(spec)
    if p.is_dir():
        return "mot" if (p / "seqinfo.ini").is_file() else "images"
    if p.is_file():
        if p.suffix.lower() in IMAGE_EXTENSIONS:  # most often a glob the shell expanded
            raise ConfigError(f"{spec}: an image file; give its folder, or quote a glob ('frames/*.jpg') so that "
                              "the shell does not expand it")
        return "video"
    if _GLOB_CHARS.search(spec):
        return "glob"
    raise DatasetError("source not found (not a file, folder, glob, camera index or stream URL)", spec)


def source_name(spec: str, kind: str | None = None) -> str:
    """The stem of a source's output files: a video's or folder's name, ``camera<N>``, a glob's
    folder name, or ``<host>-<port>-<path>`` of a URL (unsafe characters replaced by ``-``)."""
    kind = kind or classify(spec)
    if kind == "camera":
        return f"camera{int(spec)}"
    if kind == "stream":
        parts = urlsplit(spec)
        raw = "-".join(x for x in (parts.hostname or "stream", str(parts.port or ""), parts.path.strip("/")) if x)
        return _UNSAFE.sub("-", raw).strip("-") or "stream"
    p = Path(spec)
    if kind == "video":
        return p.stem
    if kind == "glob":
        return Path(spec.split("*")[0].split("?")[0].split("[")[0] or ".").resolve().name or "images"
    return p.resolve().name


def make_source(spec: str, kind: str | None = None, *, queue_size: int = DEFAULT_QUEUE,
                reconnects: int = DEFAULT_RECONNECTS, backoff_s: float | None = None) -> FrameSource:
    """The (not yet opened) source of ``spec``; not for ``"mot"`` folders (see :mod:`cstrack.run`)."""
    kind = kind or classify(spec)
    name = source_name(spec, kind)
    if kind == "video":
        return VideoFileSource(spec, name, path=Path(spec))
    if kind == "images":
        return ImageFilesSource(spec, name, files=image_files(Path(spec)))
    if kind == "glob":
        files = sorted(Path(f) for f in glob.glob(spec) if Path(f).suffix.lower() in IMAGE_EXTENSIONS)
        return ImageFilesSource(spec, name, files=files)
    if kind in ("camera", "stream"):
        target: int | str = int(spec) if kind == "camera" else spec
        return LiveSource(spec, name, target=target, queue_size=queue_size, reconnects=reconnects,
                          backoff_s=DEFAULT_BACKOFF_S if backoff_s is None else backoff_s)
    raise ConfigError(f"{spec}: a {kind!r} source is not read through cstrack.sources")
