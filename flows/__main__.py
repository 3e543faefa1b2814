"""Run a flow from the command line without a deployment::

    python -m flows track-all PARAMS.yaml [--set model.input_size=[320,256] --set cluster.local_workers=2]
    python -m flows prepare-data --set 'datasets=[pets09-s2l1]'
    python -m flows list

``PARAMS`` is a YAML or JSON file holding the flow's parameter model (``-`` reads stdin); each
``--set KEY=VALUE`` replaces one (dotted) field, VALUE parsed as YAML.  The result is printed as
JSON; the exit status is 0 when the flow completed and 1 when it failed.  Point
``PREFECT_API_URL`` at a server to record the run there (otherwise Prefect starts a temporary one).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path
from typing import Any

import yaml

# flow name -> (module, flow function, parameter model in flows.params)
FLOWS: dict[str, tuple[str, str, str]] = {
    "prepare-data": ("flows.prepare_data", "prepare_data", "PrepareDataParams"),
    "train": ("flows.train", "train", "TrainParams"),
    "track-all": ("flows.track_all", "track_all", "TrackAllParams"),
    "evaluate": ("flows.evaluate", "evaluate", "EvaluateParams"),
    "report": ("flows.report", "report", "ReportParams"),
    "nightly": ("flows.nightly", "nightly", "NightlyParams"),
}


def set_dotted(target: dict[str, Any], key: str, value: Any) -> None:
    """``target[a][b] = value`` for ``key='a.b'`` (missing levels are created)."""
    parts = key.split(".")
    node = target
    for p in parts[:-1]:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise SystemExit(f"--set {key}: {p} is not a mapping")
    node[parts[-1]] = value


def load_params(path: str | None, overrides: list[str]) -> dict[str, Any]:
    raw: Any = {}
    if path == "-":
        raw = yaml.safe_load(sys.stdin.read()) or {}
    elif path:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(raw, dict):
        raise SystemExit(f"{path}: expected a mapping of parameters")
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set {item!r}: expected KEY=VALUE")
        set_dotted(raw, key.strip(), yaml.safe_load(text))
    return raw


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m flows", description=__doc__.split("\n\n")[0])
    ap.add_argument("flow", choices=[*FLOWS, "list"])
    ap.add_argument("params", nargs="?", help="YAML/JSON parameter file ('-' = stdin)")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args(argv)
    if args.flow == "list":
        for name, (module, fn, model) in FLOWS.items():
            print(f"{name:<13} {module}:{fn}({model})")
        return 0
    from pydantic import ValidationError

    import flows.params

    module, fn, model_name = FLOWS[args.flow]
    model = getattr(flows.params, model_name)
    try:
        params = model.model_validate(load_params(args.params, args.overrides))
    except ValidationError as exc:
        print(f"error: invalid {args.flow} parameters:\n{exc}", file=sys.stderr)
        return 2
    flow = getattr(importlib.import_module(module), fn)
    state = flow(params, return_state=True)
    result = state.result(raise_on_failure=False)
    if isinstance(result, BaseException):
        print(f"{args.flow} failed: {result}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
