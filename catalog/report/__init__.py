"""``cstrack report``: regenerate the paper's tables and figures from the catalog.

:func:`build_report` writes into ``out_dir``:

- ``table_vi.{md,csv,tex}``: Table VI style comparison (paper rows, imported results, our runs);
- ``ablations.{md,csv,tex}``: Tables I, II, III and V (paper rows, our runs grouped by setting);
- ``upper_bound.{md,csv,tex}``: Table VIII (private vs ground-truth detections per variant);
- ``report.md``: the three Markdown tables in one file;
- ``mota_vs_fps.png`` (one panel per benchmark with two rows to compare) and
  ``per_sequence_<DATASET>.png`` (MOTA, IDF1, HOTA per sequence and run);
- per benchmark, ``compare_<DATASET>.png`` (the multi-tracker comparison: DetA vs AssA with HOTA
  iso-lines, HOTA/MOTA/IDF1 bars) and ``summary_<DATASET>.txt`` (TrackEval-style summary text);
- ``nightly_<series>.png``: each nightly series with the intervals of its changes;
- with ``html=True``, ``report.html``: one self-contained page of all of it (:mod:`catalog.report.html`).

Every table and figure shows ratios in percent and says so.  The tables show each setup once, at
its latest run (:func:`catalog.report.tables.latest_per_setup`).  Everything is deterministic: the
same catalog gives byte-identical files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from catalog import store
from catalog.report.history import Series, nightly_series
from catalog.report.plots import compare_trackers, mota_vs_fps, nightly_history, per_sequence_bars
from catalog.report.render import to_csv, to_latex, to_markdown
from catalog.report.tables import (
    benchmark_rows,
    read_paper,
    run_summary,
    summary_text,
    table_ablations,
    table_upper_bound,
    table_vi,
)
from cstrack.errors import ConfigError, DatasetError
from cstrack.fsutil import atomic_write_text
from cstrack.paths import shared_dir

__all__ = ["build_report"]


def default_reference_dir() -> Path:
    """``shared/reference`` (``$CSTRACK_SHARED`` overrides), where the paper's tables are."""
    return shared_dir() / "reference"


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in str(name))


