"""cstrack.tune: a seeded study on synthetic cached detections; continuing it, the leakage guard,
the preset file, the catalog rows and the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cstrack.errors import ConfigError
from cstrack.tracker import preset
from cstrack.tune import (
    EvalJob,
    StudyConfig,
    apply,
    catalog_rows,
    default_params,
    halves,
    run_study,
    score,
    whole,
    write_best_preset,
    write_window_gt,
)
from cstrack.tune.report import write_report
from tests.tune.synthetic_cache import write_cached_sequence


@pytest.fixture(scope="module")
def jobs(tmp_path_factory: pytest.TempPathFactory) -> tuple[EvalJob, EvalJob]:
    root = tmp_path_factory.mktemp("tune")
    seq, cache = write_cached_sequence(root, frames=60)
    tune_w, val_w = halves(seq, cache)
    gt = write_window_gt([tune_w, val_w], root / "gt")
    mk = lambda s: EvalJob((s,), str(gt), "default", "mot17", "HOTA", str(root / "work"))  # noqa: E731
    return mk(tune_w), mk(val_w)


def test_half_windows_and_their_gt(jobs: tuple[EvalJob, EvalJob]) -> None:
    tune, val = jobs
    (t,), (v,) = tune.segments, val.segments
    assert (t.first, t.last, v.first, v.last) == (1, 30, 31, 60)
    assert t.name == "SYN-01_f1-30" and v.name == "SYN-01_f31-60"
    gt = Path(tune.gt_root) / v.name / "gt" / "gt.txt"
    frames = [int(line.split(",")[0]) for line in gt.read_text().splitlines()]
    assert min(frames) == 1 and max(frames) == 30 and len(frames) == 30 * 4


def test_score_of_the_default_params(jobs: tuple[EvalJob, EvalJob]) -> None:
    tune, _ = jobs
    r = score(tune, default_params("default"), "t")
    assert r["value"] == r["combined"]["HOTA"] and 0.3 < r["value"] <= 1.0
    assert set(r["per_sequence"]) == {"SYN-01_f1-30"} and r["frames"] == 30
    assert not (Path(tune.work_dir) / "t").exists()  # scratch results removed
    # a stricter detection threshold drops boxes: fewer predicted boxes, so FN can only grow
    strict = score(tune, {**default_params("default"), "conf_thres": 0.7}, "t2")
    assert strict["combined"]["FN"] > r["combined"]["FN"]


def test_study_continues_without_duplicates(jobs: tuple[EvalJob, EvalJob], tmp_path: Path) -> None:
    tune, val = jobs
    cfg = StudyConfig("s1", trials=3, batch=2, seed=7)
    first = run_study(cfg, tune, val, tmp_path / "s1")
    assert first.new_trials == 3 and len(first.trials) == 3
    out = first.to_json()
    assert set(out) == {"study", "trials", "best_params", "tune_score", "val_score", "default_val_score",
                        "baseline_params", "beats_baseline"}
    assert out["baseline_params"]["conf_thres"] == 0.5  # no checkpoint conf given: the spec's
    assert out["tune_score"] == max(t["value"] for t in first.trials)
    again = run_study(cfg, tune, val, tmp_path / "s1")
    assert again.new_trials == 0 and again.best_params == first.best_params
    more = run_study(StudyConfig("s1", trials=5, batch=2, seed=7), tune, val, tmp_path / "s1")
    assert more.new_trials == 2 and [t["number"] for t in more.trials] == [0, 1, 2, 3, 4]
    params = [tuple(sorted(t["params"].items())) for t in more.trials]
    assert len(set(params)) == 5  # continuing never re-proposes the first run's parameters
    # seeded: the same study elsewhere proposes the same first trials
    twin = run_study(cfg, tune, val, tmp_path / "twin")
    assert [t["params"] for t in twin.trials] == [t["params"] for t in first.trials]
    # a study name is bound to its settings
    with pytest.raises(ConfigError, match="objective"):
        run_study(StudyConfig("s1", trials=5, batch=2, seed=7, objective="MOTA"), tune, val, tmp_path / "s1")

    # the val scores are those of score() on the val windows
    best = score(val, more.best_params, "v")
    assert more.val_score == best["value"]
    assert more.default_val_score == score(val, default_params("default"), "d")["value"]

    # preset file: what --preset FILE gives equals the best trial's configuration
    path = write_best_preset(more, tmp_path / "best.yaml")
    cfg_best, conf = apply("default", more.best_params)
    assert preset(str(path)) == cfg_best
    from cstrack.tracker.presetfile import read_preset_file

    assert read_preset_file(path).conf_thres == conf

    rows = catalog_rows(more)
    assert [r["kind"] for r in rows] == ["trial"] * 5 + ["val_best", "val_default"]
    assert rows[-2]["value"] == more.val_score and rows[-1]["value"] == more.default_val_score
    assert json.loads(rows[0]["params_json"]) == more.trials[0]["params"]
    assert rows[-1]["windows"] == "SYN-01_f31-60" and rows[0]["windows"] == "SYN-01_f1-30"
    from catalog import store

    store.write("tune_trials", rows, tmp_path / "cat", run_id="tune-s1")
    store.write("tune_trials", rows, tmp_path / "cat", run_id="tune-s1")  # a re-run replaces, never duplicates
    back = store.load("tune_trials", root=tmp_path / "cat")
    assert len(back) == 7 and back[back["kind"] == "val_best"]["value"].item() == more.val_score

    files = write_report(more, tmp_path / "s1")
    md = Path(files["report"]).read_text()
    assert "tuned on: SYN-01_f1-30" in md and "validated on: SYN-01_f31-60" in md
    assert Path(files["plot"]).read_bytes()[:4] == b"\x89PNG"

    # a best trial that does not beat the baseline on validation: flagged, no recommended preset
    import dataclasses

    from cstrack.tune.pipeline import finish

    sdir = tmp_path / "s1"
    win = dataclasses.replace(more, val_score=more.default_val_score + 0.01)
    assert win.beats_baseline and "preset" in finish(win, sdir, None) and (sdir / "best_preset.yaml").is_file()
    assert "**Recommended**" in (sdir / "report.md").read_text()
    tie = dataclasses.replace(more, val_score=more.default_val_score)
    got = finish(tie, sdir, None)
    assert not tie.beats_baseline and "preset" not in got
    assert not (sdir / "best_preset.yaml").exists()  # the earlier recommendation is withdrawn
    assert preset(got["best_trial"]) == cfg_best  # the trial's values stay inspectable
    text = (sdir / "report.md").read_text()
    assert "**Not recommended**" in text and "keep the checkpoint's settings" in text


def test_the_baseline_is_the_checkpoints_own_settings(tmp_path: Path) -> None:
    from cstrack.tracker.presetfile import write_preset_file
    from cstrack.tune.space import search_space

    # the shipped cstrack-n_cpu.pt runs at conf 0.4: the baseline uses it, not the spec's 0.5
    assert default_params("default", 0.4)["conf_thres"] == 0.4
    assert default_params("default")["conf_thres"] == 0.5
    f = write_preset_file(tmp_path / "p.yaml", "original", {"track_buffer": 45}, 0.3)
    base = default_params(str(f), 0.4)
    assert base["conf_thres"] == 0.3 and base["track_buffer"] == 45  # a preset file's own values win
    assert base["iou_thresh"] == default_params("original")["iou_thresh"]
    assert search_space(str(f)) == search_space("original")
    cfg, conf = apply(str(f), {"det_thresh": 0.6, "conf_thres": 0.35})
    assert (cfg.track_buffer, cfg.det_thresh, conf) == (45, 0.6, 0.35)


def test_leakage_guard_refuses_overlapping_val(jobs: tuple[EvalJob, EvalJob], tmp_path: Path) -> None:
    tune, _ = jobs
    seg = tune.segments[0]
    whole_seq = EvalJob((whole(seg.seq_dir, seg.cache),), tune.gt_root, "default", "mot17", "HOTA", tune.work_dir)
    with pytest.raises(ConfigError, match="overlap"):
        run_study(StudyConfig("s2", trials=1), tune, whole_seq, tmp_path / "s2")
