"""``cstrack catalog compact``: merge the catalog's many small partitions of the tables read across
runs into one index file each, without changing any row (:mod:`catalog.compact`)::

    cstrack catalog compact --results results
"""

from __future__ import annotations

import typer

from cstrack.cli.common import guarded


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Catalog maintenance.", no_args_is_help=True)
    app.add_typer(group, name="catalog")

    @group.command("compact")
    @guarded
    def compact_cmd(
        results: str = typer.Option("results", "--results", help="catalog root (path or fsspec URL)"),
    ) -> None:
        """Write RESULTS/_index/{runs,sequence_metrics}.parquet: every partition's rows in one file per
        table, which catalog.load reads instead of the partitions that have not changed since (run it
        after the nightly; docs/scale.md)."""
        from catalog.compact import compact

        report = compact(results)
        for table, n in report.partitions.items():
            typer.echo(f"{table}: {n} partitions, {report.rows[table]} rows -> {results}/_index/{table}.parquet")
