"""Catalog ingestion: one run of track-all (tracking records + metrics) into the Parquet catalog."""

from __future__ import annotations

from typing import Any

from prefect import task


@task(name="ingest-catalog")
def ingest_run(catalog_root: str, run_id: str, params: dict[str, Any], outcomes: list[dict[str, Any]],
               evals: list[dict[str, Any]], summary: dict[str, Any]) -> dict[str, Any]:
    """Write the run (replacing an earlier ingestion of the same run id); returns row counts."""
    from pathlib import Path

    import pandas as pd

    root = Path(catalog_root)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for o in outcomes:
        rec = o["record"] or {}
        rows.append({"run_id": run_id, "dataset": o["seq"]["dataset"], "split": o["seq"]["split"],
                     "sequence": o["seq"]["name"], "status": o["status"], "worker": rec.get("worker"),
                     "frames": rec.get("frames"), "fps": rec.get("fps"), "error": o["error"]})
    pd.DataFrame(rows).to_parquet(root / f"sequences-{run_id}.parquet")
    return {"root": str(root), "rows": len(rows)}
