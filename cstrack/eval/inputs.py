"""Locate and validate every ground-truth and result file before any metric work.

Layouts accepted:

- gt root: MOTChallenge sequence folders ``SEQ/seqinfo.ini`` + ``SEQ/gt/gt.txt`` (an optional
  ``seqmap.txt`` lists the sequences, as in TrackEval's layout);
- results root: ``SEQ.txt`` per sequence, or a TrackEval tracker folder whose ``data/`` holds them.

Every file is parsed with :mod:`cstrack.data.mot` (malformed line, non-finite value, frame outside
``1..seqLength``, duplicate id in a frame) plus the checks the server adds for a preset (gt column
count and classes, result class column, negative ids).  All files are checked first; the first
problem is raised as :class:`~cstrack.errors.DatasetError` naming file and line, and the message
lists how many other files are also invalid.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cstrack.data.mot import MotTable, read_mot_columns, read_seqinfo
from cstrack.errors import DatasetError, EvaluationError
from cstrack.eval.presets import VALID_CLASSES, Preset


@dataclass(frozen=True)
class SequenceFiles:
    """Where one sequence's files are: ``gt_path`` (gt.txt), ``result_path`` (SEQ.txt)."""

    name: str
    seq_dir: Path
    gt_path: Path
    result_path: Path
    seq_length: int


@dataclass(frozen=True)
class LoadedSequence:
    """Validated tables of one sequence (rows in file order).

    ``gt_cls`` is the gt class column (column 8, truncated to int as the server does), ``None``
    for presets without classes.  ``result_cls`` is the result's class column likewise, ``None``
    when the file has fewer than 8 columns (the server then treats every row as a pedestrian).
    ``missing_result`` marks a sequence without result file counted as empty (explicit flag).
    """

    files: SequenceFiles
    gt: MotTable
    gt_cls: np.ndarray | None
    result: MotTable
    result_cls: np.ndarray | None
    missing_result: bool

    @property
    def name(self) -> str:
        return self.files.name

    @property
    def seq_length(self) -> int:
        return self.files.seq_length


def list_sequences(gt_root: str | Path) -> list[str]:
    """Sequences under ``gt_root``: the names in ``seqmap.txt`` when present (first line is a
    header, as in TrackEval), otherwise every sub-folder holding ``gt/gt.txt``, sorted."""
    root = Path(gt_root)
    if not root.is_dir():
        raise EvaluationError(f"{root}: gt root is not a folder")
    seqmap = root / "seqmap.txt"
    if seqmap.is_file():
        names = [ln.split(",")[0].strip() for ln in seqmap.read_text(encoding="utf-8").splitlines()[1:]]
        names = [n for n in names if n]
        if names:
            return names
    names = sorted(p.name for p in root.iterdir() if (p / "gt" / "gt.txt").is_file())
    if not names:
        raise EvaluationError(f"{root}: no sequence folders with gt/gt.txt")
    return names


def results_dir(results_root: str | Path) -> Path:
    """The folder holding ``SEQ.txt``: ``results_root`` itself, or its ``data/`` (TrackEval layout)."""
    root = Path(results_root)
    if not root.is_dir():
        raise EvaluationError(f"{root}: results root is not a folder")
    if not _has_txt(root) and (root / "data").is_dir():
        return root / "data"
    return root


def _has_txt(folder: Path) -> bool:
    """Whether ``folder`` holds a ``*.txt`` file; stops at the first one (a results folder of
    thousands of sequences is not listed whole for every sequence scored)."""
    with os.scandir(folder) as entries:
        return any(e.name.endswith(".txt") and e.is_file() for e in entries)


def locate(gt_root: str | Path, results_root: str | Path, sequences: Sequence[str] | None) -> list[SequenceFiles]:
    """Resolve the files of each requested sequence (reads ``seqinfo.ini`` for the length)."""
    gt = Path(gt_root)
    names = list(sequences) if sequences else list_sequences(gt)
    res = results_dir(results_root)
    seen: set[str] = set()
    out: list[SequenceFiles] = []
    for name in names:
        if not name or "/" in name or "\\" in name or name in (".", ".."):
            raise EvaluationError(f"invalid sequence name {name!r}")
        if name in seen:
            raise EvaluationError(f"sequence {name!r} requested twice")
        seen.add(name)
        seq_dir = gt / name
        if not seq_dir.is_dir():
            raise EvaluationError(f"{seq_dir}: no such sequence folder under the gt root")
        info = read_seqinfo(seq_dir)
        out.append(SequenceFiles(name, seq_dir, seq_dir / "gt" / "gt.txt", res / f"{name}.txt", info.seq_length))
    return out


