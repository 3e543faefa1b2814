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
    from tasks.remote import local_output_dir

    with local_output_dir(out_dir) as local:  # an s3:// out_dir: written here, uploaded at the end
        files = build_report(catalog_root, local, html=html)
        report_md = Path(local) / "report.md"
        text = report_md.read_text(encoding="utf-8") if report_md.is_file() else ""
        names = tuple(out_dir.rstrip("/") + "/" + Path(f).relative_to(local).as_posix() if local != out_dir else str(f)
                      for f in files)
    return BuiltReport(names, text)
