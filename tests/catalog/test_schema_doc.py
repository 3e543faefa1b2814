"""docs/catalog.md's column lists are generated from catalog/schemas.py and must agree with it."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from catalog import schemadoc
from catalog.schemas import COLUMNS, TABLES, columns_markdown, schema_markdown


def test_the_doc_lists_every_column_of_the_code() -> None:
    assert schemadoc.current_section() == schema_markdown(), "run: .venv/bin/python -m catalog.schemadoc"


def test_every_column_has_a_meaning_and_ratios_say_fraction() -> None:
    for table, schema in TABLES.items():
        cols = COLUMNS[table]
        assert [c.name for c in cols] == schema.names
        for c in cols:
            assert c.meaning, f"{table}.{c.name} has no meaning"
        for m in ("HOTA", "MOTA", "IDF1"):
            if m in schema.names:
                assert next(c for c in cols if c.name == m).unit == "fraction (0-1)"


def test_a_changed_schema_is_caught(tmp_path: Path, monkeypatch) -> None:
    doc = tmp_path / "catalog.md"
    doc.write_text(f"intro\n{schemadoc.BEGIN}\n{schema_markdown()}\n{schemadoc.END}\nend\n")
    assert schemadoc.current_section(doc) == schema_markdown()
    row = columns_markdown("cpu_calibration").splitlines()[2]
    assert row == "| `run_id` | string | no | the catalog run the calibration goes with |  |"
    # a column added in the code but not in the doc: the sections differ until the doc is rewritten
    from catalog import schemas

    extra = (*COLUMNS["cpu_calibration"], schemas.Column("extra", pa.int32(), True, "an added column", "count"))
    monkeypatch.setitem(schemas.COLUMNS, "cpu_calibration", extra)
    assert schemadoc.current_section(doc) != schema_markdown()
    assert schemadoc.update(doc) and schemadoc.current_section(doc) == schema_markdown()
    assert doc.read_text().startswith("intro\n") and doc.read_text().endswith("end\n")
    assert "| `extra` | int32 | yes | an added column | count |" in doc.read_text()
