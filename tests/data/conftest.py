"""Fixtures of the data tests: a loopback HTTP file server and archives built from shared/data."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest


@dataclass
class FileServer:
    """In-memory files served on 127.0.0.1 with Range support and scripted failures.

    - ``files[path] = bytes`` publishes a file at ``/path``.
    - ``drop_after[path] = [n, ...]``: the next requests of ``path`` send their headers (with the
      full Content-Length) and only ``n`` body bytes, then the connection is closed.
    - ``fail_status[path] = [503, ...]``: the next requests answer these statuses.
    - ``ignore_range``: answer every request with the whole file (200), as servers without Range do.
    - ``log``: ``(path, Range header or None, status)`` for every request.
    """

    files: dict[str, bytes] = field(default_factory=dict)
    drop_after: dict[str, list[int]] = field(default_factory=dict)
    fail_status: dict[str, list[int]] = field(default_factory=dict)
    ignore_range: bool = False
    log: list[tuple[str, str | None, int]] = field(default_factory=list)
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"


def _handler(state: FileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _status(self, code: int, headers: dict[str, str], body: bytes = b"") -> None:
            self.send_response(code)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            path = self.path.lstrip("/")
            rng = self.headers.get("Range")
            if state.fail_status.get(path):
                code = state.fail_status[path].pop(0)
                state.log.append((path, rng, code))
                self._status(code, {})
                return
            if path not in state.files:
                state.log.append((path, rng, 404))
                self._status(404, {})
                return
            data = state.files[path]
            start, end, code = 0, len(data) - 1, 200
            m = re.fullmatch(r"bytes=(\d+)-(\d*)", rng or "")
            if m and not state.ignore_range:
                start = int(m.group(1))
                if start >= len(data):
                    state.log.append((path, rng, 416))
                    self._status(416, {"Content-Range": f"bytes */{len(data)}"})
                    return
                end = min(int(m.group(2)), len(data) - 1) if m.group(2) else len(data) - 1
                code = 206
            body = data[start : end + 1]
            state.log.append((path, rng, code))
            self.send_response(code)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            if code == 206:
                self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
            self.end_headers()
            drops = state.drop_after.get(path)
            if drops:
                n = drops.pop(0)
                self.wfile.write(body[:n])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.wfile.write(body)

    return Handler


@pytest.fixture
def file_server() -> Iterator[FileServer]:
    state = FileServer()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="test-file-server", daemon=True
    )
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _zip_tree(root: Path, arc_prefix: str) -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(root.rglob("*")):
            if p.is_file():
                zf.write(p, f"{arc_prefix}/{p.relative_to(root).as_posix()}")
    return buf.getvalue()


def _tgz_tree(root: Path, arc_prefix: str) -> bytes:
    import io
    import tarfile

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for p in sorted(root.rglob("*")):
            if p.is_file():
                tf.add(p, f"{arc_prefix}/{p.relative_to(root).as_posix()}", recursive=False)
    return buf.getvalue()


@pytest.fixture(scope="session")
def head8_zip(data_dir: Path) -> bytes:
    """A zip of the real 8-frame PETS09-S2L1 sequence (images, gt, det, seqinfo)."""
    return _zip_tree(data_dir / "mot15" / "PETS09-S2L1-head8", "PETS09-S2L1-head8")


@pytest.fixture(scope="session")
def mot17_mini_tgz(data_dir: Path) -> bytes:
    """A tar.gz of shared/data/mot17-mini (two real MOT17 sequences)."""
    return _tgz_tree(data_dir / "mot17-mini", "mot17-mini")


@pytest.fixture(scope="session")
def pets40(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """PETS09-S2L1 frames 1-40 converted from the real video, with JDE labels: a dataset folder
    ``D`` holding ``images/train/PETS09-S2L1`` (read-only for the tests)."""
    from cstrack.data.convert import video_to_sequence, write_mot_labels

    root = tmp_path_factory.mktemp("pets40")
    video_to_sequence(
        data_dir / "raw" / "PETS09-S2L1.mp4", root / "images" / "train", "PETS09-S2L1",
        gt=data_dir / "mot15" / "PETS09-S2L1", frames=(1, 40),
    )
    write_mot_labels(root)
    return root
