"""The one Markdown table writer: the catalog's report tables, the flows' artifacts and the tuning
report all go through :func:`markdown_table`; each caller formats its own cells."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]], right: Sequence[bool] | None = None) -> str:
    """A GitHub Markdown table (no trailing newline): the ``header`` row, the alignment row (``---``,
    or ``---:`` where ``right`` is true), then one line per row of already formatted cells, ``|``
    in a cell escaped."""
    align = ["---:" if r else "---" for r in (right if right is not None else [False] * len(header))]
    if len(align) != len(header):
        raise ValueError(f"markdown_table: {len(header)} columns but {len(align)} alignments")
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(align) + " |"]
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"markdown_table: a row of {len(row)} cells under {len(header)} columns")
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |")
    return "\n".join(lines)
