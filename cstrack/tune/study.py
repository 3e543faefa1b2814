"""A tuning study: Optuna's TPE (seeded) over the declared search space, trials scored on cached
detections, then one leakage-guarded validation.

- Storage: an Optuna journal file ``<study_dir>/journal.log``.  Running a study again continues it:
  ``trials`` is the study's total of completed trials, so a second run with the same number does
  no new trial and one with a larger number adds the difference.  Trials left running by a killed
  run are marked failed and replaced.  The sampler's seed is ``seed + trials already in the
  study``, so continuing never re-proposes the first run's parameters.
- Parallelism: trials are asked ``batch`` at a time and scored by ``mapper`` (the built-in ``map``,
  or Dask: :func:`cstrack.tune.evaluate.score` is a plain function of picklable arguments); the
  results are told in trial order, so a study's trials depend on ``batch``, never on the number of
  workers.
- Leakage guard: the study optimises on ``tune`` windows only; the best parameters are then scored
  once on the separate ``val`` windows, next to the baseline on the same windows.
- Baseline: what would run without tuning: the preset's values (a preset file's over its base) with
  the checkpoint's own detection threshold (``StudyConfig.baseline_conf``, e.g. 0.4 for the shipped
  ``cstrack-n_cpu.pt``).  A best trial that does not beat it on the val windows is flagged and not
  written as the recommended preset (:func:`write_best_preset`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cstrack.errors import ConfigError
from cstrack.tune.evaluate import EvalJob, score
from cstrack.tune.space import Param, default_params, search_space, split_params

Mapper = Callable[..., Iterable[dict[str, Any]]]
_SETUP_KEYS = ("preset", "objective", "tune_windows", "seed", "batch")


@dataclass(frozen=True)
class StudyConfig:
    """``study`` name (a folder name), tracker ``preset`` whose space is searched, ``objective``
    metric (maximised), total completed ``trials``, sampler ``seed`` and ``batch`` (trials asked
    and scored together)."""

    study: str
    trials: int
    preset: str = "default"
    objective: str = "HOTA"
    seed: int = 0
    batch: int = 4
    baseline_conf: float | None = None  # the checkpoint's conf_thres (its record); None: DEFAULT_CONF_THRES

    def __post_init__(self) -> None:
        from cstrack.names import RULE, is_name

        if not is_name(self.study):
            raise ConfigError(f"--study: invalid name {self.study!r} ({RULE})")
        if self.trials < 1:
            raise ConfigError(f"--trials: must be >= 1, got {self.trials}")
        if self.batch < 1:
            raise ConfigError(f"batch: must be >= 1, got {self.batch}")
        from cstrack.tune.evaluate import OBJECTIVES

        if self.objective not in OBJECTIVES:
            raise ConfigError(f"--objective: expected one of {', '.join(OBJECTIVES)}, got {self.objective!r}")
        search_space(self.preset)


@dataclass
class StudyResult:
    study: str
    preset: str
    objective: str
    trials: list[dict[str, Any]]  # completed trials: number, params, value, metrics
    best_trial: int
    best_params: dict[str, Any]
    tune_score: float
    default_tune_score: float
    val_score: float
    default_val_score: float
    val_metrics: dict[str, Any]
    default_val_metrics: dict[str, Any]
    tune_windows: list[str]
    val_windows: list[str]
    new_trials: int
    files: dict[str, str] = field(default_factory=dict)
    baseline_params: dict[str, Any] = field(default_factory=dict)

    @property
    def beats_baseline(self) -> bool:
        """Whether the best trial scores above the baseline on the validation windows."""
        return self.val_score > self.default_val_score

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` output."""
        return {"study": self.study, "trials": len(self.trials), "best_params": self.best_params,
                "tune_score": self.tune_score, "val_score": self.val_score,
                "default_val_score": self.default_val_score, "baseline_params": self.baseline_params,
                "beats_baseline": self.beats_baseline}


