"""Run a flow from the command line without a deployment::

    python -m flows track-all PARAMS.yaml [--set model.input_size=[320,256] --set cluster.local_workers=2]
    python -m flows prepare-data --set 'datasets=[pets09-s2l1]'
    python -m flows list
    python -m flows track-all --help        # every parameter of the flow, with its default and meaning

``PARAMS`` is a YAML or JSON file holding the flow's parameter model (``-`` reads stdin); each
``--set KEY=VALUE`` replaces one (dotted) field, VALUE parsed as YAML.  The result is printed as
JSON; the exit status is 0 when the flow completed and 1 when it failed.  Bad input (a missing or
malformed parameter file, a bad ``--set``, a parameter the model refuses) prints one line naming
the file or field and exits with status 2.  Point ``PREFECT_API_URL`` at a server to record the
run there; otherwise one temporary server (:mod:`stack.temporary`, database under ``$PREFECT_HOME``,
default ``~/.prefect``, as Prefect's own) serves the flow and its Dask workers, started with a limit
of ``$PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS`` (default 180 s); a server that does not
come up in time is one ``error:`` line naming that setting, exit status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import yaml

from cstrack.fsutil import load_yaml

if TYPE_CHECKING:
    from pydantic import ValidationError

# flow name -> (module, flow function, parameter model in flows.params)
FLOWS: dict[str, tuple[str, str, str]] = {
    "prepare-data": ("flows.prepare_data", "prepare_data", "PrepareDataParams"),
    "train": ("flows.train", "train", "TrainParams"),
    "track-all": ("flows.track_all", "track_all", "TrackAllParams"),
    "evaluate": ("flows.evaluate", "evaluate", "EvaluateParams"),
    "report": ("flows.report", "report", "ReportParams"),
    "nightly": ("flows.nightly", "nightly", "NightlyParams"),
    "tune": ("flows.tune", "tune", "TuneParams"),
}


class ParamsError(Exception):
    """A parameter file or ``--set`` that cannot be used (the message names it)."""


def set_dotted(target: dict[str, Any], key: str, value: Any) -> None:
    """``target[a][b] = value`` for ``key='a.b'`` (missing levels are created)."""
    parts = key.split(".")
    node = target
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ParamsError(f"--set {key}: {p} is not a mapping")
    node[parts[-1]] = value


def _yaml(text: str, where: str) -> object:
    """The YAML value of ``text`` (a parameter file or a ``--set`` value)."""
    try:
        return load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ParamsError(f"{where}{line}: not valid YAML ({problem})") from None


def load_params(path: str | None, overrides: list[str]) -> dict[str, Any]:
    """The parameters of ``path`` (YAML/JSON, ``-`` = stdin) with ``KEY=VALUE`` overrides applied;
    :class:`ParamsError` names the file (and line) or the override that is wrong."""
    raw: object = {}
    if path == "-":
        raw = _yaml(sys.stdin.read(), "<stdin>") or {}
    elif path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ParamsError(f"{path}: parameter file not found") from None
        except UnicodeDecodeError as exc:
            raise ParamsError(f"{path}: not UTF-8 text (byte {exc.start})") from None
        except OSError as exc:
            raise ParamsError(f"{path}: {exc.strerror or exc}") from None
        raw = _yaml(text, path) or {}
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping of parameters")
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ParamsError(f"--set {item!r}: expected KEY=VALUE")
        set_dotted(raw, key.strip(), _yaml(text, f"--set {key.strip()}"))
    return raw


def validation_line(flow: str, exc: ValidationError) -> str:
    """A pydantic ``ValidationError`` as one line: ``field.path: message`` per error."""
    parts = []
    for err in exc.errors():
        where = ".".join(str(x) for x in err.get("loc", ())) or "parameters"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return f"invalid {flow} parameters: " + "; ".join(parts)


@contextlib.contextmanager
def prefect_api() -> Iterator[None]:
    """Nothing to do when ``PREFECT_API_URL`` names a server; otherwise a temporary server for the
    flow and every Dask worker it starts (they inherit the environment: without it each process
    would start a server of its own), stopped on exit after the last logs are delivered."""
    if os.environ.get("PREFECT_API_URL"):
        yield
        return
    from stack.temporary import STARTUP_ENV, startup_limit, temporary_prefect_server

    home = Path(os.environ.get("PREFECT_HOME") or "~/.prefect").expanduser()
    limit = startup_limit()
    print(f"[flows] no PREFECT_API_URL: starting a temporary Prefect server (database {home / 'prefect.db'}), "
          f"waiting up to {limit} s ({STARTUP_ENV})", file=sys.stderr, flush=True)
    saved = dict(os.environ)
    with temporary_prefect_server(home, limit) as settings:
        os.environ.update(settings)
        try:
            yield
            from flows.demo import flush_prefect

            flush_prefect()  # the last logs and events, while the server is still up
        finally:
            os.environ.clear()
            os.environ.update(saved)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line instead of usage + message
        self.exit(2, f"error: {message} (see python -m flows --help)\n")


def main(argv: list[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    if args_in and args_in[0] in FLOWS and any(a in ("-h", "--help") for a in args_in[1:]):
        import flows.params
        from flows.paramdoc import help_text

        print(help_text(args_in[0], getattr(flows.params, FLOWS[args_in[0]][2])), end="")
        return 0
    ap = _Parser(prog="python -m flows", description=__doc__.split("\n\n")[0],
                 epilog="python -m flows FLOW --help lists the parameters of FLOW.")
    ap.add_argument("flow", choices=[*FLOWS, "list"])
    ap.add_argument("params", nargs="?", help="YAML/JSON parameter file ('-' = stdin)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args(argv)
    if args.flow == "list":
        for name, (module, fn, model) in FLOWS.items():
            print(f"{name:<13} {module}:{fn}({model})")
        return 0
    try:
        raw = load_params(args.params, args.overrides)
    except ParamsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from pydantic import ValidationError

    import flows.params

    module, fn, model_name = FLOWS[args.flow]
    model = getattr(flows.params, model_name)
    try:
        params = model.model_validate(raw)
    except ValidationError as exc:
        print(f"error: {validation_line(args.flow, exc)}", file=sys.stderr)
        return 2
    from cstrack.errors import ConfigError
    from cstrack.signals import exit_status, terminate_raises
    from stack.temporary import ServerStartError

    try:
        with terminate_raises(), prefect_api():  # SIGTERM as Ctrl-C: atomic writes clean up (cstrack.signals)
            flow = getattr(importlib.import_module(module), fn)
            state = flow(params, return_state=True)
            result = state.result(raise_on_failure=False)
    except KeyboardInterrupt as exc:
        status = exit_status(exc) or 130
        what = "terminated (SIGTERM)" if status == 143 else "interrupted"
        print(f"{args.flow}: {what} (outputs already written are kept)", file=sys.stderr)
        return status
    except ConfigError as exc:  # a setting of the environment (the start-up limit)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ServerStartError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if isinstance(result, BaseException):
        print(f"{args.flow} failed: {result}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
