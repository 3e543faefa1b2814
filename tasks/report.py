"""Report task: regenerate the tables and figures from the catalog (one :func:`catalog.report.build_report` call)."""

from __future__ import annotations

from prefect import task

from tasks.records import BuiltReport


@task(name="build-report")
def build_report_task(catalog_root: str, out_dir: str, html: bool = True) -> BuiltReport:
    """Write the report files into ``out_dir`` (``html``: with ``report.html``, the self-contained
    page); returns their paths and the Markdown of ``report.md``."""
    from pathlib import Path

    from catalog.report import build_report

    files = build_report(catalog_root, out_dir, html=html)
    report_md = Path(out_dir) / "report.md"
    return BuiltReport(tuple(str(f) for f in files),
                       report_md.read_text(encoding="utf-8") if report_md.is_file() else "")
