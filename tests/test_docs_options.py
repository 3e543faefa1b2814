"""Docs and help agree with the code: every ``cstrack`` option the docs name exists on that command,
and ``python -m flows FLOW --help`` lists every parameter of the flow."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer.main

from cstrack.cli import app
from flows.__main__ import FLOWS, main
from flows.paramdoc import parameters

REPO = Path(__file__).resolve().parents[1]
DOCS = sorted([*REPO.glob("docs/*.md"), REPO / "README.md"])
_CMD = re.compile(r"\bcstrack\s+([a-z][a-z0-9-]*)(?:\s+([a-z][a-z0-9-]*))?")
_OPT = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")


def _commands() -> dict[str, set[str]]:
    """``{"track": {"--weights", ...}, "data prepare": {...}}``: every option of every command."""
    root = typer.main.get_command(app)
    out: dict[str, set[str]] = {}

    def walk(cmd: Any, path: str) -> None:
        opts = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts) if o.startswith("--")} | {"--help"}
        out[path] = opts
        if hasattr(cmd, "commands"):  # typer's groups are not click.Group subclasses
            for name, sub in cmd.commands.items():
                walk(sub, f"{path} {name}".strip())

    walk(root, "")
    return out


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Lines with backslash continuations joined, numbered by their first line."""
    out, buf, start = [], "", 0
    for i, line in enumerate(text.splitlines(), 1):
        if not buf:
            start = i
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        out.append((start, buf + line))
        buf = ""
    return out


def _mentions() -> list[tuple[str, str, str]]:
    """``(doc:line, command, option)`` for every ``cstrack CMD ... --opt`` on one (logical) line;
    the options counted are those after the command up to the end of its code span or shell line."""
    commands = _commands()
    found = []
    for doc in DOCS:
        for lineno, line in _logical_lines(doc.read_text(encoding="utf-8")):
            for m in _CMD.finditer(line):
                first, second = m.group(1), m.group(2)
                cmd = f"{first} {second}" if second and f"{first} {second}" in commands else first
                if cmd not in commands:
                    continue
                rest = line[m.end():]
                rest = re.split(r"`|\s[|;&]{1,2}\s|\s#\s|\(|\)", rest, maxsplit=1)[0]  # end of the command
                for opt in _OPT.findall(rest):
                    found.append((f"{doc.relative_to(REPO)}:{lineno}", cmd, opt))
    return found


def test_every_cli_option_in_the_docs_exists() -> None:
    commands = _commands()
    mentions = _mentions()
    assert len(mentions) > 30  # the docs do show commands with options
    wrong = sorted({f"{where}: cstrack {cmd} {opt}" for where, cmd, opt in mentions if opt not in commands[cmd]})
    assert wrong == [], "options the docs name that the command lacks:\n" + "\n".join(wrong)


def test_a_planted_unknown_option_is_caught(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = tmp_path / "x.md"
    doc.write_text("run `cstrack track SEQ --weights w.pt --no-such-flag` then\n"
                   "cstrack data prepare mot17 --root data \\\n  --from DIR\n")
    monkeypatch.setattr(f"{__name__}.DOCS", [doc])
    monkeypatch.setattr(f"{__name__}.REPO", tmp_path)
    got = _mentions()
    assert ("x.md:1", "track", "--no-such-flag") in got and ("x.md:2", "data prepare", "--from") in got
    assert "--no-such-flag" not in _commands()["track"] and "--from" in _commands()["data prepare"]


@pytest.mark.parametrize("flow", sorted(FLOWS))
def test_flow_help_lists_every_parameter(flow: str, capsys: pytest.CaptureFixture[str]) -> None:
    import flows.params

    assert main([flow, "--help"]) == 0
    out = capsys.readouterr().out
    model = getattr(flows.params, FLOWS[flow][2])
    names = [n for n, *_ in parameters(model)]
    assert set(model.model_fields) <= set(names)
    listed = set(re.findall(r"^  (\S+):", out, re.MULTILINE))
    assert set(names) <= listed, sorted(set(names) - listed)


def test_no_python_type_names_as_metavars() -> None:
    """typer shows a parameter's Python type (``<list[str]>``, ``<bool>``) when it has no metavar of
    its own: every option and argument of every command reads as a word instead."""
    from typer.testing import CliRunner

    runner = CliRunner()
    bad = []
    for path in _commands():
        res = runner.invoke(app, [*path.split(), "--help"], terminal_width=200)
        assert res.exit_code == 0, (path, res.output)
        for m in re.findall(r"<(?:list|bool|int|float|str|path)\b[^>]*>", res.output, flags=re.IGNORECASE):
            bad.append(f"cstrack {path}: {m}")
    assert bad == [], bad
