"""Evaluate a folder of results and record it in the catalog: thin tasks over :mod:`catalog.record`.

A track-all run spanning several datasets becomes one catalog run per (dataset, split): the
catalog's ``runs`` row has one dataset, split, detection mode and preset.  Its ``run_id`` is derived
from content (:func:`catalog.runids.catalog_run_id`): re-ingesting the same tracking records (a
fully cached re-run) replaces the catalog run instead of adding one, while a new tracking execution
(new timing records, even with identical boxes) is a new run in the history.
"""

from __future__ import annotations

from typing import Any

from prefect import task

from catalog.ingest import RunInfo
from catalog.record import evaluate_into_catalog, record_tracking
from tasks.remote import staged_results


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
    """:func:`catalog.record.evaluate_into_catalog` as a task (see there); ground truth and results
    in a bucket are evaluated from a local copy of what evaluation reads (:mod:`tasks.remote`)."""
    with staged_results(gt_root, results_dir, sequences) as (gt_local, results_local):
        return evaluate_into_catalog(gt_local, results_local, sequences, preset, label, catalog_root, run,
                                     allow_missing)


@task(name="record-tracking", task_run_name="record {label}")
def record_tracking_task(
    results_dir: str,
    sequences: list[str],
    label: str,
    catalog_root: str,
    run: RunInfo,
    frame_rates: dict[str, float | None] | None = None,
) -> dict[str, Any]:
    """:func:`catalog.record.record_tracking` as a task: returns ``{"label", "run_id", "counts", "rows"}``."""
    with staged_results(None, results_dir, sequences) as (_, results_local):
        return record_tracking(results_local, sequences, label, catalog_root, run, frame_rates)
