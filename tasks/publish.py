"""Publish a run's tables: a markdown file under the results root and a Prefect markdown artifact."""

from __future__ import annotations

from typing import Any

from prefect import task


def _md_table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3f}"
        return "" if v is None else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


@task(name="publish-tables")
def publish_tables(catalog_root: str, run_id: str, run_name: str, summary: dict[str, Any],
                   evals: list[dict[str, Any]], tables_dir: str) -> dict[str, Any]:
    from pathlib import Path

    from prefect.artifacts import create_markdown_artifact

    from cstrack.fsutil import atomic_write_text

    parts = [f"# track-all {run_name}", f"run `{run_id}`: {summary['tracked']} tracked, {summary['cached']} cached, "
             f"{len(summary['failed'])} failed"]
    for ev in evals:
        parts.append(f"## {ev['label']} ({ev['preset']})")
        cols = ["HOTA", "MOTA", "IDF1", "IDSW", "FP", "FN"]
        parts.append(_md_table(["sequence", *cols], [[r["sequence"], *(r[c] for c in cols)] for r in ev["rows"]]))
    if summary["failed"]:
        parts.append("## Failed\n" + "\n".join(f"- {f}" for f in summary["failed"]))
    md = "\n\n".join(parts) + "\n"
    path = atomic_write_text(Path(tables_dir) / f"{run_name}.md", md)
    key = f"track-all-{run_name}".lower().replace("_", "-").replace(".", "-")
    artifact_id = create_markdown_artifact(markdown=md, key=key, description=f"track-all {run_name} tables")
    return {"artifact_key": key, "artifact_id": str(artifact_id), "path": str(path)}
