"""The study's markdown artifact and plot: objective per trial, best so far, parameter importance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cstrack.fsutil import atomic_path, atomic_write_text
from cstrack.markdown import markdown_table
from cstrack.tune.study import StudyResult


def importances(result: StudyResult, study_dir: str | Path) -> dict[str, float]:
    """Optuna's PED-ANOVA importance of each parameter (empty with fewer than 3 trials)."""
    if len(result.trials) < 3:
        return {}
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(Path(study_dir) / "journal.log")))
    study = optuna.load_study(study_name=result.study, storage=storage)
    try:
        return {k: float(v) for k, v in optuna.importance.get_param_importances(study).items()}
    except (RuntimeError, ValueError):  # too few distinct values to rank
        return {}


def plot(result: StudyResult, imp: dict[str, float], path: str | Path) -> Path:
    """PNG: objective per trial with the best so far (left), parameter importance (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nums = [t["number"] for t in result.trials]
    vals = [t["value"] for t in result.trials]
    best, run = [], float("-inf")
    for v in vals:
        run = max(run, v)
        best.append(run)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax1.scatter(nums, vals, s=14, label="trial")
    ax1.step(nums, best, where="post", color="C1", label="best so far")
    ax1.axhline(result.default_tune_score, color="grey", ls="--", lw=1, label="baseline (checkpoint settings)")
    ax1.set_xlabel("trial")
    ax1.set_ylabel(f"{result.objective} (tune windows)")
    ax1.set_title(f"study {result.study}")
    ax1.legend(loc="lower right", fontsize=8)
    names = sorted(imp, key=lambda n: imp[n]) if imp else []
    ax2.barh(names, [imp[n] for n in names], color="C2")
    ax2.set_xlabel("importance (PED-ANOVA)")
    ax2.set_title("parameter importance" if imp else "parameter importance (needs >= 3 trials)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return Path(path)


def markdown(result: StudyResult, imp: dict[str, float], plot_name: str = "plot.png") -> str:
    """The study report: setup, leakage-guarded scores, best parameters, importance, every trial."""
    from cstrack.tune.space import default_params

    obj = result.objective
    defaults = result.baseline_params or default_params(result.preset)
    if result.beats_baseline:
        verdict = (f"**Recommended**: the best trial beats the baseline on validation "
                   f"({result.val_score:.4f} > {result.default_val_score:.4f}); `best_preset.yaml` holds it.")
    else:
        verdict = (f"**Not recommended**: the best trial does not beat the baseline on validation "
                   f"({result.val_score:.4f} <= {result.default_val_score:.4f}); keep the checkpoint's settings. "
                   "No `best_preset.yaml` is written (the trial's values are in `best_trial_preset.yaml`).")
    lines = [
        f"# Tuning study `{result.study}`",
        f"Preset `{result.preset}`, objective {obj} (maximised), {len(result.trials)} completed trials "
        f"({result.new_trials} new in this run), TPE sampler.",
        f"- tuned on: {', '.join(result.tune_windows)}",
        f"- validated on: {', '.join(result.val_windows)} (scored once, after the search)",
        f"- baseline: the preset's values with the checkpoint's detection threshold "
        f"(conf_thres {_fmt(defaults.get('conf_thres'))}): what runs without tuning",
        f"- scores are {obj} as fractions (0-1)",
        "",
        verdict,
        "",
        markdown_table(["parameters", f"tune {obj}", f"val {obj}"], [
            [f"best (trial {result.best_trial})", f"{result.tune_score:.4f}", f"{result.val_score:.4f}"],
            ["baseline", f"{result.default_tune_score:.4f}", f"{result.default_val_score:.4f}"],
        ]),
        "",
        markdown_table(["parameter", "baseline", "best", "importance"],
                       [[k, _fmt(defaults.get(k)), _fmt(v), _fmt(imp.get(k))] for k, v in result.best_params.items()]),
        "",
        f"![objective per trial and parameter importance]({plot_name})",
        "",
        markdown_table(["trial", obj, "MOTA", "IDF1", "IDSW"], [
            [str(t["number"]), f"{t['value']:.4f}", *(_fmt(t["metrics"].get("combined", {}).get(k))
                                                       for k in ("MOTA", "IDF1", "IDSW"))]
            for t in result.trials
        ]),
    ]
    return "\n".join(lines) + "\n"


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def write_report(result: StudyResult, study_dir: str | Path) -> dict[str, str]:
    """Write ``report.md`` and ``plot.png`` into ``study_dir``; returns their paths."""
    d = Path(study_dir)
    imp = importances(result, d)
    png = plot(result, imp, d / "plot.png")
    md = atomic_write_text(d / "report.md", markdown(result, imp, png.name))
    return {"report": str(md), "plot": str(png)}
