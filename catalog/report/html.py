"""``cstrack report --html``: one self-contained HTML page of the catalog.

The page holds the per-benchmark summaries, the paper's tables, every figure (PNG inlined as
``data:`` URIs) and the nightly history with its confidence intervals.  It loads nothing from the
network and runs no script, so it opens anywhere (a mail attachment, an artifact store) and looks
the same offline.  Ratios are shown in percent; every table header says so.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from catalog.report.history import METRICS, Series
from catalog.report.render import cell
from catalog.report.tables import Table

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:2rem auto;
max-width:1200px;padding:0 1rem;color:#1d1d1f;line-height:1.4}
h1{font-size:1.7rem;margin-bottom:.2rem}h2{margin-top:2.4rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
h3{margin-top:1.6rem}p.note{color:#555;font-size:.92rem;margin:.2rem 0 .8rem}
nav a{margin-right:1rem}table{border-collapse:collapse;margin:.5rem 0 1rem;font-size:.88rem}
th,td{border:1px solid #d8d8d8;padding:.25rem .5rem;text-align:right;white-space:nowrap}
th{background:#f3f4f6}td.t,th.t{text-align:left}tr:nth-child(even) td{background:#fafafa}
tr.group td{border-top:2px solid #999}img{max-width:100%;height:auto;border:1px solid #eee;margin:.4rem 0}
.scroll{overflow-x:auto;max-width:100%}.up{color:#0a7a32}.down{color:#b3261e}figure{margin:0 0 1.2rem}figcaption{color:#555;font-size:.88rem}
"""


def data_uri(png: Path) -> str:
    """``data:image/png;base64,...`` of the file ``png``."""
    return "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode("ascii")


def _esc(v: Any) -> str:
    return html.escape("" if v is None else str(v))


def table_html(headers: Sequence[str], rows: Sequence[Sequence[Any]], text_cols: Sequence[int] = (0,),
               caption: str | None = None, groups: Sequence[bool] | None = None) -> str:
    """A plain HTML table (``text_cols`` left-aligned; ``groups[i]``: row ``i`` starts a section)."""
    cls = lambda j: ' class="t"' if j in text_cols else ""  # noqa: E731
    head = "".join(f"<th{cls(j)}>{_esc(h)}</th>" for j, h in enumerate(headers))
    body = []
    for i, row in enumerate(rows):
        tr = ' class="group"' if groups is not None and groups[i] and i else ""
        body.append(f"<tr{tr}>" + "".join(f"<td{cls(j)}>{_esc(v)}</td>" for j, v in enumerate(row)) + "</tr>")
    cap = f"<caption>{_esc(caption)}</caption>" if caption else ""
    return (f'<div class="scroll"><table>{cap}<thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
            "</div>")


def paper_table_html(t: Table) -> str:
    """A :class:`~catalog.report.tables.Table` (percent columns already in %) as HTML."""
    texts = [j for j, c in enumerate(t.columns) if c.kind == "text"]
    rows = [[cell(r, c, "-") for c in t.columns] for r in t.rows]
    groups = None
    if t.group is not None:
        vals = [r.get(t.group) for r in t.rows]
        groups = [i > 0 and vals[i] != vals[i - 1] for i in range(len(vals))]
    return f"<h3>{_esc(t.title)}</h3>" + table_html([c.name for c in t.columns], rows, texts, groups=groups)


def _pct(v: Any, digits: int = 1) -> str:
    return "-" if v is None else f"{100.0 * float(v):.{digits}f}"


def _signed_pct(v: Any) -> str:
    return "-" if v is None else f"{100.0 * float(v):+.2f}"


def history_html(series: Sequence[Series], figures: Mapping[tuple[str, ...], Path]) -> str:
    """The nightly history: per series a table of nights with each night's change in MOTA / IDF1 /
    HOTA and its 95 % paired bootstrap interval (points), and the series' figure."""
    if not series:
        return ('<p class="note">No nightly runs yet: the <code>nightly</code> flow (or track-all with tag '
                "<code>nightly</code>) adds one run per night.</p>")
    parts = ['<p class="note">One row per night (a night served from the cache is a night too). '
             "Metrics in %; a change is the mean of the per-sequence changes from the previous night, in "
             "percentage points, with its 95 % paired bootstrap interval over sequences (10,000 seeded "
             "resamples, <code>catalog/stats.py</code>). An interval that excludes 0 is coloured.</p>"]
    for s in series:
        headers = ["night (UTC)", "run id", "label", "tracked", "cached", *(f"{m} %" for m in METRICS), "fps",
                   *(f"{m} change [95 % CI]" for m in METRICS)]
        rows = []
        for n in s.nights:
            changes = []
            for m in METRICS:
                if f"{m}_delta" not in n:
                    changes.append("-")
                    continue
                changes.append(f"{_signed_pct(n[f'{m}_delta'])} [{_signed_pct(n[f'{m}_low'])}, "
                               f"{_signed_pct(n[f'{m}_high'])}]")
            rows.append([n["started_at"].strftime("%Y-%m-%d %H:%M"), n["run_id"], n["label"],
                         "-" if n["tracked"] is None else n["tracked"], "-" if n["cached"] is None else n["cached"],
                         *(_pct(n[m]) for m in METRICS), "-" if n["fps"] is None else f"{n['fps']:.1f}", *changes])
        table = table_html(headers, rows, text_cols=(0, 1, 2))
        # colour the changes whose interval excludes zero (plain string work: the cells are escaped text)
        for n in s.nights:
            for m in METRICS:
                lo, hi = n.get(f"{m}_low"), n.get(f"{m}_high")
                if lo is None or hi is None or lo <= 0 <= hi:
                    continue
                text = _esc(f"{_signed_pct(n[f'{m}_delta'])} [{_signed_pct(lo)}, {_signed_pct(hi)}]")
                css = "up" if lo > 0 else "down"
                table = table.replace(f"<td>{text}</td>", f'<td class="{css}">{text}</td>', 1)
        parts.append(f"<h3>{_esc(s.title)}</h3>{table}")
        fig = figures.get(s.key)
        if fig is not None:
            parts.append(f'<figure><img alt="nightly history {_esc(s.title)}" src="{data_uri(fig)}">'
                         "<figcaption>Each night's value; the bar is the 95 % interval of its change from the "
                         "previous night.</figcaption></figure>")
    return "".join(parts)


def page(title: str, intro: str, sections: Sequence[tuple[str, str, str]]) -> str:
    """The whole document: ``sections`` are ``(anchor, heading, html body)``."""
    nav = "".join(f'<a href="#{a}">{_esc(h)}</a>' for a, h, _ in sections)
    body = "".join(f'<section id="{a}"><h2>{_esc(h)}</h2>{b}</section>' for a, h, b in sections)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body><h1>{_esc(title)}</h1>"
            f'<p class="note">{intro}</p><nav>{nav}</nav>{body}</body></html>\n')


def figure_html(png: Path, alt: str, caption: str = "") -> str:
    cap = f"<figcaption>{_esc(caption)}</figcaption>" if caption else ""
    return f'<figure><img alt="{_esc(alt)}" src="{data_uri(png)}">{cap}</figure>'