def build_report(
    root: str | Path | None, out_dir: str | Path, reference_dir: str | Path | None = None, html: bool = False
) -> list[Path]:
    """Write the tables and figures of the catalog at ``root`` into ``out_dir``; returns the files
    (``html``: also ``report.html``, the self-contained page, listed last).

    ``reference_dir`` holds ``paper_table_vi.csv`` and ``paper_ablations.csv`` (default:
    :func:`default_reference_dir`); without them the tables show our runs only.  A catalog that
    does not exist or holds no run is a :class:`DatasetError` (nothing is written).
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out: {out} is a file, not a folder")
    fs, base = store.filesystem(root)
    if not fs.isdir(base):
        raise DatasetError("catalog not found (no such folder)", base)
    runs = store.load("runs", root=root)
    if runs.empty:
        raise DatasetError("the catalog holds no run: ingest one first (cstrack eval ... --catalog ROOT)", base)
    out.mkdir(parents=True, exist_ok=True)
    metrics = store.load("sequence_metrics", root=root)
    summary = run_summary(runs, metrics)
    paper_vi, paper_ab = read_paper(default_reference_dir() if reference_dir is None else reference_dir)
    tables = [table_vi(summary, paper_vi), table_ablations(summary, paper_ab), table_upper_bound(summary, paper_ab)]
    written: list[Path] = []
    for t in tables:
        for ext, render in (("md", to_markdown), ("csv", to_csv), ("tex", to_latex)):
            written.append(atomic_write_text(out / f"{t.name}.{ext}", render(t)))
    written.append(atomic_write_text(out / "report.md", "# CSTrack results\n\n" + "\n".join(to_markdown(t) for t in tables)))
    written.append(mota_vs_fps(tables[0].rows, out / "mota_vs_fps.png"))
    per_seq = _per_sequence_figures(summary, metrics, out)
    written += per_seq
    benches = benchmark_rows(summary)
    compare: dict[str, Path] = {}
    for dataset, rows in benches.items():
        written.append(atomic_write_text(out / f"summary_{_safe(dataset)}.txt", summary_text(dataset, rows)))
        if len(rows) >= 2:
            compare[dataset] = compare_trackers(rows, dataset, out / f"compare_{_safe(dataset)}.png")
            written.append(compare[dataset])
    series = nightly_series(runs, metrics)
    history: dict[tuple[str, ...], Path] = {}
    for s in series:
        if len(s.nights) >= 2:
            nights = [{"night": n["started_at"].strftime("%m-%d %H:%M"),
                       **{k: None if v is None else 100.0 * float(v) for k, v in n.items()
                          if k.split("_")[0] in ("MOTA", "IDF1", "HOTA")}} for n in s.nights]
            history[s.key] = nightly_history(nights, f"nightly: {s.title} (in %)",
                                             out / f"nightly_{_safe('_'.join(k for k in s.key if k))}.png")
            written.append(history[s.key])
    if html:
        written.append(_write_html(root, out, runs, tables, benches, compare, per_seq, series, history))
    return written


def _write_html(root: str | Path | None, out: Path, runs: pd.DataFrame, tables: list[Any],
                benches: dict[str, list[dict[str, Any]]], compare: dict[str, Path], per_seq: list[Path],
                series: list[Series], history: dict[tuple[str, ...], Path]) -> Path:
    from catalog.report import html as H
    from catalog.report.tables import BENCHMARK_COLUMNS

    intro = (f"Generated from the catalog <code>{H.html.escape(str(root or store.DEFAULT_ROOT))}</code>: "
             f"{len(runs)} runs. Ratios are shown in <b>percent</b> (the catalog stores fractions); the tables "
             "show each setup once, at its latest run. This page is self-contained (no network).")
    bench_parts = []
    for dataset, rows in benches.items():
        cols = ["Method", "Source", "Split", *BENCHMARK_COLUMNS]
        cells = [[r["Method"], r["Source"], r["Split"] or "-",
                  *("-" if r.get(c) is None else f"{r[c]:.0f}" if c in ("IDSW", "FP", "FN", "Frag")
                    else f"{r[c]:.1f}" for c in BENCHMARK_COLUMNS)] for r in rows]
        bench_parts.append(f"<h3>{H.html.escape(dataset)}</h3>"
                           + H.table_html(cols, cells, text_cols=(0, 1, 2),
                                          caption="COMBINED metrics (HOTA..IDR, MT, ML in %; FPS frames/s), "
                                                  "best HOTA first"))
        if dataset in compare:
            bench_parts.append(H.figure_html(compare[dataset], f"{dataset} tracker comparison",
                                             "DetA against AssA with HOTA iso-lines; HOTA, MOTA, IDF1 per method"))
    figures = [H.figure_html(out / "mota_vs_fps.png", "MOTA against FPS",
                             "One panel per benchmark with two rows to compare (paper, imported, ours).")]
    figures += [H.figure_html(p, p.stem, "MOTA, IDF1, HOTA per sequence and run (in %)") for p in per_seq]
    sections = [
        ("benchmarks", "Benchmarks", "".join(bench_parts) or '<p class="note">No run with private or public '
         "detections yet (runs on ground-truth boxes measure association only: Table VIII and the nightly "
         "history show them).</p>"),
        ("tables", "Paper tables", "".join(H.paper_table_html(t) for t in tables)),
        ("figures", "Figures", "".join(figures)),
        ("nightly", "Nightly history", H.history_html(series, history)),
    ]
    return atomic_write_text(out / "report.html", H.page("CSTrack results", intro, sections))


def _per_sequence_figures(summary: pd.DataFrame, metrics: pd.DataFrame, out: Path) -> list[Path]:
    files = []
    per_seq = metrics[metrics["sequence"] != "COMBINED"]
    for dataset in sorted(summary["dataset"].unique()):
        runs = summary[summary["dataset"] == dataset]
        methods = list(runs["method"])
        labels = [f"{m} [{r}]" if methods.count(m) > 1 else str(m) for m, r in zip(methods, runs["run_id"], strict=True)]
        sub = per_seq[per_seq["run_id"].isin(runs["run_id"])]
        sequences = sorted(sub["sequence"].unique())
        if not sequences:
            continue
        values = {}
        for metric in ("MOTA", "IDF1", "HOTA"):
            grid = np.full((len(runs), len(sequences)), np.nan)
            for i, rid in enumerate(runs["run_id"]):
                rows = sub[sub["run_id"] == rid].set_index("sequence")[metric]
                for j, s in enumerate(sequences):
                    if s in rows.index:
                        grid[i, j] = 100.0 * float(rows[s])
            values[metric] = grid
        safe = _safe(dataset)
        files.append(per_sequence_bars(sequences, labels, values, f"{dataset}: per-sequence metrics",
                                       out / f"per_sequence_{safe}.png"))
    return files
