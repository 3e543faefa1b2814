"""cstrack.fsutil: atomic writes, hashes and the JSON-able copy."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from cstrack.errors import ConfigError
from cstrack.fsutil import (
    atomic_write_json,
    code_fingerprint,
    plain,
    read_mapping,
    sha256_bytes,
    sha256_file,
    stable_hash,
)


def test_plain_makes_json_able_copies() -> None:
    obj = {1: (np.float32(1.5), torch.tensor(2)), "a": [np.int64(3), {"b": (True, None)}]}
    out = plain(obj)
    assert out == {"1": [1.5, 2], "a": [3, {"b": [True, None]}]}
    assert type(out["1"][0]) is float and type(out["1"][1]) is int and type(out["a"][0]) is int
    json.dumps(out)  # no TypeError


def test_atomic_json_and_hashes(tmp_path: Path) -> None:
    p = atomic_write_json(tmp_path / "sub" / "x.json", {"b": 1, "a": [1, 2]})
    assert json.loads(p.read_text()) == {"b": 1, "a": [1, 2]}
    assert [f.name for f in p.parent.iterdir()] == ["x.json"]  # no temporary file left
    assert sha256_file(p) == sha256_bytes(p.read_bytes())
    # key order does not change the config hash, a value does
    assert stable_hash({"a": 1, "b": 2}) == stable_hash({"b": 2, "a": 1}) != stable_hash({"a": 1, "b": 3})


@contextlib.contextmanager
def _with_umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def test_atomic_files_and_temp_dirs_get_the_umask_modes(tmp_path: Path) -> None:
    """Issue 20 case 3: mkstemp's private 0600 must not survive the rename (nor mkdtemp's 0700)."""
    from cstrack.fsutil import atomic_write_text, current_umask, make_temp_dir

    for mask, fmode, dmode in ((0o022, 0o644, 0o755), (0o002, 0o664, 0o775), (0o077, 0o600, 0o700)):
        with _with_umask(mask):
            assert current_umask() == mask
            p = atomic_write_text(tmp_path / f"f{mask:o}.txt", "x")
            assert p.stat().st_mode & 0o777 == fmode
            d = make_temp_dir(tmp_path / f"d{mask:o}", ".stage-")
            assert d.stat().st_mode & 0o777 == dmode and d.name.startswith(".stage-")
            plain_file = tmp_path / f"open{mask:o}.txt"
            plain_file.write_text("y")  # what open() gives: the reference
            assert p.stat().st_mode & 0o777 == plain_file.stat().st_mode & 0o777


def test_atomic_write_keeps_old_file_on_failure(tmp_path: Path) -> None:
    from cstrack.fsutil import atomic_path

    target = tmp_path / "keep.txt"
    target.write_text("old")
    try:
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("dies mid-write")
    except RuntimeError:
        pass
    assert target.read_text() == "old" and [f.name for f in tmp_path.iterdir()] == ["keep.txt"]


def test_code_fingerprint_follows_the_named_code_only(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "tracker").mkdir(parents=True)
    (pkg / "runner.py").write_text("x = 1\n")
    (pkg / "tracker" / "a.py").write_text("y = 1\n")
    (pkg / "tracker" / "notes.txt").write_text("not code\n")
    (pkg / "unrelated.py").write_text("z = 1\n")
    parts = ("runner.py", "tracker")
    a = code_fingerprint(pkg, parts)
    assert a == stable_hash([["runner.py", sha256_file(pkg / "runner.py")],
                             ["tracker/a.py", sha256_file(pkg / "tracker" / "a.py")]])
    (pkg / "unrelated.py").write_text("z = 2\n")
    (pkg / "tracker" / "notes.txt").write_text("changed\n")
    assert code_fingerprint(pkg, parts) == a
    (pkg / "tracker" / "a.py").write_text("y = 2\n")
    assert code_fingerprint(pkg, parts) != a
    assert code_fingerprint(pkg, ["gone.py"]) == stable_hash([["gone.py", "missing"]])


def test_read_mapping_names_what_is_wrong(tmp_path: Path) -> None:
    def error(reason: str) -> ConfigError:
        return ConfigError(f"f: {reason}")

    (tmp_path / "a.json").write_text('{"k": 1}')
    (tmp_path / "b.yaml").write_text("k: [1, 2]\n")
    (tmp_path / "list.json").write_text("[1]")
    (tmp_path / "bad.yaml").write_text("k: [1\n")
    assert read_mapping(tmp_path / "a.json", error) == {"k": 1}
    assert read_mapping(tmp_path / "b.yaml", error, yaml_ok=True) == {"k": [1, 2]}
    with pytest.raises(ConfigError, match="f: unreadable"):
        read_mapping(tmp_path / "b.yaml", error)  # YAML is not JSON
    with pytest.raises(ConfigError, match="f: expected a mapping, got a list"):
        read_mapping(tmp_path / "list.json", error)
    with pytest.raises(ConfigError, match="f: unreadable"):
        read_mapping(tmp_path / "bad.yaml", error, yaml_ok=True)
