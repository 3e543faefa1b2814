"""Training checkpoints: atomic writes, refusal of corrupt / incomplete / foreign checkpoints, RNG states."""

from __future__ import annotations

import json
import random
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from cstrack.errors import ConfigError, WeightsError
from cstrack.fsutil import sha256_file
from cstrack.train import checkpoint as ckpt


def payload(epoch: int, value: float = 1.0, config_hash: str = "abc") -> dict:
    return {"format": ckpt.FORMAT, "epoch": epoch, "iteration": 10 * epoch, "config_hash": config_hash,
            "model": {"w": torch.full((3,), value)}}


def test_round_trip_and_listing(tmp_path: Path) -> None:
    for e in (1, 2, 3):
        rec = ckpt.save_checkpoint(ckpt.checkpoint_path(tmp_path, e), payload(e, float(e)))
        assert rec["epoch"] == e and rec["sha256"] == sha256_file(tmp_path / f"epoch_{e:03d}.pt")
    assert [e for e, _ in ckpt.list_checkpoints(tmp_path)] == [1, 2, 3]
    state = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path), config_hash="abc")
    assert torch.equal(state["model"]["w"], torch.full((3,), 3.0))
    removed = ckpt.prune_checkpoints(tmp_path, keep=2)
    assert [p.name for p in removed] == ["epoch_001.pt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch_002.json", "epoch_002.pt", "epoch_003.json", "epoch_003.pt"]


def test_interrupted_write_leaves_the_previous_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = ckpt.checkpoint_path(tmp_path, 1)
    ckpt.save_checkpoint(path, payload(1, 1.0))
    before = path.read_bytes()

    def dying_save(obj: object, f: Path) -> None:
        Path(f).write_bytes(b"PK\x03\x04 half a checkpoint")
        raise KeyboardInterrupt  # the process is killed mid-write

    monkeypatch.setattr(torch, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_checkpoint(path, payload(1, 2.0))
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch_001.json", "epoch_001.pt"]  # no temp files
    assert float(ckpt.load_checkpoint(path)["model"]["w"][0]) == 1.0


def test_incomplete_checkpoint_is_ignored_and_refused(tmp_path: Path) -> None:
    ckpt.save_checkpoint(ckpt.checkpoint_path(tmp_path, 1), payload(1))
    p2 = ckpt.checkpoint_path(tmp_path, 2)
    ckpt.save_checkpoint(p2, payload(2))
    p2.with_suffix(".json").unlink()  # died between the .pt and its record
    assert ckpt.latest_checkpoint(tmp_path) == ckpt.checkpoint_path(tmp_path, 1)
    with pytest.raises(WeightsError, match="incomplete"):
        ckpt.load_checkpoint(p2)


def test_corrupt_checkpoint_is_refused(tmp_path: Path) -> None:
    p = ckpt.checkpoint_path(tmp_path, 1)
    ckpt.save_checkpoint(p, payload(1))
    data = bytearray(p.read_bytes())
    data[-30] ^= 0x01
    p.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match=r"epoch_001\.pt: corrupt"):
        ckpt.load_checkpoint(p)


def test_pickled_objects_and_foreign_configs_are_refused(tmp_path: Path) -> None:
    p = ckpt.checkpoint_path(tmp_path, 1)
    torch.save({"format": ckpt.FORMAT, "epoch": 1, "evil": Fraction(1, 3)}, p)  # needs the full unpickler
    p.with_suffix(".json").write_text(json.dumps({"sha256": sha256_file(p)}))
    with pytest.raises(WeightsError, match="refusing to load a pickled object"):
        ckpt.load_checkpoint(p)
    ckpt.save_checkpoint(p, payload(1, config_hash="abc"))
    with pytest.raises(ConfigError, match="same configuration"):
        ckpt.load_checkpoint(p, config_hash="def")


def test_rng_states_survive_a_checkpoint(tmp_path: Path) -> None:
    state = ckpt.capture_rng()
    expected = (random.random(), np.random.rand(3).tolist(), torch.rand(3).tolist())
    p = ckpt.checkpoint_path(tmp_path, 1)
    ckpt.save_checkpoint(p, {**payload(1), "rng": state})
    random.seed(5)
    np.random.seed(5)
    torch.manual_seed(5)
    ckpt.restore_rng(ckpt.load_checkpoint(p)["rng"])
    assert (random.random(), np.random.rand(3).tolist(), torch.rand(3).tolist()) == expected
