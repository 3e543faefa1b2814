"""Report figures with matplotlib's Agg canvas (no pyplot, no global backend change).

PNG output is deterministic: the default style is forced, rows are drawn in sorted order, and the
file carries no ``Software``/time metadata.  Every ratio is drawn in **percent** (axis labels say
so); legends sit outside the data and the title; text is at least 8 pt at 100 % zoom.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.style
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from cstrack.fsutil import atomic_path

_STYLE = {"paper": ("o", "0.55"), "external": ("s", "tab:blue"), "ours": ("*", "tab:red")}
_DPI = 100
_FONT = 8            # smallest text, in points: readable at 100 %
_LABEL_CHARS = 28    # longer method names are shortened in labels (the tables carry the full name)


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=_DPI, metadata={"Software": None})
    return path


def _short(name: str, n: int = _LABEL_CHARS) -> str:
    return name if len(name) <= n else name[: n - 1] + "\u2026"


def _fps_ticks(value: float, _pos: int) -> str:
    return f"{value:g}"


def comparable(rows: Sequence[Mapping[str, Any]], key: str = "FPS") -> dict[str, list[Mapping[str, Any]]]:
    """Rows with MOTA and ``key`` by dataset, only for datasets with at least two of them (a panel
    with one point compares nothing)."""
    by: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        if r.get("MOTA") is not None and r.get(key):
            by.setdefault(str(r["Dataset"]), []).append(r)
    return {ds: sel for ds, sel in sorted(by.items()) if len(sel) >= 2}


def mota_vs_fps(rows: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """One panel per dataset with at least two rows having MOTA and FPS: MOTA (%) against FPS (log
    scale, ticks at 1-2-5), markers by source, each point labelled with its method (shortened)."""
    panels = comparable(rows)
    with matplotlib.style.context("default"):
        n = max(1, len(panels))
        fig = Figure(figsize=(5.6 * n, 4.6), layout="constrained")
        axes = fig.subplots(1, n, squeeze=False)[0]
        if not panels:
            axes[0].set_axis_off()
            axes[0].text(0.5, 0.5, "nothing to compare yet:\nno benchmark has two rows with MOTA and FPS",
                         ha="center", va="center", fontsize=10)
        for ax, (ds, pts) in zip(axes, panels.items(), strict=False):
            for source, (marker, color) in _STYLE.items():
                sel = sorted((r for r in pts if r["Source"] == source), key=lambda r: (r["Method"], r.get("Split", "")))
                if not sel:
                    continue
                x = [float(r["FPS"]) for r in sel]
                y = [float(r["MOTA"]) for r in sel]
                ax.scatter(x, y, marker=marker, color=color, s=70 if marker == "*" else 34, label=source, zorder=3)
                for r, xi, yi in zip(sel, x, y, strict=True):
                    ax.annotate(_short(str(r["Method"])), (xi, yi), xytext=(4, 3), textcoords="offset points",
                                fontsize=_FONT, annotation_clip=False)
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.xaxis.set_major_formatter(FuncFormatter(_fps_ticks))
            ax.xaxis.set_minor_formatter(NullFormatter())
            xs = [float(r["FPS"]) for r in pts]
            ax.set_xlim(min(xs) / 1.6, max(xs) * 3.0)  # room on the right for the labels
            ys = [float(r["MOTA"]) for r in pts]
            pad = max(2.0, 0.08 * (max(ys) - min(ys)))
            ax.set_ylim(min(ys) - pad, max(ys) + pad)
            ax.tick_params(labelsize=_FONT + 1)
            ax.set_xlabel("FPS (frames/s, log scale)", fontsize=_FONT + 2)
            ax.set_ylabel("MOTA (%)", fontsize=_FONT + 2)
            ax.set_title(ds, fontsize=_FONT + 3)
            ax.grid(True, which="major", linewidth=0.3)
        handles: dict[str, Any] = {}
        for ax in axes:
            for h, lbl in zip(*ax.get_legend_handles_labels(), strict=True):
                handles.setdefault(lbl, h)
        if handles:
            fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncols=len(handles),
                       fontsize=_FONT + 1, title="source", title_fontsize=_FONT + 1)
        fig.suptitle("MOTA against speed (private detections; MOTA in %)", fontsize=_FONT + 4)
        return _save(fig, Path(path))


def per_sequence_bars(
    sequences: Sequence[str], runs: Sequence[str], values: dict[str, np.ndarray], title: str, path: str | Path
) -> Path:
    """Grouped bars: one panel per metric in ``values`` (``[len(runs), len(sequences)]`` in %),
    sequences on the x axis, one bar per run; the legend is under the panels, outside the data
    and the title, in as many columns as fit."""
    metrics = list(values)
    with matplotlib.style.context("default"):
        width_in = max(7.0, 0.45 * len(sequences) * max(1, len(runs)) + 2.0)
        ncols = max(1, min(len(runs), int(width_in // 3.2)))
        legend_rows = -(-len(runs) // ncols)
        fig = Figure(figsize=(width_in, 2.4 * len(metrics) + 0.8 + 0.22 * legend_rows), layout="constrained")
        axes = fig.subplots(len(metrics), 1, squeeze=False, sharex=True)[:, 0]
        x = np.arange(len(sequences))
        width = 0.8 / max(1, len(runs))
        for ax, metric in zip(axes, metrics, strict=True):
            for k, run in enumerate(runs):
                ax.bar(x + (k - (len(runs) - 1) / 2) * width, values[metric][k], width, label=_short(run, 48))
            ax.set_ylabel(f"{metric} (%)", fontsize=_FONT + 1)
            ax.tick_params(labelsize=_FONT)
            ax.grid(True, axis="y", linewidth=0.3)
            ax.axhline(0, color="0.3", linewidth=0.6)
        axes[-1].set_xticks(x, sequences, fontsize=_FONT, rotation=20 if len(sequences) > 4 else 0,
                            ha="right" if len(sequences) > 4 else "center")
        fig.suptitle(title, fontsize=_FONT + 3)
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=ncols, fontsize=_FONT)
        return _save(fig, Path(path))


def compare_trackers(rows: Sequence[Mapping[str, Any]], dataset: str, path: str | Path) -> Path:
    """The multi-tracker comparison of one benchmark (like TrackEval's comparison plots): left,
    DetA against AssA with HOTA iso-lines (HOTA = sqrt(DetA * AssA)), one labelled point per method;
    right, HOTA / MOTA / IDF1 bars per method.  ``rows``: ``Method``, ``Source`` and the metrics in %."""
    rows = sorted(rows, key=lambda r: (-(r.get("HOTA") or -1e9), str(r["Method"])))
    with matplotlib.style.context("default"):
        fig = Figure(figsize=(12.0, 0.9 + max(3.8, 0.38 * len(rows) + 1.2)), layout="constrained")
        left, right = fig.subplots(1, 2, width_ratios=(1.0, 1.15))
        grid = np.linspace(1.0, 100.0, 200)
        da, aa = np.meshgrid(grid, grid)
        levels = list(range(10, 100, 10))
        cs = left.contour(da, aa, np.sqrt(da * aa), levels=levels, colors="0.75", linewidths=0.6)
        left.clabel(cs, fmt="HOTA %d", fontsize=_FONT - 1)
        has = [r for r in rows if r.get("DetA") is not None and r.get("AssA") is not None]
        placed: list[tuple[float, float]] = []
        for r in has:
            marker, color = _STYLE.get(str(r["Source"]), ("o", "k"))
            left.scatter([r["DetA"]], [r["AssA"]], marker=marker, color=color, s=60, zorder=3)
            # points on (nearly) the same spot: their labels are stacked instead of drawn over each other
            near = sum(abs(r["DetA"] - a) < 0.6 and abs(r["AssA"] - b) < 0.6 for a, b in placed)
            placed.append((r["DetA"], r["AssA"]))
            left.annotate(_short(str(r["Method"])), (r["DetA"], r["AssA"]), xytext=(5, 3 - 11 * near),
                          textcoords="offset points", fontsize=_FONT, annotation_clip=False)
        if has:
            lo = max(0.0, min(min(r["DetA"], r["AssA"]) for r in has) - 10)
            hi = min(100.0, max(max(r["DetA"], r["AssA"]) for r in has) + 10)
            left.set_xlim(lo, hi)
            left.set_ylim(lo, hi)
        else:
            left.text(0.5, 0.5, "no HOTA sub-metrics (imported rows)", transform=left.transAxes, ha="center")
        left.set_xlabel("DetA (%)", fontsize=_FONT + 1)
        left.set_ylabel("AssA (%)", fontsize=_FONT + 1)
        left.set_title("detection vs association", fontsize=_FONT + 2)
        left.tick_params(labelsize=_FONT)
        left.grid(True, linewidth=0.3)

        names = [_short(str(r["Method"]), 36) for r in rows]
        y = np.arange(len(rows))
        h = 0.26
        for k, metric in enumerate(("HOTA", "MOTA", "IDF1")):
            vals = [np.nan if r.get(metric) is None else float(r[metric]) for r in rows]
            right.barh(y + (k - 1) * h, vals, h, label=metric)
        right.set_yticks(y, names, fontsize=_FONT)
        right.invert_yaxis()
        right.set_xlabel("%", fontsize=_FONT + 1)
        right.set_title("HOTA, MOTA, IDF1 per method (best HOTA first)", fontsize=_FONT + 2)
        right.tick_params(axis="x", labelsize=_FONT)
        right.grid(True, axis="x", linewidth=0.3)
        right.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=_FONT, borderaxespad=0.0)
        fig.suptitle(f"{dataset}: tracker comparison (COMBINED, in %)", fontsize=_FONT + 4)
        return _save(fig, Path(path))


def nightly_history(nights: Sequence[Mapping[str, Any]], title: str, path: str | Path) -> Path:
    """A series of nights: each metric (in %) per night, with the 95 % paired bootstrap interval of
    the change from the previous night drawn as an error bar around the night's value.  ``nights``:
    ``night`` (label), ``<metric>`` (%), ``<metric>_low`` / ``<metric>_high`` (delta bounds, points)."""
    metrics = [m for m in ("MOTA", "IDF1", "HOTA") if any(n.get(m) is not None for n in nights)]
    with matplotlib.style.context("default"):
        fig = Figure(figsize=(max(6.5, 0.7 * len(nights) + 3.0), 3.8), layout="constrained")
        ax = fig.subplots()
        x = np.arange(len(nights))
        for k, m in enumerate(metrics):
            y = np.array([np.nan if n.get(m) is None else float(n[m]) for n in nights])
            lo = np.array([0.0 if n.get(f"{m}_low") is None else -float(n[f"{m}_low"]) for n in nights])
            hi = np.array([0.0 if n.get(f"{m}_high") is None else float(n[f"{m}_high"]) for n in nights])
            # the interval of the delta, placed around the change: [value + low - delta, value + high - delta]
            delta = np.array([0.0 if n.get(f"{m}_delta") is None else float(n[f"{m}_delta"]) for n in nights])
            err = np.vstack([np.maximum(lo + delta, 0.0), np.maximum(hi - delta, 0.0)])
            ax.errorbar(x + (k - 1) * 0.08, y, yerr=err, marker="o", ms=4, capsize=3, linewidth=1.0, label=m)
        ax.set_xticks(x, [str(n["night"]) for n in nights], fontsize=_FONT, rotation=30 if len(nights) > 6 else 0,
                      ha="right" if len(nights) > 6 else "center")
        ax.set_ylabel("%", fontsize=_FONT + 1)
        ax.tick_params(axis="y", labelsize=_FONT)
        ax.grid(True, linewidth=0.3)
        fig.legend(loc="outside right center", fontsize=_FONT)
        fig.suptitle(title, fontsize=_FONT + 3)
        return _save(fig, Path(path))
