"""cstrack.markdown.markdown_table: the one Markdown table writer (reports, artifacts, tuning)."""

from __future__ import annotations

import pytest

from cstrack.markdown import markdown_table


def test_header_alignment_rows_and_escaping() -> None:
    text = markdown_table(["name", "MOTA"], [["a|b", "81.2"], ["c", "-"]], [False, True])
    assert text == "| name | MOTA |\n| --- | ---: |\n| a\\|b | 81.2 |\n| c | - |"


def test_left_aligned_by_default_and_no_rows() -> None:
    assert markdown_table(["x", "y", "z"], []) == "| x | y | z |\n| --- | --- | --- |"


def test_ragged_rows_are_refused() -> None:
    with pytest.raises(ValueError, match="2 cells under 3 columns"):
        markdown_table(["x", "y", "z"], [["1", "2"]])
    with pytest.raises(ValueError, match="alignments"):
        markdown_table(["x"], [], [True, False])
