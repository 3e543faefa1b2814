"""A checkpoint and its record are published together (issue 24): a failure injected at every
write, fsync, link and rename of ``save_weights`` leaves the old pair loadable and nothing hidden
behind; a process killed at any of those steps leaves the old pair or the new one (never a mix)
once the next reader has run; disk-full errors name the user's file; NaN weights are refused."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

import cstrack.fsutil as fsutil
from cstrack.errors import WeightsError
from cstrack.model import build_model
from cstrack.model.network import CSTrackModel
from cstrack.model.weights import load_checkpoint, save_weights

STEPS = ("replace", "link", "fsync")  # the OS calls of a publish besides the writes


class _OsAt:
    """``os`` for :mod:`cstrack.fsutil` that runs ``action`` at the ``at``-th call of a step."""

    def __init__(self, at: int, action: Any) -> None:
        self.at, self.action, self.calls = at, action, 0

    def __getattr__(self, name: str) -> Any:
        real = getattr(os, name)
        if name not in STEPS:
            return real

        def step(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            if self.calls == self.at:
                self.action()
            return real(*args, **kwargs)

        return step


def _enospc() -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def _model(seed: int) -> CSTrackModel:
    torch.manual_seed(seed)
    return build_model("cstrack-n", emb_dim=16).eval()


def _state_of(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)[1]


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def models() -> tuple[CSTrackModel, CSTrackModel]:
    return _model(1), _model(2)


def _count_steps(tmp: Path, new: CSTrackModel, monkeypatch: pytest.MonkeyPatch) -> int:
    counter = _OsAt(0, lambda: None)
    monkeypatch.setattr(fsutil, "os", counter)
    save_weights(tmp / "count.pt", new)
    monkeypatch.setattr(fsutil, "os", os)
    return counter.calls


def test_every_failing_step_leaves_the_old_pair(tmp_path: Path, models: tuple[CSTrackModel, CSTrackModel],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    old, new = models
    p = tmp_path / "w" / "m.pt"
    save_weights(p, old)
    old_state = _state_of(p)
    before = {f.name: f.read_bytes() for f in p.parent.iterdir()}
    steps = _count_steps(tmp_path, new, monkeypatch)
    assert steps >= 6  # fsync x3 (pt, record, journal), link x2, replace x3 (journal, pt, record)
    failures = [("torch.save", None), ("record write", None)] + [("os", k) for k in range(1, steps + 1)]
    for what, at in failures:
        with monkeypatch.context() as m:
            if what == "os":
                m.setattr(fsutil, "os", _OsAt(at, _enospc))
            elif what == "torch.save":
                def full_disk(*args: Any, **kwargs: Any) -> None:
                    raise RuntimeError("[enforce fail at inline_container.cc:778] . PytorchStreamWriter failed "
                                       "writing file data/0: file write failed")
                m.setattr(torch, "save", full_disk)
            else:
                m.setattr(Path, "write_text", lambda *a, **k: _enospc())
            with pytest.raises(OSError) as info:
                save_weights(p, new)
        assert info.value.filename == str(p), (what, at, info.value)  # the user's path, not a temp name
        assert info.value.errno in (errno.ENOSPC, errno.EIO), (what, at)
        # the old pair byte for byte (so it loads as before), nothing hidden left
        assert {f.name: f.read_bytes() for f in p.parent.iterdir()} == before, (what, at)
    assert _same(_state_of(p), old_state)
    save_weights(p, new)  # and with no failure, the new pair
    assert _same(_state_of(p), _state_of(tmp_path / "count.pt"))
    assert sorted(f.name for f in p.parent.iterdir()) == ["m.json", "m.pt"]


class _Killed(BaseException):
    """Ends the save at the snapshot (what a kill leaves is the copy, not this folder)."""


def test_a_process_killed_at_any_step_leaves_one_whole_pair(tmp_path: Path,
                                                            models: tuple[CSTrackModel, CSTrackModel],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A kill at step k leaves the folder as it is just before that call: copied at that moment
    (the state on disk a SIGKILL leaves), then read by a new reader."""
    old, new = models
    steps = _count_steps(tmp_path, new, monkeypatch)
    new_state = _state_of(tmp_path / "count.pt")
    p = tmp_path / "w" / "m.pt"
    save_weights(p, old)
    old_state = _state_of(p)
    outcomes = []
    for at in range(1, steps + 1):
        frozen = tmp_path / f"killed-at-{at}"

        def kill(at: int = at, frozen: Path = frozen) -> None:
            shutil.copytree(p.parent, frozen)
            raise _Killed

        with monkeypatch.context() as m:
            m.setattr(fsutil, "os", _OsAt(at, kill))
            with pytest.raises(_Killed):
                save_weights(p, new)
        state = _state_of(frozen / "m.pt")  # the reader undoes a publish cut short; the sha256 check passes
        outcomes.append("old" if _same(state, old_state) else "new" if _same(state, new_state) else "mix")
        assert not list(frozen.glob(".*.publish.json")), at
        assert _same(_state_of(p), old_state)  # the aborted save itself restored the old pair
    assert "mix" not in outcomes and outcomes.count("old") == steps, outcomes


def test_a_checkpoint_named_json_is_refused(tmp_path: Path, models: tuple[CSTrackModel, CSTrackModel]) -> None:
    with pytest.raises(WeightsError, match=r"w.json: a checkpoint cannot end in .json"):
        save_weights(tmp_path / "w.json", models[0])
    assert not list(tmp_path.iterdir())


def test_weights_with_nan_are_refused_naming_the_tensor(tmp_path: Path,
                                                        models: tuple[CSTrackModel, CSTrackModel]) -> None:
    model = _model(3)
    first = next(k for k, v in model.state_dict().items() if v.is_floating_point())
    with torch.no_grad():
        model.state_dict()[first].view(-1)[0] = float("nan")
    save_weights(tmp_path / "nan.pt", model)
    with pytest.raises(WeightsError, match=rf"nan.pt: tensor '{first}' holds 1 NaN/inf value"):
        load_checkpoint(tmp_path / "nan.pt")
