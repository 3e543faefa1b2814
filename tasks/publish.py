"""Publishing: Markdown for a run's outcome and a task that makes it a Prefect artifact."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from prefect import task

from cstrack.markdown import markdown_table
from tasks.records import SequenceOutcome


def artifact_key(*parts: str) -> str:
    """A valid artifact key (lower-case letters, digits and dashes) from ``parts``."""
    return re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")


def md_table(header: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 3) -> str:
    """A GitHub Markdown table (:func:`cstrack.markdown.markdown_table`); floats with ``digits``
    decimals, ``None`` as empty."""

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.{digits}f}"
        return "" if v is None else str(v)

    return markdown_table(header, [[cell(v) for v in r] for r in rows])


def tracking_markdown(outcomes: Sequence[SequenceOutcome]) -> str:
    """One line per sequence: status, worker, frames, fps, stage times."""
    rows = []
    for o in outcomes:
        rec = o.record
        ms = rec.ms if rec is not None else {}
        rows.append([o.seq.label, o.status, rec and rec.worker, rec and rec.frames, rec and rec.fps,
                     ms.get("forward"), ms.get("associate"), o.error])
    return md_table(["sequence", "status", "worker", "frames", "fps", "forward ms", "associate ms", "error"], rows, 1)


def metrics_markdown(evals: Sequence[dict[str, Any]], columns: Sequence[str] = ("HOTA", "MOTA", "IDF1", "IDSW", "FP",
                                                                               "FN")) -> str:
    """One table per evaluation: ratios in percent (one decimal; the header says ``%``), counts as
    counts.  The catalog keeps fractions; every table people read shows percent and says so."""
    from cstrack.eval.result import FLOAT_FIELDS

    def cell(r: dict[str, Any], c: str) -> Any:
        return f"{100.0 * float(r[c]):.1f}" if c in FLOAT_FIELDS and r[c] is not None else r[c]

    parts = []
    for ev in evals:
        title = f"### {ev['label']} ({ev['preset']})" + (f" — catalog run `{ev['run_id']}`" if ev.get("run_id") else "")
        parts.append(title)
        heads = [f"{c} %" if c in FLOAT_FIELDS else c for c in columns]
        parts.append(md_table(["sequence", *heads], [[r["sequence"], *(cell(r, c) for c in columns)] for r in ev["rows"]]))
    return "\n\n".join(parts)


@task(name="publish-artifact")
def publish_markdown(key: str, markdown: str, description: str) -> str:
    """Create (or add a version of) the Markdown artifact ``key``; returns its id."""
    from prefect.artifacts import create_markdown_artifact

    return str(create_markdown_artifact(markdown=markdown, key=key, description=description))
