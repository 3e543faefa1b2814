"""The ``cstrack`` command line.

Each sub-module registers its commands on the shared Typer app; this module only assembles them.
CLI flags are translated into typed configs here, at the edge, never passed deeper as namespaces.
An expected failure prints one line and exits with status 2 (:mod:`cstrack.cli.common`); ``--debug``
or ``CSTRACK_DEBUG=1`` shows full tracebacks instead.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import typer
from typer.core import TyperArgument, TyperGroup, TyperOption
from typer.exceptions import TyperException

from cstrack.cli import (
    bench_cmds,
    catalog_cmds,
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
from cstrack.cli.common import DEBUG_ENV, one_line, report_failure
from cstrack.signals import Aborted, terminate_raises


class OneLineErrors(TyperGroup):
    """The root group: a usage error (an option out of its range, a missing or unknown option)
    prints ONE line, ``error: --option: <what is wrong>``, and exits with 2, instead of click's
    usage box (issue 24)."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, windows_expand_args: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except TyperException as exc:  # typer's click exceptions (usage errors)
            if type(exc).__name__ == "NoArgsIsHelpError":  # no_args_is_help: the help, as before
                exc.show()  # type: ignore[attr-defined]  # a click UsageError
            else:
                typer.echo(f"error: {usage_line(exc)}", err=True)
            sys.exit(getattr(exc, "exit_code", 2))
        except typer.Abort:  # Ctrl-C at a prompt
            typer.echo("interrupted", err=True)
            sys.exit(130)
        sys.exit(rv if isinstance(rv, int) else 0)  # an Exit's code, when not standalone


def usage_line(exc: Exception) -> str:
    """``--option: message`` for a bad option value, else click's own message, on one line."""
    param = getattr(exc, "param", None)
    if isinstance(exc, typer.BadParameter) and type(exc).__name__ != "MissingParameter" and param is not None:
        hint = exc.param_hint if isinstance(exc.param_hint, str) else None
        hint = hint or " / ".join(getattr(param, "opts", None) or []) or param.name or "value"
        errors = getattr(exc.__cause__, "errors", None)  # typer checks ranges with pydantic
        if callable(errors):
            first = errors()[0]
            return one_line(f"{hint}: got {first.get('input')!s}; {str(first.get('msg', exc.message)).lower()}")
        return one_line(f"{hint}: {exc.message}")
    fmt = getattr(exc, "format_message", None)
    return one_line(fmt() if callable(fmt) else str(exc))


app = typer.Typer(
    name="cstrack",
    cls=OneLineErrors,
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
                tune_cmds, submit_cmds, catalog_cmds):
    _module.register(app)


def _word_metavars(typer_app: typer.Typer) -> None:
    """Give every option and argument without a metavar a word for its value (``--weights WEIGHTS``,
    ``SOURCES...``) instead of the Python type typer would show (``<list[str]>``, ``<str>``); a flag
    (``bool``) shows none."""
    import inspect

    from typer.models import ArgumentInfo, OptionInfo

    callbacks = [c.callback for c in typer_app.registered_commands]
    if typer_app.registered_callback is not None:
        callbacks.append(typer_app.registered_callback.callback)
    for cb in callbacks:
        if cb is None:
            continue
        for name, param in inspect.signature(cb).parameters.items():
            info = param.default
            if not isinstance(info, OptionInfo | ArgumentInfo) or info.metavar is not None:
                continue
            if param.annotation in (bool, "bool"):
                info.metavar = ""
            elif isinstance(info, OptionInfo):
                longs = [d for d in info.param_decls or () if d.startswith("--")]
                info.metavar = (longs[0].split("/")[0][2:] if longs else name).replace("-", "_").upper()
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            _word_metavars(group.typer_instance)


def _no_argument_type(self: Any, ctx: Any) -> str | None:
    """An argument's help shows its name (``SOURCES...``) and help text, not its Python type."""
    return None


_option_type = TyperOption.display_type_rich


def _no_flag_type(self: Any, ctx: Any) -> str | None:
    """A flag (``--help``, ``--debug``, ``--progress/--no-progress``) takes no value: no ``<bool>``."""
    return None if self.is_flag else _option_type(self, ctx)


_word_metavars(app)
# typer has no setting for these: its help shows a parameter's Python type where it has no metavar
TyperArgument.display_type_rich = _no_argument_type  # type: ignore[method-assign]
TyperOption.display_type_rich = _no_flag_type  # type: ignore[method-assign]


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
