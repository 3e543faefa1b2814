"""The C-reader fast path of ``cstrack.data.mot`` and ``read_mot_columns`` (evaluation needs them)."""

from __future__ import annotations

import numpy as np
import pytest

from cstrack.data import mot
from cstrack.errors import DatasetError
from cstrack.paths import shared_data


def _both(text: str, kind: mot.Kind = "result"):
    fast = mot._parse_rows_fast(text, kind)
    slow = mot._parse_rows_checked(text, kind, "<t>")
    return fast, slow


@pytest.mark.parametrize("n_rows", [5, 2500])  # below and above the pandas threshold
def test_fast_path_is_bit_identical_to_float(n_rows):
    rng = np.random.default_rng(n_rows)
    vals = rng.normal(0, 1000, size=(n_rows, 10)) * 10.0 ** rng.integers(-6, 6, size=(n_rows, 10))
    text = "\n".join(",".join(repr(float(v)) for v in row) for row in vals) + "\n"
    (arr, lines), (ref, ref_lines) = _both(text)
    assert np.array_equal(arr, vals) and np.array_equal(arr, ref)
    assert lines.tolist() == ref_lines.tolist() == list(range(1, n_rows + 1))


def test_fast_path_on_every_shared_mot_file():
    files = [p for p in shared_data().rglob("*.txt") if p.name != "seqmap.txt"]
    assert len(files) >= 10
    for p in files:
        kind = "gt" if p.parent.name == "gt" else ("det" if p.parent.name == "det" else "result")
        fast, slow = _both(p.read_text(), kind)
        assert fast is not None, p
        assert np.array_equal(fast[0], slow[0]) and np.array_equal(fast[1], slow[1]), p


def test_blank_lines_keep_source_line_numbers():
    text = "\n1,1,0,0,1,1,1\n\n  \n2,1,0,0,1,1,1\n"
    (arr, lines), (_, ref_lines) = _both(text)
    assert lines.tolist() == ref_lines.tolist() == [2, 5]
    assert arr[:, 0].tolist() == [1.0, 2.0]


@pytest.mark.parametrize("n_rows", [3, 2500])
@pytest.mark.parametrize(
    ("last", "message"),
    [("9,1,0,0,1", "5 columns"), ('9,1,0,0,1,1,"1"', "non-numeric"), ("9,1,0,0,1,1,1,1", "columns where")],
)
def test_irregular_rows_fall_back_to_the_checked_parser(n_rows, last, message):
    text = "".join(f"{f},1,0,0,1,1,1\n" for f in range(1, n_rows + 1)) + last + "\n"
    with pytest.raises(DatasetError, match=message) as exc:
        mot.parse_mot(text, "result", source="r.txt")
    assert exc.value.line == n_rows + 1


def test_read_mot_columns_keeps_unused_columns(tmp_path):
    p = tmp_path / "r.txt"
    p.write_text("1,3,10,20,30,40,0.9,1,-1,-1\n2,3,11,21,31,41,0.8,-1,5.5,-1\n")
    table, cols = mot.read_mot_columns(p, "result", seq_length=2)
    assert cols.shape == (2, 10)
    assert cols[:, 7].tolist() == [1.0, -1.0] and cols[1, 8] == 5.5
    assert table.cls.tolist() == [-1, -1]  # results keep no class in the table itself
    assert table.tlwh[1].tolist() == [11, 21, 31, 41] and table.lines.tolist() == [1, 2]
