"""``cstrack submit``: check a results folder and write the zip the MOTChallenge server accepts."""

from __future__ import annotations

from pathlib import Path

import typer

from cstrack.cli.common import check_output_file, guarded
from cstrack.pathrules import Input


def register(app: typer.Typer) -> None:
    @app.command("submit")
    @guarded
    def submit(
        results: Path = typer.Argument(..., help="folder of <SEQ>.txt result files"),
        benchmark: str = typer.Option(..., "--benchmark", help="MOT16, MOT17 or MOT20"),
        split: str = typer.Option(..., "--split", help="train or test"),
        out: Path = typer.Option(..., "--out", help="the zip to write (FILE.zip)"),
    ) -> None:
        """Check that every expected sequence is present and valid, then write the flat zip.

        Anything missing or invalid is listed (one per line) and nothing is written (exit 2)."""
        from cstrack.eval.submit import SubmissionError, write_submission

        check_output_file(out, "--out", [Input(results, "RESULTS")])
        try:
            res = write_submission(results, benchmark, split, out)
        except SubmissionError as exc:
            typer.echo(f"error: submission not written ({len(exc.problems)} problem(s)):", err=True)
            for p in exc.problems:
                typer.echo(f"  {p}", err=True)
            raise typer.Exit(code=2) from None
        for name in res.ignored:
            typer.echo(f"note: {name} is not a {benchmark.upper()} {split} sequence; left out", err=True)
        typer.echo(f"{out}: {len(res.files)} sequences, {res.rows} rows ({benchmark.upper()} {split})")
