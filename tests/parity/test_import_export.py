"""``cstrack weights import`` / ``export-original``: round trips, mismatches and refusals of files
whose pickle would run code."""

from __future__ import annotations

import json
import os
import pickle
import sys
import types
import zipfile
from collections import OrderedDict
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from cstrack.cli import app
from cstrack.errors import WeightsError
from cstrack.model.sots import export_original, import_original, read_original
from cstrack.model.weights import load_weights, read_record, save_weights

runner = CliRunner()


def cli(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def one_line_error(result, *needles: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    for n in needles:
        assert n in lines[0], lines[0]


def test_import_writes_our_checkpoint_and_record(parity: Path, tmp_path: Path) -> None:
    out = tmp_path / "tiny.pt"
    res = cli("weights", "import", parity / "tiny_state_dict.pt", "--out", out, "--arch", parity / "tiny_config.json")
    assert res.exit_code == 0, res.output
    record = read_record(out)
    assert record["import"]["source_form"] == "state_dict"
    assert record["import"]["original_keys"] == len(torch.load(parity / "tiny_state_dict.pt", weights_only=True)["model"])
    assert record["import"]["mapping_version"] == 1
    from cstrack.fsutil import sha256_file

    assert record["import"]["source_sha256"] == sha256_file(parity / "tiny_state_dict.pt")
    assert record["inference"]["input_size"] == [1088, 608]
    assert record["inference"]["tracker_preset"] == "original"
    model = load_weights(out)  # strict, sha256-verified
    assert all(t.dtype != torch.float16 for t in model.state_dict().values())


def test_export_of_the_import_is_the_original_state_dict(parity: Path, tmp_path: Path) -> None:
    original = torch.load(parity / "tiny_state_dict.pt", weights_only=True)["model"]
    model, _ = import_original(parity / "tiny_state_dict.pt")
    exported = export_original(model, tmp_path / "orig.pt")
    assert list(exported) == list(original)  # the original's names and order
    for key, t in original.items():
        assert exported[key].dtype == t.dtype and torch.equal(exported[key], t), key
    reread = torch.load(tmp_path / "orig.pt", weights_only=True)["model"]
    assert list(reread) == list(original)


def test_import_of_the_export_is_bit_identical(parity: Path, tmp_path: Path) -> None:
    # W: a model of the tiny architecture with fresh random weights, saved as our checkpoint
    model, _ = import_original(parity / "tiny_state_dict.pt")
    torch.manual_seed(7)
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.copy_(torch.randn_like(t))
    w = tmp_path / "w.pt"
    save_weights(w, model)
    assert cli("weights", "export-original", w, "--out", tmp_path / "x.pt").exit_code == 0
    assert cli("weights", "import", tmp_path / "x.pt", "--out", tmp_path / "w2.pt").exit_code == 0
    a, b = load_weights(w).state_dict(), load_weights(tmp_path / "w2.pt").state_dict()
    assert list(a) == list(b)
    for key in a:
        assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), key


def test_a_named_variant_that_does_not_fit_names_the_first_layer(parity: Path, tmp_path: Path) -> None:
    res = cli("weights", "import", parity / "tiny_state_dict.pt", "--out", tmp_path / "x.pt", "--variant", "cstrack-s")
    one_line_error(res, "layer 0", "model.0.conv.conv.weight", "in the file", "in the architecture")
    assert not (tmp_path / "x.pt").exists()


def _tampered(parity: Path, tmp_path: Path, **changes: torch.Tensor | None) -> Path:
    state = OrderedDict(torch.load(parity / "tiny_state_dict.pt", weights_only=True)["model"])
    for key, value in changes.items():
        key = key.replace("__", ".")
        if value is None:
            del state[key]
        else:
            state[key] = value
    p = tmp_path / "tampered.pt"
    torch.save({"model": state}, p)
    return p


def test_k_other_than_10_is_refused(parity: Path, tmp_path: Path) -> None:
    p = _tampered(parity, tmp_path, model__28__k=torch.tensor([10.000001]))
    with pytest.raises(WeightsError, match=r"model\.28\.k.*not 10"):
        import_original(p)


def test_anchors_other_than_the_architecture_are_refused(parity: Path, tmp_path: Path) -> None:
    state = torch.load(parity / "tiny_state_dict.pt", weights_only=True)["model"]
    p = _tampered(parity, tmp_path, model__28__anchors=state["model.28.anchors"] * 1.5)
    with pytest.raises(WeightsError, match="anchors"):
        import_original(p)


def test_a_missing_tensor_with_a_given_architecture_names_its_layer(parity: Path, tmp_path: Path) -> None:
    from cstrack.model.architecture import from_sots_config

    p = _tampered(parity, tmp_path, model__17__cv2__weight=None)
    arch = from_sots_config(json.loads((parity / "tiny_config.json").read_text()))
    with pytest.raises(WeightsError, match=r"layer 17: model\.17\.cv2\.weight is missing"):
        import_original(p, arch)


def test_an_extra_tensor_is_refused(parity: Path, tmp_path: Path) -> None:
    p = _tampered(parity, tmp_path, model__28__extra=torch.zeros(3))
    with pytest.raises(WeightsError, match=r"model\.28\.extra .* not in the architecture"):
        import_original(p)


# --- files that would run code -----------------------------------------------------------


class _Exploit:
    """Pickles as a call of ``fn(arg)``: what a malicious checkpoint does."""

    def __init__(self, fn, arg: str) -> None:
        self.fn, self.arg = fn, arg

    def __reduce__(self):
        return self.fn, (self.arg,)


def _touch_command(marker: Path) -> str:
    return f"touch {marker}"


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    m = tmp_path / "marker"
    yield m
    assert not m.exists(), "something in the checkpoint ran"


def test_os_system_is_refused_and_nothing_runs(tmp_path: Path, marker: Path) -> None:
    p = tmp_path / "evil.pt"
    torch.save({"model": {"model.0.conv.conv.weight": _Exploit(os.system, _touch_command(marker))}}, p)
    res = cli("weights", "import", p, "--out", tmp_path / "out.pt")
    one_line_error(res, str(p), "system", "refusing")
    assert not (tmp_path / "out.pt").exists()


@pytest.mark.parametrize("fn", [eval, exec, os.popen], ids=["eval", "exec", "popen"])
def test_other_globals_are_refused(tmp_path: Path, marker: Path, fn) -> None:
    p = tmp_path / "evil.pt"
    arg = f"__import__('os').system('touch {marker}')" if fn in (eval, exec) else _touch_command(marker)
    torch.save({"model": _Exploit(fn, arg)}, p)
    with pytest.raises(WeightsError, match="refusing to load"):
        read_original(p)


def test_an_allowed_name_is_an_inert_placeholder(tmp_path: Path, marker: Path, monkeypatch) -> None:
    # A pickle may call a function under `models.` (allowed name pattern): the placeholder that
    # stands in for it takes the arguments and runs nothing.
    mod = types.ModuleType("models.evil")

    def payload(cmd: str) -> None:
        os.system(cmd)

    payload.__module__ = "models.evil"
    payload.__qualname__ = "payload"
    mod.payload = payload  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "models", types.ModuleType("models"))
    monkeypatch.setitem(sys.modules, "models.evil", mod)
    p = tmp_path / "evil.pt"
    torch.save({"model": _Exploit(payload, _touch_command(marker))}, p)
    monkeypatch.delitem(sys.modules, "models.evil")
    with pytest.raises(WeightsError, match="not an original CSTrack checkpoint"):
        read_original(p)


def test_a_legacy_file_is_refused_with_what_to_do(tmp_path: Path) -> None:
    p = tmp_path / "legacy.pt"
    torch.save({"model": {"a": torch.zeros(1)}}, p, _use_new_zipfile_serialization=False)
    assert not zipfile.is_zipfile(p)
    with pytest.raises(WeightsError, match=r"legacy .*re-save"):
        read_original(p)


def test_a_zip_without_a_torch_pickle_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "x.pt"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("x/data.pkl", pickle.dumps({"model": 1}))
    with pytest.raises(WeightsError):
        read_original(p)
