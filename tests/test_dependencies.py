"""Every third-party package the code imports is declared in pyproject.toml (issue 25).

The import statements of ``cstrack``, ``catalog``, ``tasks``, ``flows``, ``stack`` and ``bench`` (at
module level or inside functions) are read with ``ast``; the standard library, the project's own
packages, a script's sibling modules and imports guarded by ``except ImportError`` (optional
accelerations) are left out.  Each remaining import name is mapped to the distributions that
install it (``importlib.metadata.packages_distributions``: ``cv2`` -> ``opencv-python-headless``,
``yaml`` -> ``PyYAML``), and one of them must be a dependency of ``[project]``, directly or through
a declared extra (``dask[distributed]`` declares ``distributed``).
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import re
import sys
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path

from cstrack.paths import REPO_ROOT

SCANNED = ("cstrack", "catalog", "tasks", "flows", "stack", "bench")
PROJECT = {"cstrack", "catalog", "tasks", "flows", "stack", "bench", "tests"}
_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?")


def normalise(name: str) -> str:
    """A distribution name in its canonical form (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _guarded(handlers: Iterable[ast.ExceptHandler]) -> bool:
    for h in handlers:
        names = h.type.elts if isinstance(h.type, ast.Tuple) else [h.type]
        if any(isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError") for n in names):
            return True
    return False


def imported_names(source: str) -> set[str]:
    """Top-level names of the absolute imports in ``source`` that are not inside a ``try`` whose
    handlers catch ``ImportError`` (or ``ModuleNotFoundError``)."""
    found: set[str] = set()

    def visit(node: ast.AST, optional: bool) -> None:
        if isinstance(node, ast.Import) and not optional:
            found.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and not optional and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
        if isinstance(node, ast.Try):
            guarded = optional or _guarded(node.handlers)
            for child in node.body:
                visit(child, guarded)
            for child in [*node.handlers, *node.orelse, *node.finalbody]:
                visit(child, optional)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, optional)

    visit(ast.parse(source), False)
    return found


def third_party_imports(root: Path, packages: Iterable[str] = SCANNED) -> dict[str, set[str]]:
    """``{import name: {files}}`` of the third-party imports under ``root/<package>``."""
    out: dict[str, set[str]] = {}
    for pkg in packages:
        for f in sorted((root / pkg).rglob("*.py")):
            siblings = {p.stem for p in f.parent.glob("*.py")} | {p.name for p in f.parent.iterdir() if p.is_dir()}
            for name in imported_names(f.read_text(encoding="utf-8")):
                if name in sys.stdlib_module_names or name in PROJECT or name in siblings or name == "__future__":
                    continue
                out.setdefault(name, set()).add(str(f.relative_to(root)))
    return out


def declared_distributions(pyproject: Path) -> set[str]:
    """The ``[project] dependencies`` (normalised), plus what their declared extras pull in."""
    deps = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["dependencies"]
    out: set[str] = set()
    for req in deps:
        m = _NAME.match(req)
        assert m is not None, f"pyproject.toml: cannot read the requirement {req!r}"
        out.add(normalise(m.group(1)))
        for extra in filter(None, (e.strip() for e in (m.group(2) or "").split(","))):
            for sub in md.requires(m.group(1)) or []:
                if re.search(rf"""extra\s*==\s*["']{re.escape(extra)}["']""", sub):
                    sm = _NAME.match(sub)
                    assert sm is not None
                    out.add(normalise(sm.group(1)))
    return out


def undeclared(imports: Mapping[str, set[str]], providers: Mapping[str, list[str]], declared: set[str]) -> list[str]:
    """One line per import name none of whose providing distributions is declared."""
    problems = []
    for name, files in sorted(imports.items()):
        dists = {normalise(d) for d in providers.get(name, [])}
        if not dists:
            problems.append(f"{name} (imported by {sorted(files)[0]}): no installed distribution provides it")
        elif not dists & declared:
            problems.append(f"{name} (imported by {sorted(files)[0]}): declare one of {sorted(dists)}")
    return problems


def test_the_checker_reads_imports_and_skips_optional_ones() -> None:
    src = (
        "import numpy as np, os.path\n"
        "from yaml import safe_load\n"
        "from . import sibling\n"
        "def f():\n"
        "    import cv2\n"
        "    try:\n"
        "        from threadpoolctl import threadpool_info\n"
        "    except ImportError:\n"
        "        import psutil\n"  # the handler's own imports are not optional
        "    try:\n"
        "        import lap\n"
        "    except ValueError:\n"
        "        pass\n"
    )
    assert imported_names(src) == {"numpy", "os", "yaml", "cv2", "psutil", "lap"}


def test_the_checker_maps_import_names_to_distributions() -> None:
    providers = {"cv2": ["opencv-python-headless"], "yaml": ["PyYAML"], "psutil": ["psutil"]}
    imports = {"cv2": {"a.py"}, "yaml": {"b.py"}, "psutil": {"c.py"}, "nothere": {"d.py"}}
    assert undeclared(imports, providers, {"opencv-python-headless", "pyyaml"}) == [
        "nothere (imported by d.py): no installed distribution provides it",
        "psutil (imported by c.py): declare one of ['psutil']",
    ]


def test_extras_declare_what_they_install() -> None:
    # dask[distributed] in pyproject.toml declares distributed (imported by flows/dispatch.py)
    assert {"dask", "distributed"} <= declared_distributions(REPO_ROOT / "pyproject.toml")


def test_every_imported_third_party_package_is_declared() -> None:
    imports = third_party_imports(REPO_ROOT)
    assert {"torch", "cv2", "yaml", "psutil", "prefect"} <= set(imports)  # the scan sees the code
    problems = undeclared(imports, md.packages_distributions(), declared_distributions(REPO_ROOT / "pyproject.toml"))
    assert problems == []
