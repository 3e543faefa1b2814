"""``cstrack report``: regenerate the paper's tables and figures from the catalog.

:func:`build_report` writes into ``out_dir``:

- ``table_vi.{md,csv,tex}``: Table VI style comparison (paper rows, imported results, our runs);
- ``ablations.{md,csv,tex}``: Tables I, II, III and V (paper rows, our runs grouped by setting);
- ``upper_bound.{md,csv,tex}``: Table VIII (private vs ground-truth detections per variant);
- ``report.md``: the three Markdown tables in one file;
- ``mota_vs_fps.png`` and ``per_sequence_<DATASET>.png`` (MOTA, IDF1, HOTA per sequence and run).

Everything is deterministic: the same catalog gives byte-identical files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from catalog import store
from catalog.report.plots import mota_vs_fps, per_sequence_bars
from catalog.report.render import to_csv, to_latex, to_markdown
from catalog.report.tables import read_paper, run_summary, table_ablations, table_upper_bound, table_vi
from cstrack.errors import ConfigError, DatasetError
from cstrack.fsutil import atomic_write_text
from cstrack.paths import shared_dir

__all__ = ["build_report"]


def default_reference_dir() -> Path:
    """``shared/reference`` (``$CSTRACK_SHARED`` overrides), where the paper's tables are."""
    return shared_dir() / "reference"


def build_report(
    root: str | Path | None, out_dir: str | Path, reference_dir: str | Path | None = None
) -> list[Path]:
    """Write the tables and figures of the catalog at ``root`` into ``out_dir``; returns the files.

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
    written += _per_sequence_figures(summary, metrics, out)
    return written


def _per_sequence_figures(summary: pd.DataFrame, metrics: pd.DataFrame, out: Path) -> list[Path]:
    files = []
    per_seq = metrics[metrics["sequence"] != "COMBINED"]
    for dataset in sorted(summary["dataset"].unique()):
        runs = summary[summary["dataset"] == dataset]
        labels = [f"{m} [{r}]" for m, r in zip(runs["method"], runs["run_id"], strict=True)]
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
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in str(dataset))
        files.append(per_sequence_bars(sequences, labels, values, f"{dataset}: per-sequence metrics",
                                       out / f"per_sequence_{safe}.png"))
    return files
