"""The ``cstrack`` command line.

Each sub-module registers its commands on the shared Typer app; this module only assembles them.
CLI flags are translated into typed configs here, at the edge, never passed deeper as namespaces.
An expected failure prints one line and exits with status 2 (:mod:`cstrack.cli.common`); ``--debug``
or ``CSTRACK_DEBUG=1`` shows full tracebacks instead.
"""

from __future__ import annotations

import os
import sys

import typer

from cstrack.cli import (
    bench_cmds,
    data_cmds,
    eval_cmds,
    export_cmds,
    model_cmds,
    submit_cmds,
    track_cmds,
    train_cmds,
    tune_cmds,
    weights_cmds,
)
from cstrack.cli.common import DEBUG_ENV, report_failure
from cstrack.signals import Aborted, terminate_raises

app = typer.Typer(
    name="cstrack",
    help="CSTrack multi-object tracking: models, tracking, evaluation, training and reports.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help=f"show the full traceback of every failure (or {DEBUG_ENV}=1)"),
) -> None:
    """CSTrack multi-object tracking: models, tracking, evaluation, training and reports."""
    if debug:
        os.environ[DEBUG_ENV] = "1"


for _module in (model_cmds, track_cmds, data_cmds, train_cmds, eval_cmds, export_cmds, bench_cmds, weights_cmds,
                tune_cmds, submit_cmds):
    _module.register(app)


def main() -> None:
    """Entry point: run the app; an expected failure that escaped a command's guard still ends in
    one line and exit status 2 (a bug keeps its traceback)."""
    try:
        with terminate_raises():  # SIGTERM outside a command (option parsing): as Ctrl-C
            app()
    except (Exception, KeyboardInterrupt, Aborted) as exc:
        code = report_failure(exc)
        if code is None:
            raise
        sys.exit(code)
