"""A loopback HTTP MJPEG server for the live-source tests (multipart/x-mixed-replace, as IP cameras serve).

Connection ``k`` (0-based) streams ``plan[k]`` JPEG frames, cycling through ``frames``, one every
``interval`` seconds, and then drops the connection (a stream that breaks).  Connections beyond
the plan get ``503`` (the camera does not come back).  Binds 127.0.0.1 on a free port; use it as a
context manager so that it is stopped.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np

BOUNDARY = b"cstrackframe"


def jpeg_bytes(images: Sequence[np.ndarray], quality: int = 95) -> list[bytes]:
    out = []
    for img in images:
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
        assert ok
        out.append(buf.tobytes())
    return out


class MjpegServer:
    def __init__(self, frames: Sequence[bytes], plan: Sequence[int], interval: float = 0.01) -> None:
        self.frames, self.plan, self.interval = list(frames), list(plan), interval
        self.connections = 0
        self.sent: list[int] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with server._lock:
                    k = server.connections
                    server.connections += 1
                    server.sent.append(0)
                if k >= len(server.plan):
                    self.send_error(503, "camera gone")
                    return
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY.decode()}")
                self.end_headers()
                start = sum(server.plan[:k])
                try:
                    for i in range(server.plan[k]):
                        if server._stop.is_set():
                            return
                        jpg = server.frames[(start + i) % len(server.frames)]
                        self.wfile.write(b"--" + BOUNDARY + b"\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                         + str(len(jpg)).encode() + b"\r\n\r\n" + jpg + b"\r\n")
                        self.wfile.flush()
                        server.sent[k] += 1
                        time.sleep(server.interval)
                except (BrokenPipeError, ConnectionResetError):
                    return
                self.close_connection = True

            def log_message(self, *args: object) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/video.mjpg"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> MjpegServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()


def closed_port_url() -> str:
    """An http URL on a loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/video.mjpg"
