"""Tensor-only checkpoints: round trip, sha256 record, strict loading, refusal of pickles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cstrack.errors import WeightsError
from cstrack.fsutil import sha256_file
from cstrack.model import build_model
from cstrack.model.weights import load_checkpoint, load_state_strict, load_weights, save_weights


def test_round_trip_restores_config_and_outputs(tmp_path: Path) -> None:
    torch.manual_seed(1)
    model = build_model("cstrack-n", ren_lambda=0.25, emb_dim=64).eval()
    rec = save_weights(tmp_path / "m.pt", model, {"data": "unit-test", "epochs": 0})
    assert rec["sha256"] == sha256_file(tmp_path / "m.pt")
    on_disk = json.loads((tmp_path / "m.json").read_text())
    assert on_disk["variant"] == "cstrack-n" and on_disk["provenance"]["data"] == "unit-test"
    assert on_disk["config"]["ren_lambda"] == 0.25 and len(on_disk["config_hash"]) == 64
    loaded = load_weights(tmp_path / "m.pt").eval()
    assert loaded.config == model.config
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        a, b = model(x), loaded(x)
    assert torch.equal(a[0], b[0]) and all(torch.equal(p, q) for p, q in zip(a[1], b[1], strict=True))
    # the checkpoint itself holds only tensors and plain values
    obj = torch.load(tmp_path / "m.pt", weights_only=True)
    assert set(obj) == {"format", "variant", "config", "state_dict"}


def test_tampered_file_fails_the_sha256_check(tmp_path: Path) -> None:
    save_weights(tmp_path / "m.pt", build_model("cstrack-n"))
    with open(tmp_path / "m.pt", "ab") as fh:
        fh.write(b"x")
    with pytest.raises(WeightsError, match="sha256 mismatch"):
        load_weights(tmp_path / "m.pt")


def test_missing_record_is_refused(tmp_path: Path) -> None:
    save_weights(tmp_path / "m.pt", build_model("cstrack-n"))
    (tmp_path / "m.json").unlink()
    with pytest.raises(WeightsError, match="no sha256 record"):
        load_checkpoint(tmp_path / "m.pt")


def test_missing_and_unexpected_keys_are_named() -> None:
    model = build_model("cstrack-n")
    state = dict(model.state_dict())
    state.pop("detect.m.0.bias")
    state["detect.extra.weight"] = torch.zeros(1)
    with pytest.raises(WeightsError) as err:
        load_state_strict(model, state)
    assert "missing keys: ['detect.m.0.bias']" in str(err.value)
    assert "unexpected keys: ['detect.extra.weight']" in str(err.value)
    state = dict(model.state_dict())
    state["detect.m.0.bias"] = torch.zeros(7)
    with pytest.raises(WeightsError, match=r"shape mismatch: detect.m.0.bias \(7,\) vs \(18,\)"):
        load_state_strict(model, state)


def test_pickled_full_model_is_refused(tmp_path: Path) -> None:
    torch.save(build_model("cstrack-n"), tmp_path / "full.pt")  # a pickled nn.Module
    (tmp_path / "full.json").write_text(json.dumps({"sha256": sha256_file(tmp_path / "full.pt")}))
    with pytest.raises(WeightsError, match="refusing to load a pickled object"):
        load_weights(tmp_path / "full.pt")
