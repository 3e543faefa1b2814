"""Scoring one parameter set: replay cached detections over frame windows, evaluate with TrackEval.

A :class:`Segment` is a window of a sequence (the whole of it, or one half of the "half" protocol:
frames ``1..n//2`` / ``n//2+1..n``, :func:`cstrack.data.convert.half_split`).  Each window is
tracked from a fresh tracker and evaluated as a sequence of its own, against its gt rows renumbered
from 1 (:func:`write_window_gt`), so that the val half never sees a track from the tune half.

:func:`score` is what a Dask task runs: its arguments are small and picklable (paths and a dict).
"""

from __future__ import annotations

import functools
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cstrack.data.mot import SeqInfo, write_results, write_seqinfo
from cstrack.data.mot import Sequence as MotSequence
from cstrack.errors import ConfigError
from cstrack.tune.space import apply

# Combined metrics recorded for every trial (server vocabulary; ratios as fractions).
RECORDED: tuple[str, ...] = ("HOTA", "DetA", "AssA", "MOTA", "IDF1", "IDSW", "FP", "FN")
OBJECTIVES: tuple[str, ...] = ("HOTA", "MOTA", "IDF1", "DetA", "AssA")


@dataclass(frozen=True)
class Segment:
    """Frames ``first..last`` of ``seq_dir`` (``last=None``: to the end), replayed from ``cache``;
    ``name`` labels the window (a folder name: unique within a job)."""

    name: str
    seq_dir: str
    cache: str
    first: int = 1
    last: int | None = None


def whole(seq_dir: str | Path, cache: str | Path) -> Segment:
    return Segment(Path(seq_dir).name, str(seq_dir), str(cache))


def halves(seq_dir: str | Path, cache: str | Path) -> tuple[Segment, Segment]:
    """The "half" protocol windows ``(tune: 1..n//2, val: n//2+1..n)``."""
    from cstrack.data.convert import half_split

    seq = MotSequence.open(seq_dir)
    a, b = half_split(seq.info.seq_length)
    name = seq.root.name
    return (Segment(f"{name}_f{a.start}-{a.stop - 1}", str(seq_dir), str(cache), a.start, a.stop - 1),
            Segment(f"{name}_f{b.start}-{b.stop - 1}", str(seq_dir), str(cache), b.start, b.stop - 1))


def write_window_gt(segments: Sequence[Segment], gt_root: str | Path) -> Path:
    """``<gt_root>/<segment>/seqinfo.ini + gt/gt.txt`` for each window (frames renumbered from 1)."""
    from cstrack.data.convert import cut_mot_file

    root = Path(gt_root)
    names = [s.name for s in segments]
    if len(set(names)) != len(names):
        raise ConfigError(f"sequences: two windows share a name ({names}); pass each sequence once")
    for s in segments:
        seq = MotSequence.open(s.seq_dir)
        last = seq.info.seq_length if s.last is None else s.last
        if not 1 <= s.first <= last <= seq.info.seq_length:
            raise ConfigError(f"window {s.name}: frames {s.first}..{last} outside 1..{seq.info.seq_length}")
        out = root / s.name
        info = seq.info
        write_seqinfo(out, SeqInfo(s.name, info.frame_rate, last - s.first + 1, info.im_width, info.im_height,
                                   info.im_dir, info.im_ext))
        frame_map = {f: f - s.first + 1 for f in range(s.first, last + 1)}
        cut_mot_file(seq.gt_path, out / "gt" / "gt.txt", "gt", frame_map, info.seq_length)
    return root


@dataclass(frozen=True)
class EvalJob:
    """What scoring a parameter set needs: the windows, their gt root (:func:`write_window_gt`),
    the tracker preset the parameters apply to, the evaluation preset, the objective metric and a
    scratch folder for result files."""

    segments: tuple[Segment, ...]
    gt_root: str
    preset: str
    eval_preset: str
    objective: str
    work_dir: str

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"--objective: expected one of {', '.join(OBJECTIVES)}, got {self.objective!r}")
        if not self.segments:
            raise ConfigError("sequences: nothing to score")


@functools.lru_cache(maxsize=16)
def _cached(path: str) -> Any:
    from cstrack.run.detcache import read_cache

    return read_cache(path)


def score(job: EvalJob, params: Mapping[str, Any], tag: str) -> dict[str, Any]:
    """Replay every window of ``job`` with ``params`` and evaluate.

    Returns ``{"value": objective, "combined": {metric: v}, "per_sequence": {window: {metric: v}},
    "frames", "replay_s"}`` (metrics of :data:`RECORDED`).  Result files go to
    ``<work_dir>/<tag>`` and are removed afterwards.
    """
    from cstrack.eval import evaluate
    from cstrack.run.detcache import replay

    config, conf = apply(job.preset, params)
    out = Path(job.work_dir) / tag
    frames, seconds = 0, 0.0
    try:
        for s in job.segments:
            run = replay(_cached(s.cache), config, conf, s.first, s.last)
            write_results(out / f"{s.name}.txt", run.table)
            frames += run.frames
            seconds += run.seconds
        res = evaluate(job.gt_root, out, [s.name for s in job.segments], job.eval_preset)
    finally:
        shutil.rmtree(out, ignore_errors=True)

    def pick(m: Mapping[str, Any]) -> dict[str, float]:
        return {k: float(m[k]) for k in RECORDED}

    combined = pick(res.combined)
    return {
        "value": combined[job.objective],
        "combined": combined,
        "per_sequence": {k: pick(v) for k, v in res.per_sequence.items()},
        "frames": frames,
        "replay_s": seconds,
    }
