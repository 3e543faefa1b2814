"""``python -m stack up --secure``: the stack generates its Dask TLS certificate and the Prefect API's
auth string (owner-only), every service of it starts and is health-checked with them, a client
without them is refused, and env.sh holds no secret."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from stack.local import Stack
from stack.security import AUTH_FILE, CERT_FILE, KEY_FILE
from tests.flows.harness import BIN, REPO

pytestmark = pytest.mark.slow


def _stack(state: Path, *args: str, timeout_s: float = 420.0) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "DASK_", "CSTRACK_DASK"))}
    return subprocess.run([str(BIN / "python"), "-m", "stack", "--state", str(state), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout_s, check=False)


@pytest.fixture(scope="module")
def state() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="cstrack-secure-"))
    os.chmod(root, 0o755)  # PostgreSQL runs as an unprivileged user when we are root
    try:
        yield root / "state"
    finally:
        _stack(root / "state", "down", timeout_s=120)
        shutil.rmtree(root, ignore_errors=True)


_CLIENT = """
import sys
from distributed import Client
try:
    Client(sys.argv[1], timeout=8)
except Exception as exc:
    print("refused", type(exc).__name__)
else:
    print("CONNECTED")
"""


def _pg_connect(port: int, password: str | None) -> str:
    import asyncio

    import asyncpg

    async def go() -> str:
        try:
            conn = await asyncpg.connect(host="127.0.0.1", port=port, user="prefect", database="prefect",
                                         password=password, timeout=10)
        except Exception as exc:
            return f"refused {type(exc).__name__}"
        await conn.close()
        return "connected"

    env = os.environ.pop("PGPASSWORD", None)
    try:
        return asyncio.run(go())
    finally:
        if env is not None:
            os.environ["PGPASSWORD"] = env


def test_secure_stack_refuses_clients_without_credentials(state: Path) -> None:
    out = _stack(state, "up", "--secure", "--prefect-port", "0", "--dask-port", "0", "--dask-http-port", "0",
                 "--pg-port", "0", "--workers", "1", "--no-ui")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    stack = Stack(state)
    cfg = stack.config()
    assert cfg is not None and cfg.secure
    auth = (stack.secrets_dir / AUTH_FILE).read_text().strip()
    assert auth not in out.stdout + out.stderr
    env_sh = (state / "env.sh").read_text()
    assert auth not in env_sh and f"$(cat {stack.secrets_dir / AUTH_FILE})" in env_sh
    for log in (state / "logs").glob("*.log"):
        assert auth.split(":", 1)[1] not in log.read_text(errors="replace"), log
    for name in (AUTH_FILE, CERT_FILE, KEY_FILE):
        assert (stack.secrets_dir / name).stat().st_mode & 0o777 == 0o600
    # the Prefect API: 401 without the auth string, 200 with it
    api = stack.api_url(cfg)
    user, password = auth.split(":", 1)
    assert httpx.post(f"{api}/flows/filter", json={}, timeout=10).status_code == 401
    assert httpx.post(f"{api}/flows/filter", json={}, timeout=10, auth=(user, password)).status_code == 200
    # Dask: the workers joined over TLS; a client without the certificate is refused, over TLS or TCP
    address = stack.dask_address(cfg)
    assert address.startswith("tls://") and stack.dask_workers(cfg) == {"w1"}
    plain = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
    for addr in (address, address.replace("tls://", "tcp://")):
        res = subprocess.run([str(BIN / "python"), "-c", _CLIENT, addr], env=plain, capture_output=True, text=True,
                             timeout=120, check=False)
        assert res.stdout.startswith("refused"), (addr, res.stdout, res.stderr[-2000:])
    # ... and one with the stack's settings (env.sh) connects
    ok = subprocess.run(["bash", "-c", f"source {state / 'env.sh'} && {BIN / 'python'} -c '{_CLIENT}' $CSTRACK_DASK_ADDRESS"],
                        env=plain, capture_output=True, text=True, timeout=120, check=False)
    assert ok.stdout.startswith("CONNECTED"), ok.stdout + ok.stderr[-2000:]
    # PostgreSQL: SCRAM passwords only (no trust line), loopback only
    pg = stack.postgres(cfg)
    hba = (pg.data_dir / "pg_hba.conf").read_text()
    rules = [line.split() for line in hba.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert rules and all(r[-1] == "scram-sha-256" for r in rules), rules
    assert pg.password() not in out.stdout + out.stderr + env_sh
    assert _pg_connect(cfg.pg_port, None).startswith("refused InvalidPasswordError")
    assert _pg_connect(cfg.pg_port, "not-the-password").startswith("refused InvalidPasswordError")
    assert _pg_connect(cfg.pg_port, pg.password()) == "connected"
    assert _stack(state, "status").returncode == 0
    down = _stack(state, "down", timeout_s=120)
    assert down.returncode == 0 and "prefect-server" in down.stdout
