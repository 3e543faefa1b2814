"""Evaluate a folder of results and record it in the catalog (runs, sequence_metrics, events, tracks).

Adapter: the library has the three steps (:func:`cstrack.eval.prepare`,
:func:`cstrack.eval.evaluate_prepared`, :func:`catalog.ingest.ingest_evaluation`) but no single
call doing them on the same prepared data, which the event log needs; :func:`evaluate_into_catalog`
is that call, and the task wraps it.

A track-all run spanning several datasets becomes one catalog run per (dataset, split): the
catalog's ``runs`` row has one dataset, split, detection mode and preset.  Its ``run_id`` is derived
from content (:func:`catalog_run_id`): re-ingesting the same tracking records (a fully cached
re-run) replaces the catalog run instead of adding one, while a new tracking execution (new
timing records, even with identical boxes) is a new run in the history.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from prefect import task

from catalog.ingest import RunInfo
from cstrack.fsutil import stable_hash

_RUN_ID_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


def catalog_run_id(tracker: str, dataset: str, split: str | None, content: Any) -> str:
    """``<tracker>-<dataset>[-<split>]-<12 hex>``: the catalog's run id convention, hashed over
    ``content`` (for our runs: the tracking records, the config and the preset)."""
    parts = [tracker, dataset] + ([split] if split else [])
    stem = _RUN_ID_CHARS.sub("-", "-".join(parts)).strip("-.")
    return f"{stem[:150]}-{stable_hash(content)[:12]}"


def evaluate_into_catalog(
    gt_root: str,
    results_dir: str,
    sequences: Sequence[str] | None,
    preset: str,
    label: str,
    catalog_root: str | None = None,
    run: RunInfo | None = None,
    allow_missing: bool = False,
) -> dict[str, Any]:
    """Evaluate ``results_dir`` against ``gt_root``; with ``catalog_root`` and ``run`` also write
    the run into the catalog.

    Returns ``{"label", "preset", "rows", "table", "missing", "run_id", "counts"}`` (numbers only).
    """
    from cstrack.eval import evaluate_prepared, format_table, prepare

    prepared = prepare(gt_root, results_dir, sequences, preset, allow_missing=allow_missing)
    result = evaluate_prepared(prepared)
    out: dict[str, Any] = {
        "label": label, "preset": result.preset, "gt_root": gt_root, "results": results_dir,
        "rows": result.rows(), "table": format_table(result, title=label), "missing": list(result.missing),
        "run_id": None, "counts": {},
    }
    if catalog_root is not None and run is not None:
        from catalog.ingest import ingest_evaluation

        out["counts"] = ingest_evaluation(catalog_root, run, result, prepared=prepared, results_dir=results_dir)
        out["run_id"] = run.run_id
    return out


@task(name="evaluate", task_run_name="evaluate {label}")
def evaluate_task(
    gt_root: str,
    results_dir: str,
    sequences: list[str] | None,
    preset: str,
    label: str,
    catalog_root: str | None = None,
    run: RunInfo | None = None,
    allow_missing: bool = False,
) -> dict[str, Any]:
    """:func:`evaluate_into_catalog` as a task (see there)."""
    return evaluate_into_catalog(gt_root, results_dir, sequences, preset, label, catalog_root, run, allow_missing)


@task(name="record-tracking", task_run_name="record {label}")
def record_tracking_task(
    results_dir: str,
    sequences: list[str],
    label: str,
    catalog_root: str,
    run: RunInfo,
    frame_rates: dict[str, float | None] | None = None,
) -> dict[str, Any]:
    """Catalogue tracked sequences that have no ground truth (:func:`catalog.ingest.ingest_tracking`):
    returns ``{"label", "run_id", "counts", "rows"}`` (``rows``: the ``sequence_stats`` rows)."""
    from catalog.ingest import ingest_tracking, read_timings, stats_rows

    timings = read_timings(results_dir)
    counts = ingest_tracking(catalog_root, run, results_dir, sequences, timings=timings, frame_rates=frame_rates)
    rows = stats_rows(run.run_id, results_dir, sequences, timings, frame_rates)
    return {"label": label, "run_id": run.run_id, "counts": counts, "rows": rows}
