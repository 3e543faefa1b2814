"""Report figures with matplotlib's Agg canvas (no pyplot, no global backend change).

PNG output is deterministic: the default style is forced, rows are drawn in sorted order, and the
file carries no ``Software``/time metadata.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.style
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from cstrack.fsutil import atomic_path

_STYLE = {"paper": ("o", "0.55"), "external": ("s", "tab:blue"), "ours": ("*", "tab:red")}
_DPI = 100


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=_DPI, metadata={"Software": None})
    return path


def mota_vs_fps(rows: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """One panel per dataset: MOTA (%) against FPS (log scale), markers by source, labelled."""
    pts = [r for r in rows if r.get("MOTA") is not None and r.get("FPS")]
    datasets = sorted({r["Dataset"] for r in pts}) or ["(no rows with FPS)"]
    with matplotlib.style.context("default"):
        fig = Figure(figsize=(5.0 * len(datasets), 4.2))
        axes = fig.subplots(1, len(datasets), squeeze=False)[0]
        for ax, ds in zip(axes, datasets, strict=True):
            for source, (marker, color) in _STYLE.items():
                sel = sorted((r for r in pts if r["Dataset"] == ds and r["Source"] == source),
                             key=lambda r: (r["Method"], r.get("Split", "")))
                if not sel:
                    continue
                x = [float(r["FPS"]) for r in sel]
                y = [float(r["MOTA"]) for r in sel]
                ax.scatter(x, y, marker=marker, color=color, s=60 if marker == "*" else 30, label=source, zorder=3)
                for r, xi, yi in zip(sel, x, y, strict=True):
                    ax.annotate(r["Method"], (xi, yi), xytext=(3, 3), textcoords="offset points", fontsize=6)
            ax.set_xscale("log")
            ax.set_xlabel("FPS (log scale)")
            ax.set_ylabel("MOTA (%)")
            ax.set_title(ds)
            ax.grid(True, which="both", linewidth=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(loc="lower right", fontsize=7)
        fig.tight_layout()
        return _save(fig, Path(path))


def per_sequence_bars(
    sequences: Sequence[str], runs: Sequence[str], values: dict[str, np.ndarray], title: str, path: str | Path
) -> Path:
    """Grouped bars: one panel per metric in ``values`` (``[len(runs), len(sequences)]`` in %),
    sequences on the x axis, one bar per run."""
    metrics = list(values)
    with matplotlib.style.context("default"):
        fig = Figure(figsize=(max(6.0, 0.6 * len(sequences) * max(1, len(runs)) + 4), 2.6 * len(metrics)),
                     layout="constrained")
        axes = fig.subplots(len(metrics), 1, squeeze=False)[:, 0]
        x = np.arange(len(sequences))
        width = 0.8 / max(1, len(runs))
        for ax, metric in zip(axes, metrics, strict=True):
            for k, run in enumerate(runs):
                ax.bar(x + (k - (len(runs) - 1) / 2) * width, values[metric][k], width, label=run)
            ax.set_ylabel(f"{metric} (%)")
            ax.set_xticks(x, sequences, fontsize=7, rotation=20 if len(sequences) > 4 else 0)
            ax.grid(True, axis="y", linewidth=0.3)
        fig.suptitle(title)
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside right upper", fontsize=7)
        return _save(fig, Path(path))
