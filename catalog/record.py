"""Evaluate a folder of results and record it in the catalog, in one call: the CLI (``cstrack eval
--catalog``), the evaluate task (:mod:`tasks.catalog`) and the flows use :func:`evaluate_into_catalog`.

The three steps (:func:`cstrack.eval.prepare`, :func:`cstrack.eval.evaluate_prepared`,
:func:`catalog.ingest.ingest_evaluation`) run on the same prepared data, which the event log needs.
Run ids are built by :mod:`catalog.runids`.  :func:`record_tracking` records tracked sequences
without ground truth; :func:`tune_trials_writer` is how a tuning study's rows reach the catalog.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from catalog.ingest import RunInfo
from catalog.runids import tune_run_id
from cstrack.eval.presets import Preset
from cstrack.eval.result import EvalResult
from cstrack.eval.scores import SequenceScore


def evaluate_into_catalog(
    gt_root: str | Path,
    results_dir: str | Path,
    sequences: Sequence[str] | None,
    preset: str | Preset,
    label: str,
    catalog_root: str | Path | None = None,
    run: RunInfo | Callable[[EvalResult], RunInfo | None] | None = None,
    allow_missing: bool = False,
    *,
    workers: int = 1,
    events: bool = True,
    tracks: bool = True,
) -> dict[str, Any]:
    """Evaluate ``results_dir`` (its ``SEQ.txt``, or those of its ``data/``) against ``gt_root``;
    with ``catalog_root`` and ``run`` also write the run into the catalog: the ``runs`` row,
    ``sequence_metrics``, ``events`` (unless not ``events``) and ``tracks`` with the timing
    records beside the results (unless not ``tracks``).

    ``run``: what the run was, or a function of the evaluation giving it (called before anything
    is written; returning None records nothing).

    Returns ``{"label", "preset", "gt_root", "results", "rows", "metrics", "table", "missing",
    "run_id", "counts"}`` (numbers only; ``metrics``: :meth:`EvalResult.to_json`).
    """
    from cstrack.eval import evaluate_prepared, format_table, prepare
    from cstrack.eval.inputs import results_dir as results_folder

    prepared = prepare(gt_root, results_dir, sequences, preset, allow_missing=allow_missing)
    result = evaluate_prepared(prepared, workers)
    out: dict[str, Any] = {
        "label": label, "preset": result.preset, "gt_root": str(gt_root), "results": str(results_dir),
        "rows": result.rows(), "metrics": result.to_json(), "table": format_table(result, title=label),
        "missing": list(result.missing), "run_id": None, "counts": {},
    }
    info = run(result) if callable(run) else run
    if catalog_root is not None and info is not None:
        from catalog.ingest import ingest_evaluation

        folder = results_folder(results_dir)
        out["counts"] = ingest_evaluation(catalog_root, info, result, prepared=prepared if events else None,
                                          results_dir=folder if tracks else None)
        out["run_id"] = info.run_id
    return out


def scores_into_catalog(
    scores: Sequence[SequenceScore],
    label: str,
    gt_root: str | Path,
    results_dir: str | Path,
    catalog_root: str | Path | None = None,
    run: RunInfo | None = None,
    *,
    events: Sequence[Any] | None = None,
    tracks: bool = True,
) -> dict[str, Any]:
    """:func:`evaluate_into_catalog` for sequences already scored one by one (on the Dask workers,
    :mod:`cstrack.eval.scores`): the scores are combined as :func:`cstrack.eval.evaluate` combines
    them (the same numbers) and, with ``catalog_root`` and ``run``, written with the event log
    rows of each sequence (``events``: one DataFrame per score, or None) in one transaction.
    Returns the same dict as :func:`evaluate_into_catalog`."""
    from cstrack.eval import format_table
    from cstrack.eval.inputs import results_dir as results_folder
    from cstrack.eval.scores import combine_scores

    ordered = sorted(range(len(scores)), key=lambda i: scores[i].name)
    result = combine_scores([scores[i] for i in ordered])
    out: dict[str, Any] = {
        "label": label, "preset": result.preset, "gt_root": str(gt_root), "results": str(results_dir),
        "rows": result.rows(), "metrics": result.to_json(), "table": format_table(result, title=label),
        "missing": list(result.missing), "run_id": None, "counts": {},
    }
    if catalog_root is not None and run is not None:
        import pandas as pd

        from catalog.ingest import event_rows, ingest_evaluation

        frames = [events[i] for i in ordered if events[i] is not None] if events is not None else []
        log = pd.concat(frames, ignore_index=True) if frames else event_rows([])
        out["counts"] = ingest_evaluation(catalog_root, run, result, events=log,
                                          results_dir=results_folder(results_dir) if tracks else None)
        out["run_id"] = run.run_id
    return out


def record_tracking(results_dir: str | Path, sequences: Sequence[str], label: str, catalog_root: str | Path,
                    run: RunInfo, frame_rates: Mapping[str, float | None] | None = None) -> dict[str, Any]:
    """Catalogue tracked sequences that have no ground truth (:func:`catalog.ingest.ingest_tracking`):
    returns ``{"label", "run_id", "counts", "rows"}`` (``rows``: the ``sequence_stats`` rows)."""
    from catalog.ingest import ingest_tracking, read_timings, stats_rows

    timings = read_timings(results_dir)
    counts = ingest_tracking(catalog_root, run, results_dir, sequences, timings=timings, frame_rates=frame_rates)
    rows = stats_rows(run.run_id, results_dir, sequences, timings, frame_rates)
    return {"label": label, "run_id": run.run_id, "counts": counts, "rows": rows}


def tune_trials_writer(root: str | Path) -> Callable[[str, list[dict[str, Any]]], str]:
    """``write(study, rows) -> root``: replaces study ``study``'s ``tune_trials`` rows under ``root``
    (run id :func:`catalog.runids.tune_run_id`); what :mod:`cstrack.tune.pipeline` is given."""
    from catalog import store

    def write(study: str, rows: list[dict[str, Any]]) -> str:
        store.write("tune_trials", rows, root, run_id=tune_run_id(study))
        return str(root)

    return write