# MOT15 gt has no class column (columns 8-10 are world coordinates, -1): the mot16/17/20 presets
# read column 8 as the class and fail on it.
_MOT15_HINT = "; MOT15-style gt has no class column: use --preset mot15"


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _load_gt(files: SequenceFiles, preset: Preset) -> tuple[MotTable, np.ndarray | None]:
    table, cols = read_mot_columns(files.gt_path, "gt", files.seq_length)
    p = files.gt_path
    if len(table) == 0:
        return table, np.zeros(0, np.int64) if preset.class_preproc else None
    if cols.shape[1] < preset.min_gt_columns:
        raise DatasetError(
            f"preset {preset.name} needs gt rows with at least {preset.min_gt_columns} columns "
            f"(frame,id,x,y,w,h,flag,class,...), found {cols.shape[1]}{_MOT15_HINT}", p, int(table.lines[0]),
        )
    if (table.id < 0).any():
        i = _first(table.id < 0)
        raise DatasetError(f"negative gt id {int(table.id[i])}", p, int(table.lines[i]))
    if preset.class_preproc:
        cls = cols[:, 7]
        bad = ~np.isin(cls, VALID_CLASSES)
        if bad.any():
            i = _first(bad)
            hint = _MOT15_HINT if cols.shape[1] == 10 or cls[i] == -1 else ""
            raise DatasetError(
                f"gt class {float(cls[i]):g} is not a MOTChallenge class (1..13) for preset {preset.name}{hint}",
                p, int(table.lines[i]),
            )
        return table, np.trunc(cls).astype(np.int64)
    return table, None


def _load_result(files: SequenceFiles, preset: Preset) -> tuple[MotTable, np.ndarray | None]:
    table, cols = read_mot_columns(files.result_path, "result", files.seq_length)
    p = files.result_path
    if len(table) == 0:
        return table, None
    if (table.id < 0).any():
        i = _first(table.id < 0)
        raise DatasetError(f"negative track id {int(table.id[i])}", p, int(table.lines[i]))
    flat = (table.tlwh[:, 2] <= 0) | (table.tlwh[:, 3] <= 0)
    if flat.any():  # a box no gt box can match: a writer bug, not a tracker's answer
        i = _first(flat)
        w, h = table.tlwh[i, 2:4]
        raise DatasetError(f"box of zero width or height (w={float(w):g}, h={float(h):g})", p, int(table.lines[i]))
    cls = np.trunc(cols[:, 7]).astype(np.int64) if cols.shape[1] >= 8 else None
    if preset.check_tracker_class and cls is not None and (cls > 1).any():
        i = _first(cls > 1)
        raise DatasetError(
            f"class column (8th) is {float(cols[i, 7]):g}: only pedestrian results (class 1 or -1) can be "
            f"evaluated with preset {preset.name}", p, int(table.lines[i]),
        )
    return table, cls


def load_sequence(files: SequenceFiles, preset: Preset, allow_missing: bool = False) -> LoadedSequence:
    """Validate and read one sequence's gt and result files."""
    gt, gt_cls = _load_gt(files, preset)
    if not files.result_path.is_file():
        if not allow_missing:
            raise EvaluationError(
                f"{files.result_path}: no result file for sequence {files.name} "
                "(pass --allow-missing to count it as empty, or --sequences to evaluate only the others)"
            )
        return LoadedSequence(files, gt, gt_cls, MotTable.empty(), None, True)
    result, cls = _load_result(files, preset)
    return LoadedSequence(files, gt, gt_cls, result, cls, False)


def load_all(
    files: Sequence[SequenceFiles], preset: Preset, allow_missing: bool = False
) -> list[LoadedSequence]:
    """Validate every sequence before returning any; raise the first problem (naming file and line)
    with a count of the other invalid sequences in its message."""
    loaded: list[LoadedSequence] = []
    errors: list[EvaluationError | DatasetError] = []
    for f in files:
        try:
            loaded.append(load_sequence(f, preset, allow_missing))
        except (DatasetError, EvaluationError) as exc:
            errors.append(exc)
    if errors:
        first = errors[0]
        if len(errors) == 1:
            raise first
        others = "; ".join(str(e) for e in errors[1:4]) + ("; ..." if len(errors) > 4 else "")
        note = f" [and {len(errors) - 1} more invalid sequence(s): {others}]"
        if isinstance(first, DatasetError):
            raise DatasetError(_bare_message(first) + note, first.path, first.line) from first
        raise EvaluationError(str(first) + note) from first
    return loaded


def _bare_message(exc: DatasetError) -> str:
    """The message of ``exc`` without the ``path:line:`` prefix its constructor added."""
    text = str(exc)
    if exc.path is None:
        return text
    where = f"{exc.path}:{exc.line}: " if exc.line is not None else f"{exc.path}: "
    return text[len(where):] if text.startswith(where) else text
