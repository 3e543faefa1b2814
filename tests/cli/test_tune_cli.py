"""``cstrack tune`` on the shipped PETS09 head (8 frames, the half protocol), small network input."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from catalog import store
from cstrack.cli import app
from cstrack.tracker import preset
from cstrack.tune.space import apply

runner = CliRunner()
WEIGHTS = str(Path(__file__).resolve().parents[2] / "weights" / "cstrack-n_pets09.pt")


def _tune(head8: Path, results: Path, *extra: str) -> object:
    return runner.invoke(app, ["tune", str(head8), "--weights", WEIGHTS, "--size", "320x256", "--study", "s",
                               "--batch", "2", "--results", str(results), "--no-progress", *extra])


def test_tune_json_preset_catalog_and_continue(head8: Path, tmp_path: Path) -> None:
    res = _tune(head8, tmp_path, "--trials", "2", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert set(out) == {"study", "trials", "best_params", "tune_score", "val_score", "default_val_score",
                        "baseline_params", "beats_baseline"}
    assert out["study"] == "s" and out["trials"] == 2
    assert out["baseline_params"]["conf_thres"] == 0.5  # the PETS09 checkpoint's record: conf 0.5
    assert out["beats_baseline"] == (out["val_score"] > out["default_val_score"])
    sdir = tmp_path / "tune" / "s"
    cfg, _ = apply("default", out["best_params"])
    assert preset(str(sdir / "best_trial_preset.yaml")) == cfg
    assert (sdir / "best_preset.yaml").is_file() == out["beats_baseline"]
    assert (sdir / "plot.png").is_file() and "validated on: PETS09-S2L1-head8_f5-8" in (sdir / "report.md").read_text()
    rows = store.load("tune_trials", root=tmp_path)
    assert sorted(rows["kind"]) == ["trial", "trial", "val_best", "val_default"]
    assert rows[rows["kind"] == "val_default"]["value"].item() == out["default_val_score"]
    assert len(list((tmp_path / "detcache").glob("*.parquet"))) == 1

    again = _tune(head8, tmp_path, "--trials", "2", "--json")  # same total: nothing new, same answer
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout) == out
    assert len(store.load("tune_trials", root=tmp_path)) == 4

    # the preset file drives cstrack track
    res = runner.invoke(app, ["track", str(head8), "--detections", "gt", "--preset", str(sdir / "best_trial_preset.yaml"),
                              "--out", str(tmp_path / "trk"), "--no-progress"])
    assert res.exit_code == 0, res.output


def test_tune_refuses_val_equal_to_a_tune_sequence(head8: Path, tmp_path: Path) -> None:
    res = _tune(head8, tmp_path, "--trials", "1", "--val", str(head8))
    assert res.exit_code == 2
    assert "must differ" in res.output and "Traceback" not in res.output
    bad = _tune(head8, tmp_path, "--trials", "1", "--objective", "speed")
    assert bad.exit_code == 2 and "--objective" in bad.output
    assert not (tmp_path / "detcache").exists()  # refused before any network work
