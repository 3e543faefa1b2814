"""Evaluation task: one :func:`cstrack.eval.evaluate` call over a folder of results."""

from __future__ import annotations

from typing import Any

from prefect import task


@task(name="evaluate", task_run_name="evaluate {label}")
def evaluate_results(
    gt_root: str, results: str, sequences: list[str] | None, preset: str, label: str, allow_missing: bool = False
) -> dict[str, Any]:
    """Metrics of ``results`` (``SEQ.txt`` files) against ``gt_root`` with the server's ``preset``.

    Returns ``{"label", "preset", "gt_root", "results", "rows": [per sequence + COMBINED], "table",
    "missing"}`` (small: numbers only).
    """
    from cstrack.eval import evaluate, format_table

    res = evaluate(gt_root, results, sequences, preset, allow_missing=allow_missing)
    return {
        "label": label,
        "preset": res.preset,
        "gt_root": gt_root,
        "results": results,
        "rows": res.rows(),
        "table": format_table(res, title=label),
        "missing": list(res.missing),
    }
