"""cstrack.storage on a local folder and on a real S3 store (SeaweedFS, stack/objectstore.py)."""

from __future__ import annotations

import os
import shutil
import stat
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from cstrack.errors import StorageError
from cstrack.storage import Location, ObjectCache, publish_files, read_manifest, s3_options, upload_tree
from tasks.cachekeys import sequence_fingerprint


@pytest.fixture(params=["local", "s3"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> Location:
    if request.param == "local":
        return Location.of(tmp_path / "root")
    return Location.of(request.getfixturevalue("s3_bucket") + "/prefix")


def test_store_has_keys_of_its_own(object_store) -> None:
    """The identities file is owner-only; a request without keys is refused; only 127.0.0.1 listens."""
    assert stat.S_IMODE(os.stat(object_store.config_path).st_mode) == 0o600
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(object_store.endpoint + "/", timeout=5)
    assert err.value.code == 403
    assert object_store.endpoint.startswith("http://127.0.0.1:")


def test_s3_options_from_standard_variables() -> None:
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK",
           "AWS_DEFAULT_REGION": "eu-west-3"}
    opts = s3_options(env)
    assert (opts["endpoint_url"], opts["key"], opts["secret"]) == ("http://127.0.0.1:9", "AK", "SK")
    assert opts["client_kwargs"]["region_name"] == "eu-west-3"
    assert s3_options({})["client_kwargs"]["region_name"] == "us-east-1"
    assert "endpoint_url" not in s3_options({}) and "key" not in s3_options({})


def test_round_trip(root: Location, tmp_path: Path) -> None:
    """Bytes, text, JSON records, listing and file transfer behave alike on both kinds of location."""
    assert not root.child("a.json").exists()
    assert root.listdir() == []
    root.child("a.json").write_json({"frames": 8, "fps": 12.5})
    root.child("sub", "b.txt").write_text("1,2,3\n")
    src = tmp_path / "big.bin"
    src.write_bytes(bytes(range(256)) * 4096)  # 1 MiB
    root.child("sub", "big.bin").put_file(src)
    assert root.child("a.json").read_json() == {"frames": 8, "fps": 12.5}
    assert root.child("a.json").read_text() == '{\n  "fps": 12.5,\n  "frames": 8\n}\n'
    assert root.listdir() == ["a.json", "sub"]
    assert root.child("sub").listdir() == ["b.txt", "big.bin"]
    assert root.child("sub").is_dir() and root.child("sub", "b.txt").is_file()
    assert sorted(root.walk_files()) == ["a.json", "sub/b.txt", "sub/big.bin"]
    back = root.child("sub", "big.bin").get_file(tmp_path / "back" / "big.bin")
    assert back.read_bytes() == src.read_bytes()
    assert list((tmp_path / "back").iterdir()) == [back]  # no temporary left behind
    with pytest.raises(FileNotFoundError, match=r"missing\.txt: not found"):
        root.child("missing.txt").read_bytes()


def test_manifest_published_last(root: Location, tmp_path: Path) -> None:
    """publish_files writes the manifest only after every file; a failing file publishes none."""
    a, b = tmp_path / "A.txt", tmp_path / "A.timing.json"
    a.write_text("1,1,10,20,30,40,1,-1,-1,-1\n")
    b.write_text('{"frames": 1}\n')
    assert read_manifest(root) is None
    with pytest.raises(FileNotFoundError):
        publish_files({"A.txt": a, "Z.txt": tmp_path / "absent.txt"}, root)
    assert read_manifest(root) is None  # A.txt went up, but no reader trusts it: no manifest
    publish_files({"A.txt": a, "A.timing.json": b}, root, extra={"run": "r1"})
    man = read_manifest(root)
    assert man is not None and man["run"] == "r1"
    assert man["files"]["A.txt"]["size"] == a.stat().st_size
    assert root.child("A.txt").read_bytes() == a.read_bytes()


def test_overwrite_is_whole(s3_bucket: str, tmp_path: Path) -> None:
    """A reader of an object being replaced gets the old or the new bytes, never a mix."""
    import threading

    loc = Location.of(s3_bucket + "/obj.bin")
    old, new = b"o" * (6 << 20), b"n" * (6 << 20)  # multipart-sized
    loc.write_bytes(old)
    src = tmp_path / "new.bin"
    src.write_bytes(new)
    seen: list[bytes] = []
    writer = threading.Thread(target=loc.put_file, args=(src,))
    writer.start()
    while writer.is_alive():
        seen.append(loc.read_bytes())
    writer.join()
    seen.append(loc.read_bytes())
    assert all(s in (old, new) for s in seen)
    assert seen[-1] == new


def test_store_failures_are_one_line(s3_bucket: str, object_store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Missing bucket, wrong keys and a dead endpoint: one line naming the URL, never the secret."""
    with pytest.raises(StorageError, match=r"^s3://no-such-bucket-h7/x: no bucket 'no-such-bucket-h7'"):
        Location.of("s3://no-such-bucket-h7/x").read_bytes()
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-123")
    with pytest.raises(StorageError, match=r"access denied") as err:
        Location.of(s3_bucket + "/x.txt").write_text("x")
    assert "wrong-secret-123" not in str(err.value) and str(err.value).startswith(s3_bucket)
    assert "\n" not in str(err.value)
    port = object_store.endpoint.rsplit(":", 1)[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    monkeypatch.setattr("cstrack.storage.MAX_ATTEMPTS", 1)  # the message, not the retries, is under test
    t0 = time.monotonic()
    with pytest.raises(StorageError, match=r"unreachable at http://127.0.0.1:1") as err:
        Location.of(s3_bucket + "/x.txt").read_bytes()
    assert time.monotonic() - t0 < 30 and port not in str(err.value)


def test_cache_copies_once_and_keys_match_local(s3_bucket: str, head8: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A sequence uploaded and read back through the cache hashes to the same cache key as on a
    local disk; the second use downloads nothing; a changed object makes a fresh copy."""
    seq = Location.of(s3_bucket + "/data/PETS09-S2L1-head8")
    assert upload_tree(head8, seq, manifest=None) == 11
    cache = ObjectCache(tmp_path / "cache", max_bytes=64 << 20)
    with cache.folder(seq) as local:
        assert local != head8
        for mode, images in (("private", True), ("public", False), ("gt", False)):
            assert sequence_fingerprint(local, mode, images) == sequence_fingerprint(head8, mode, images)
    calls: list[str] = []
    real = Location.get_file
    monkeypatch.setattr(Location, "get_file", lambda self, dest: calls.append(self.url) or real(self, dest))
    with cache.folder(seq) as again:
        assert again == local
    assert calls == []
    seq.child("gt", "gt.txt").write_text("1,1,1,1,5,5,1,1,1\n")
    with cache.folder(seq) as changed:
        assert changed != local and (changed / "gt" / "gt.txt").read_text() == "1,1,1,1,5,5,1,1,1\n"
    assert len(calls) == 11
    with cache.file(seq.child("seqinfo.ini")) as ini:
        assert ini.read_bytes() == (head8 / "seqinfo.ini").read_bytes()
    with cache.folder(head8) as in_place:  # a local location is used where it is
        assert in_place == head8.resolve()


def test_cache_evicts_least_recently_used(s3_bucket: str, tmp_path: Path) -> None:
    """Bound 250 KiB, folders of 100 KiB: the least recently used goes, never one in use."""
    folders = []
    for name in "abcde":
        loc = Location.of(f"{s3_bucket}/seqs/{name}")
        loc.child("f.bin").write_bytes(name.encode() * (100 << 10))
        folders.append(loc)
    cache = ObjectCache(tmp_path / "cache", max_bytes=250 << 10)
    a, b, c, d, e = folders
    with cache.folder(a):
        pass
    time.sleep(0.01)
    with cache.folder(b):
        pass
    time.sleep(0.01)
    with cache.folder(a):  # a used again: b is now the least recently used
        pass
    time.sleep(0.01)
    with cache.folder(c):
        pass
    urls = {cache_url(cache, k) for k, _, _ in cache.entries()}
    assert urls == {a.url, c.url} and cache.total_bytes() == 200 << 10
    with cache.folder(c) as held:  # in use: when e arrives, c is the oldest but d goes instead
        with cache.folder(d):
            pass
        assert {cache_url(cache, k) for k, _, _ in cache.entries()} == {c.url, d.url}
        time.sleep(0.01)
        with cache.folder(e):
            pass
        assert {cache_url(cache, k) for k, _, _ in cache.entries()} == {c.url, e.url}
        assert (held / "f.bin").read_bytes()[:1] == b"c"
    with pytest.raises(FileNotFoundError, match="no such folder"), cache.folder(f"{s3_bucket}/seqs/zzz"):
        pass
    shutil.rmtree(tmp_path / "cache")


def cache_url(cache: ObjectCache, key: str) -> str:
    import json

    return json.loads((cache.root / "entries" / f"{key}.json").read_text())["url"]
