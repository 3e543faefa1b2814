"""A tuning run end to end, shared by ``cstrack tune`` and the ``tune`` flow:
caches -> windows + their gt -> study -> preset file, report, plot and catalog rows.

Layout under the results root::

    detcache/<SEQ>_<key16>.parquet       cached network outputs (cstrack.run.detcache)
    tune/<study>/journal.log             the Optuna study (continued by a re-run)
    tune/<study>/gt/<window>/...         gt of the tune and val windows, renumbered from 1
    tune/<study>/best_preset.yaml        the recommended preset (--preset FILE): written only when the
                                         best trial beats the baseline on the val windows
    tune/<study>/best_trial_preset.yaml  the best trial's parameters, always (for inspection)
    tune/<study>/report.md, plot.png     the artifact
    tune_trials/run_id=tune-<study>/     catalog rows, written by the caller's TrialWriter
                                         (catalog.record.tune_trials_writer; catalog root = results root unless given)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cstrack.errors import ConfigError
from cstrack.tune.evaluate import EvalJob, Segment, halves, whole, write_window_gt
from cstrack.tune.study import StudyConfig, StudyResult, catalog_rows, write_best_preset

TUNE_DIR = "tune"

TrialWriter = Callable[[str, list[dict[str, Any]]], str]
"""``write(study, rows) -> where``: records a study's ``tune_trials`` rows (:func:`catalog_rows`)
and says where they went (the catalog's: :func:`catalog.record.tune_trials_writer`)."""


def study_dir(results_root: str | Path, study: str) -> Path:
    return Path(results_root) / TUNE_DIR / study


def eval_preset_for(name: str) -> str:
    """The evaluation preset of a sequence by its name: MOT16/17/20 by prefix, else ``mot15``
    (PETS09, TUD and other MOT15 sequences; also fine for synthetic gt without classes)."""
    low = name.lower()
    for bench in ("mot16", "mot17", "mot20"):
        if low.startswith(bench):
            return bench
    return "mot15"


def check_names(seq_dirs: Sequence[str | Path]) -> None:
    """Every tune and val sequence once, by folder name (a val sequence must not be a tune one)."""
    names = [Path(s).name for s in seq_dirs]
    if len(set(names)) != len(names):
        raise ConfigError(f"SOURCE/--val: a sequence name appears twice ({sorted(names)}): tuning and validation "
                          "sequences must differ")


def build_jobs(
    tune_caches: Sequence[tuple[str, str]],
    val_caches: Sequence[tuple[str, str]],
    sdir: str | Path,
    preset: str,
    objective: str,
    eval_preset: str | None = None,
) -> tuple[EvalJob, EvalJob, str]:
    """Tune and val jobs from ``(sequence folder, cache file)`` pairs.  Without val sequences the
    half protocol applies: the first half of every tune sequence is tuned on, the second half
    validated on.  Returns ``(tune, val, protocol)`` with protocol ``"val-sequences"`` or ``"half"``."""
    if not tune_caches:
        raise ConfigError("SOURCE: at least one sequence to tune on")
    check_names([s for s, _ in tune_caches] + [s for s, _ in val_caches])
    tune_w: list[Segment]
    val_w: list[Segment]
    if val_caches:
        tune_w = [whole(s, c) for s, c in tune_caches]
        val_w = [whole(s, c) for s, c in val_caches]
        protocol = "val-sequences"
    else:
        pairs = [halves(s, c) for s, c in tune_caches]
        tune_w, val_w = [a for a, _ in pairs], [b for _, b in pairs]
        protocol = "half"
    presets = {eval_preset or eval_preset_for(Path(s.seq_dir).name) for s in tune_w + val_w}
    if len(presets) != 1:
        raise ConfigError(f"sequences need different evaluation presets ({sorted(presets)}); pass --eval-preset")
    d = Path(sdir)
    gt = write_window_gt(tune_w + val_w, d / "gt")
    ep = presets.pop()
    tune = EvalJob(tuple(tune_w), str(gt), preset, ep, objective, str(d / "work"))
    val = EvalJob(tuple(val_w), str(gt), preset, ep, objective, str(d / "work"))
    return tune, val, protocol


def finish(result: StudyResult, sdir: str | Path, write_trials: TrialWriter | None) -> dict[str, str]:
    """Write the preset file, the report + plot and (``write_trials``) the catalog rows; returns the paths."""
    from cstrack.tune.report import write_report

    d = Path(sdir)
    files = {"best_trial": str(write_best_preset(result, d / "best_trial_preset.yaml"))}
    recommended = d / "best_preset.yaml"
    if result.beats_baseline:
        files["preset"] = str(write_best_preset(result, recommended))
    elif recommended.exists():  # an earlier recommendation this study's validation no longer supports
        recommended.unlink()
    files.update(write_report(result, d))
    if write_trials is not None:
        files["catalog"] = write_trials(result.study, catalog_rows(result))
    result.files = files
    return files


def run(cfg: StudyConfig, tune: EvalJob, val: EvalJob, sdir: str | Path, write_trials: TrialWriter | None,
        mapper: Callable[..., Any] | None = None, log: Callable[[str], None] | None = None) -> StudyResult:
    """:func:`cstrack.tune.study.run_study` then :func:`finish`."""
    from cstrack.tune.study import run_study

    result = run_study(cfg, tune, val, sdir, mapper, log)
    finish(result, sdir, write_trials)
    return result
