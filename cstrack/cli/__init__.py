"""The ``cstrack`` command line.

Each sub-module registers its commands on the shared Typer app; this module only assembles them.
CLI flags are translated into typed configs here, at the edge, never passed deeper as namespaces.
"""

from __future__ import annotations

import typer

from cstrack.cli import bench_cmds, data_cmds, eval_cmds, export_cmds, model_cmds, track_cmds, train_cmds

app = typer.Typer(
    name="cstrack",
    help="CSTrack multi-object tracking: models, tracking, evaluation, training and reports.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)



@app.callback()
def _root() -> None:
    """CSTrack multi-object tracking: models, tracking, evaluation, training and reports."""


for _module in (model_cmds, track_cmds, data_cmds, train_cmds, eval_cmds, export_cmds, bench_cmds):
    _module.register(app)


def main() -> None:
    app()
