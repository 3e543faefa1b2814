"""``python -m catalog.schemadoc [--check]``: the column lists of ``docs/catalog.md`` from the code.

The text between the markers ``<!-- schema:begin -->`` and ``<!-- schema:end -->`` is
:func:`catalog.schemas.schema_markdown` (name, type, null, meaning, unit of every column, the
meanings written next to the fields in ``catalog/schemas.py``).  Without ``--check`` the doc is
rewritten; with it, the command exits 1 when the doc disagrees with the code
(``tests/catalog/test_schema_doc.py`` runs the same check).
"""

from __future__ import annotations

import sys
from pathlib import Path

from catalog.schemas import schema_markdown
from cstrack.fsutil import atomic_write_text

DOC = Path(__file__).resolve().parents[1] / "docs" / "catalog.md"
BEGIN, END = "<!-- schema:begin -->", "<!-- schema:end -->"


def current_section(doc: Path = DOC) -> str:
    """The generated part of ``doc`` as it stands (empty when the markers are missing)."""
    text = doc.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        return ""
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n")


def update(doc: Path = DOC) -> bool:
    """Rewrite the generated part of ``doc``; True when it changed."""
    text = doc.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{doc}: the markers {BEGIN} / {END} are missing")
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    new = f"{head}{BEGIN}\n{schema_markdown()}\n{END}{tail}"
    if new != text:
        atomic_write_text(doc, new)
    return new != text


def main(argv: list[str]) -> int:
    if "--check" in argv:
        if current_section() != schema_markdown():
            print(f"{DOC}: the column lists disagree with catalog/schemas.py; run python -m catalog.schemadoc",
                  file=sys.stderr)
            return 1
        return 0
    print(f"{DOC}: {'updated' if update() else 'already up to date'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
