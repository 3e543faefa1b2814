"""The import graph of the project's packages has no cycle (issue 19): every ``import`` statement
of ``cstrack``, ``catalog``, ``tasks``, ``flows`` and ``stack``, at module level or inside a function,
is an edge, and ``cstrack`` never imports Prefect."""

from __future__ import annotations

import ast
from pathlib import Path

from cstrack.paths import REPO_ROOT

PACKAGES = ("cstrack", "catalog", "tasks", "flows", "stack")


def modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for f in (REPO_ROOT / pkg).rglob("*.py"):
            parts = f.relative_to(REPO_ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = f
    return out


def import_graph() -> dict[str, set[str]]:
    mods = modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for name, f in mods.items():
        package = name if f.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
                if name.startswith("cstrack") and any(a.name.split(".")[0] == "prefect" for a in node.names):
                    graph[name].add("<prefect>")
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join([*up, base] if base else up)
                targets = [f"{base}.{a.name}" for a in node.names] + [base]
            for t in targets:
                while t and t not in mods:  # `from a.b import c` -> a.b.c if a module, else a.b
                    t = t.rpartition(".")[0]
                if t and t != name and not name.startswith(t + "."):  # a package's own __init__ is not an edge back
                    graph[name].add(t)
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("prefect") \
                    and name.startswith("cstrack"):
                graph[name].add("<prefect>")
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_checker_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


def test_the_library_never_imports_prefect() -> None:
    graph = import_graph()
    assert not [m for m, deps in graph.items() if m.startswith("cstrack") and "<prefect>" in deps]
    assert not any(d == "prefect" or d.startswith("prefect.") for m, deps in graph.items() if m.startswith("cstrack")
                   for d in deps)


def test_the_jit_module_is_a_leaf() -> None:
    assert {d for d in import_graph()["cstrack.jit"] if not d.startswith("<")} == set()


def layering_violations(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """Edges against the layers: the library (``cstrack`` but its CLI) imports none of ``catalog``,
    ``tasks`` and ``flows``; ``catalog`` imports neither ``tasks`` nor ``flows``; ``tasks`` never
    imports ``flows``.  The operations package ``stack`` imports only the library, and of the
    project's packages only ``flows`` imports it (``cstrack``, its CLI included, never does)."""
    forbidden = {"catalog": {"tasks", "flows", "stack"}, "tasks": {"flows", "stack"},
                 "cstrack": {"catalog", "tasks", "flows", "stack"}, "stack": {"catalog", "tasks", "flows"}}
    out = []
    for mod, deps in sorted(graph.items()):
        top = mod.split(".")[0]
        cli = mod == "cstrack.cli" or mod.startswith("cstrack.cli.")
        for dep in sorted(deps):
            dep_top = dep.split(".")[0]
            if dep_top in forbidden.get(top, set()) and not (cli and dep_top != "stack"):
                out.append((mod, dep))
    return out


def test_the_layering_checker_finds_back_edges() -> None:
    graph = {"cstrack.a": {"catalog.store"}, "cstrack.cli.x": {"flows.y", "catalog.store"}, "catalog.store": {"cstrack.a"},
             "catalog.b": {"tasks.t"}, "tasks.t": {"catalog.store", "flows.f"}, "flows.f": {"tasks.t", "catalog.b"}}
    assert layering_violations(graph) == [("catalog.b", "tasks.t"), ("cstrack.a", "catalog.store"), ("tasks.t", "flows.f")]
    ops = {"flows.f": {"stack.local"}, "stack.local": {"cstrack.fsutil", "flows.f"}, "cstrack.cli.x": {"stack.local"},
           "tasks.t": {"stack.commands"}, "cstrack.fsutil": set()}
    assert layering_violations(ops) == [("cstrack.cli.x", "stack.local"), ("stack.local", "flows.f"),
                                        ("tasks.t", "stack.commands")]


def test_the_packages_import_only_downwards() -> None:
    assert layering_violations(import_graph()) == []
