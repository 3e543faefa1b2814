"""Server-ready submissions: check a results folder against what the MOTChallenge server expects and
write the flat zip it accepts.

The expected sequences and their lengths are declared once in ``benchmarks.yaml`` beside this
module.  A submission is written only when every check passes:

- every expected sequence has ``<SEQ>.txt`` (MOT17: one per public detector copy, ``MOT17-02-DPM``,
  ``-FRCNN``, ``-SDP``);
- each file is a valid result file: frames 1-based and within the sequence's ``seqLength``, no
  track ID twice in a frame (:func:`cstrack.data.mot.read_mot` names the file and line).

Otherwise :class:`SubmissionError` lists every problem and nothing is written.
"""

from __future__ import annotations

import functools
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cstrack.errors import ConfigError, CSTrackError, DatasetError
from cstrack.fsutil import atomic_path

SPLITS = ("train", "test")


class SubmissionError(CSTrackError):
    """A results folder the server would reject; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"submission not written, {len(problems)} problem(s): " + "; ".join(problems))


@functools.lru_cache(maxsize=1)
def _benchmarks() -> dict[str, Any]:
    return yaml.safe_load((Path(__file__).parent / "benchmarks.yaml").read_text(encoding="utf-8"))


def benchmarks() -> tuple[str, ...]:
    return tuple(_benchmarks())


def expected_sequences(benchmark: str, split: str) -> dict[str, int]:
    """``{result file stem: seqLength}`` the server expects for ``benchmark`` / ``split``."""
    b = _benchmarks().get(benchmark.upper())
    if b is None:
        raise ConfigError(f"--benchmark: expected one of {', '.join(benchmarks())}, got {benchmark!r}")
    if split not in SPLITS:
        raise ConfigError(f"--split: expected one of {', '.join(SPLITS)}, got {split!r}")
    seqs: dict[str, int] = {str(k): int(v) for k, v in b[split].items()}
    dets = b.get("detectors") or []
    if not dets:
        return seqs
    return {f"{name}-{d}": n for name, n in seqs.items() for d in dets}


@dataclass(frozen=True)
class SubmissionCheck:
    """What :func:`check` found: the files to zip, problems, and ``.txt`` files the server ignores."""

    files: dict[str, Path]
    problems: list[str]
    ignored: list[str]
    rows: int


def check(results: str | Path, benchmark: str, split: str) -> SubmissionCheck:
    """Check every expected result file under ``results`` (see the module docstring)."""
    from cstrack.data.mot import read_mot

    root = Path(results)
    if not root.is_dir():
        raise ConfigError(f"RESULTS: no such folder {root}")
    want = expected_sequences(benchmark, split)
    files: dict[str, Path] = {}
    problems: list[str] = []
    missing = [s for s in want if not (root / f"{s}.txt").is_file()]
    if missing:
        problems.append(f"missing {len(missing)} of {len(want)} sequences: {', '.join(missing)}")
    rows = 0
    for seq, length in want.items():
        path = root / f"{seq}.txt"
        if not path.is_file():
            continue
        try:
            rows += len(read_mot(path, "result", length))
        except DatasetError as exc:
            problems.append(str(exc))
            continue
        files[seq] = path
    ignored = sorted(p.name for p in root.glob("*.txt") if p.stem not in want)
    return SubmissionCheck(files, problems, ignored, rows)


def write_submission(results: str | Path, benchmark: str, split: str, out: str | Path) -> SubmissionCheck:
    """Check, then write the flat zip ``out`` (``<SEQ>.txt`` at its root) atomically; raises
    :class:`SubmissionError` (and writes nothing) when a check fails."""
    if not str(out).lower().endswith(".zip"):
        raise ConfigError(f"--out: expected a .zip file, got {out}")
    res = check(results, benchmark, split)
    if res.problems:
        raise SubmissionError(res.problems)
    with atomic_path(out) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for seq in sorted(res.files):
            zf.write(res.files[seq], arcname=f"{seq}.txt")
    return res
