"""Publishing: Markdown for a run's outcome and a task that makes it a Prefect artifact."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from prefect import task


def artifact_key(*parts: str) -> str:
    """A valid artifact key (lower-case letters, digits and dashes) from ``parts``."""
    return re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 3) -> str:
    """A GitHub Markdown table; floats with ``digits`` decimals, ``None`` as empty."""

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.{digits}f}"
        return "" if v is None else str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def tracking_markdown(outcomes: Sequence[dict[str, Any]]) -> str:
    """One line per sequence: status, worker, frames, fps, stage times."""
    rows = []
    for o in outcomes:
        rec = o.get("record") or {}
        ms = rec.get("ms") or {}
        rows.append([f"{o['seq']['dataset']}/{o['seq']['split']}/{o['seq']['name']}", o["status"], rec.get("worker"),
                     rec.get("frames"), rec.get("fps"), ms.get("forward"), ms.get("associate"), o.get("error")])
    return md_table(["sequence", "status", "worker", "frames", "fps", "forward ms", "associate ms", "error"], rows, 1)


def metrics_markdown(evals: Sequence[dict[str, Any]], columns: Sequence[str] = ("HOTA", "MOTA", "IDF1", "IDSW", "FP",
                                                                               "FN")) -> str:
    parts = []
    for ev in evals:
        title = f"### {ev['label']} ({ev['preset']})" + (f" — catalog run `{ev['run_id']}`" if ev.get("run_id") else "")
        parts.append(title)
        parts.append(md_table(["sequence", *columns], [[r["sequence"], *(r[c] for c in columns)] for r in ev["rows"]]))
    return "\n\n".join(parts)


@task(name="publish-artifact")
def publish_markdown(key: str, markdown: str, description: str) -> str:
    """Create (or add a version of) the Markdown artifact ``key``; returns its id."""
    from prefect.artifacts import create_markdown_artifact

    return str(create_markdown_artifact(markdown=markdown, key=key, description=description))
