"""``report``: regenerate the tables and figures from the catalog and publish them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow

from flows.params import ReportParams
from tasks.publish import artifact_key, publish_markdown
from tasks.report import build_report_task


@flow(name="report", log_prints=True)
def report(params: ReportParams) -> dict[str, Any]:
    root = Path(params.catalog_root).expanduser().resolve()
    out_dir = Path(params.out_dir).expanduser().resolve() if params.out_dir else root / "tables"
    built = build_report_task(str(root), str(out_dir), params.html)
    print(built.report_md)
    res: dict[str, Any] = {"files": list(built.files), "report_md": built.report_md}
    page = [f for f in built.files if f.endswith("report.html")]
    if page:
        res["html"] = page[0]
        print(f"report page: {page[0]}")
    if params.publish:
        res["artifact"] = publish_markdown(artifact_key("report"), built.report_md, f"report of the catalog {root}")
    return res
