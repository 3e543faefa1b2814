"""cstrack.fsutil: atomic writes, hashes and the JSON-able copy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from cstrack.fsutil import atomic_write_json, plain, sha256_bytes, sha256_file, stable_hash


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
