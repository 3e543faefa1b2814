"""Helpers shared by the evaluation tests: tiny MOTChallenge folders written on the fly."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from cstrack.data.mot import SeqInfo, write_seqinfo
from cstrack.paths import shared_data

GOLDEN = shared_data() / "eval-golden"


def write_sequence(
    gt_root: Path, name: str, seq_length: int, gt_rows: Sequence[str], results_root: Path | None = None,
    result_rows: Sequence[str] | None = None,
) -> Path:
    """``gt_root/name/{seqinfo.ini,gt/gt.txt}`` and, when given, ``results_root/name.txt``."""
    seq = gt_root / name
    (seq / "gt").mkdir(parents=True, exist_ok=True)
    write_seqinfo(seq, SeqInfo(name, 25, seq_length, 640, 480))
    (seq / "gt" / "gt.txt").write_text("".join(f"{r}\n" for r in gt_rows))
    if results_root is not None and result_rows is not None:
        results_root.mkdir(parents=True, exist_ok=True)
        (results_root / f"{name}.txt").write_text("".join(f"{r}\n" for r in result_rows))
    return seq


@pytest.fixture
def make_sequence(tmp_path: Path) -> Callable[..., tuple[Path, Path]]:
    """Factory: ``make_sequence(name, seq_length, gt_rows, result_rows)`` -> (gt_root, results_root)."""
    gt_root, res_root = tmp_path / "gt", tmp_path / "res"

    def make(name: str, seq_length: int, gt_rows: Sequence[str], result_rows: Sequence[str] | None):
        write_sequence(gt_root, name, seq_length, gt_rows, res_root, result_rows)
        res_root.mkdir(parents=True, exist_ok=True)
        return gt_root, res_root

    return make