def _distributions(space: Sequence[Param]) -> dict[str, Any]:
    from optuna.distributions import FloatDistribution, IntDistribution

    return {p.name: IntDistribution(int(p.low), int(p.high)) if p.kind == "int" else FloatDistribution(p.low, p.high)
            for p in space}


def _open(cfg: StudyConfig, study_dir: Path, setup: dict[str, Any]) -> Any:
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study_dir.mkdir(parents=True, exist_ok=True)
    storage = JournalStorage(JournalFileBackend(str(study_dir / "journal.log")))
    study = optuna.create_study(study_name=cfg.study, storage=storage, direction="maximize", load_if_exists=True)
    old = study.user_attrs.get("setup")
    if old is None:
        study.set_user_attr("setup", setup)
    elif old != setup:
        diff = [k for k in _SETUP_KEYS if old.get(k) != setup.get(k)]
        raise ConfigError(f"--study {cfg.study}: exists with other settings ({', '.join(diff)}: "
                          f"{ {k: old.get(k) for k in diff} }); use another study name")
    return study


def run_study(cfg: StudyConfig, tune: EvalJob, val: EvalJob, study_dir: str | Path,
              mapper: Mapper | None = None, log: Callable[[str], None] | None = None) -> StudyResult:
    """Run (or continue) the study; see the module docstring.  ``mapper(fn, jobs, params, tags)``
    maps :func:`score` over trials (default: in this process)."""
    from optuna.samplers import TPESampler
    from optuna.trial import TrialState

    mapper = mapper or map
    log = log or (lambda _msg: None)
    tune_names = sorted(s.name for s in tune.segments)
    val_names = sorted(s.name for s in val.segments)
    overlap = _overlap(tune, val)
    if overlap:
        raise ConfigError(f"--val: the validation frames overlap the tuning frames ({', '.join(overlap)}): "
                          "validate on other sequences, or leave --val out for the half protocol")
    setup = {"preset": cfg.preset, "objective": cfg.objective, "tune_windows": tune_names, "seed": cfg.seed,
             "batch": cfg.batch}
    study = _open(cfg, Path(study_dir), setup)
    space = search_space(cfg.preset)
    dists = _distributions(space)

    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
        study.tell(t.number, state=TrialState.FAIL)  # left by a killed run: replaced below
    new = 0
    while True:
        done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
        if done >= cfg.trials:
            break
        study.sampler = TPESampler(seed=cfg.seed + len(study.trials))
        k = min(cfg.batch, cfg.trials - done)
        asked = [study.ask(dists) for _ in range(k)]
        params = [dict(t.params) for t in asked]
        results = list(mapper(score, [tune] * k, params, [f"trial-{t.number}" for t in asked]))
        for t, r in zip(asked, results, strict=True):
            t.set_user_attr("metrics", {"combined": r["combined"], "per_sequence": r["per_sequence"]})
            t.set_user_attr("replay_fps", r["frames"] / r["replay_s"] if r["replay_s"] else None)
            study.tell(t, r["value"])
            new += 1
            log(f"trial {t.number}: {cfg.objective} {r['value']:.4f} (best {study.best_value:.4f})")

    best = study.best_trial
    defaults = default_params(cfg.preset, cfg.baseline_conf)
    default_tune, val_best, val_default = mapper(score, [tune, val, val], [defaults, best.params, defaults],
                                                 ["tune-default", "val-best", "val-default"])
    log(f"val ({', '.join(val_names)}): best {val_best['value']:.4f}, default {val_default['value']:.4f}")
    trials = [{"number": t.number, "params": dict(t.params), "value": float(t.value),
               "metrics": t.user_attrs.get("metrics", {}), "replay_fps": t.user_attrs.get("replay_fps"),
               "started": t.datetime_start, "finished": t.datetime_complete}
              for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    result = StudyResult(
        study=cfg.study, preset=cfg.preset, objective=cfg.objective, trials=trials, best_trial=best.number,
        best_params=_rounded(best.params, space), tune_score=float(best.value),
        default_tune_score=float(default_tune["value"]), val_score=float(val_best["value"]),
        default_val_score=float(val_default["value"]), val_metrics=val_best, default_val_metrics=val_default,
        tune_windows=tune_names, val_windows=val_names, new_trials=new, baseline_params=_rounded(defaults, space),
    )
    return result


def _rounded(params: dict[str, Any], space: Sequence[Param]) -> dict[str, Any]:
    kinds = {p.name: p.kind for p in space}
    return {k: int(v) if kinds[k] == "int" else float(v) for k, v in sorted(params.items())}


def _overlap(tune: EvalJob, val: EvalJob) -> list[str]:
    """Windows of ``val`` sharing frames of the same sequence folder with a window of ``tune``."""
    out = []
    for v in val.segments:
        for t in tune.segments:
            if Path(v.seq_dir).resolve() != Path(t.seq_dir).resolve():
                continue
            v_last = v.last if v.last is not None else 10**9
            t_last = t.last if t.last is not None else 10**9
            if v.first <= t_last and t.first <= v_last:
                out.append(v.name)
    return sorted(set(out))


def write_best_preset(result: StudyResult, path: str | Path) -> Path:
    """The best parameters as a preset file (``--preset FILE``); the caller writes it under the
    recommended name only when :attr:`StudyResult.beats_baseline`."""
    from cstrack.tracker.presetfile import read_preset_file, write_preset_file
    from cstrack.tune.space import base_preset

    tracker, conf = split_params(result.preset, result.best_params)
    base = base_preset(result.preset)
    if base != result.preset:  # a preset file tuned further: its own overrides under the trial's values
        tracker = {**read_preset_file(result.preset).tracker, **tracker}
    return write_preset_file(path, base, tracker, conf,
                             comment=f"cstrack tune study {result.study}: best of {len(result.trials)} trials, "
                             f"{result.objective} {result.tune_score:.4f} on {', '.join(result.tune_windows)}; "
                             f"val {result.val_score:.4f} (baseline {result.default_val_score:.4f}) on "
                             f"{', '.join(result.val_windows)}")


def catalog_rows(result: StudyResult) -> list[dict[str, Any]]:
    """Rows of the catalog table ``tune_trials``: one per completed trial (``kind="trial"``), then
    the validation of the best (``val_best``) and of the default parameters (``val_default``)."""
    import datetime as dt

    def row(kind: str, trial: int | None, params: dict[str, Any], value: float, metrics: dict[str, Any],
            windows: list[str], started: Any = None, finished: Any = None) -> dict[str, Any]:
        comb = metrics.get("combined", {})
        return {
            "study": result.study, "kind": kind, "trial": trial, "preset": result.preset,
            "objective": result.objective, "value": value,
            "params_json": json.dumps(params, sort_keys=True),
            "per_sequence_json": json.dumps(metrics.get("per_sequence", {}), sort_keys=True),
            "windows": ",".join(windows),
            **{k: comb.get(k) for k in ("HOTA", "MOTA", "IDF1")},
            "IDSW": None if comb.get("IDSW") is None else int(comb["IDSW"]),
            "started_at": _utc(started), "finished_at": _utc(finished) or dt.datetime.now(dt.UTC),
        }

    rows = [row("trial", t["number"], t["params"], t["value"], t["metrics"], result.tune_windows,
                t["started"], t["finished"]) for t in result.trials]
    defaults = result.baseline_params or default_params(result.preset)
    rows.append(row("val_best", result.best_trial, result.best_params, result.val_score, result.val_metrics,
                    result.val_windows))
    rows.append(row("val_default", None, defaults, result.default_val_score, result.default_val_metrics,
                    result.val_windows))
    return rows


def _utc(t: Any) -> Any:
    import datetime as dt

    if t is None:
        return None
    return t.astimezone(dt.UTC) if t.tzinfo else t.replace(tzinfo=dt.datetime.now().astimezone().tzinfo).astimezone(dt.UTC)
