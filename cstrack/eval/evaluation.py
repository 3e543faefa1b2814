"""``evaluate()``: validate every file, apply the preset's server preprocessing, run TrackEval."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cstrack.errors import EvaluationError
from cstrack.eval.inputs import load_all, locate
from cstrack.eval.metrics import combine, run_metrics
from cstrack.eval.prepare import PreparedSequence, prepare_sequence
from cstrack.eval.presets import Preset, get_preset
from cstrack.eval.result import COMBINED, EvalResult, summarize


def prepare(
    gt_root: str | Path,
    results_root: str | Path,
    sequences: Sequence[str] | None = None,
    preset: str | Preset = "mot17",
    *,
    allow_missing: bool = False,
) -> list[PreparedSequence]:
    """Locate and validate every gt/result file, then preprocess each sequence (no metrics yet).

    Raises :class:`~cstrack.errors.DatasetError` (file + line) for an invalid file and
    :class:`~cstrack.errors.EvaluationError` for a missing one; a missing result file is counted
    as empty only with ``allow_missing=True``.
    """
    p = get_preset(preset)
    files = locate(gt_root, results_root, sequences)
    if not files:
        raise EvaluationError("no sequences to evaluate")
    loaded = load_all(files, p, allow_missing)
    return [prepare_sequence(s, p) for s in loaded]


def evaluate_prepared(prepared: Sequence[PreparedSequence], workers: int = 1) -> EvalResult:
    """Run HOTA, CLEAR, Identity and Count on prepared sequences and combine them."""
    if not prepared:
        raise EvaluationError("no sequences to evaluate")
    presets = {p.preset for p in prepared}
    if len(presets) != 1:
        raise EvaluationError(f"sequences prepared with different presets: {sorted(presets)}")
    per_seq = run_metrics(prepared, workers)
    frames = {p.name: p.num_frames for p in prepared}
    combined_raw = combine(per_seq)
    per_sequence = {s: summarize(per_seq[s], frames[s]) for s in sorted(per_seq)}
    combined = summarize(combined_raw, sum(frames.values()))
    raw = {**per_seq, COMBINED: combined_raw}
    return EvalResult(
        preset=presets.pop(),
        sequences=tuple(p.name for p in prepared),
        per_sequence=per_sequence,
        combined=combined,
        raw=raw,
        missing=tuple(p.name for p in prepared if p.missing_result),
    )


def evaluate(
    gt_root: str | Path,
    results_root: str | Path,
    sequences: Sequence[str] | None = None,
    preset: str | Preset = "mot17",
    *,
    allow_missing: bool = False,
    workers: int = 1,
) -> EvalResult:
    """Evaluate the result files of ``results_root`` against ``gt_root`` as the MOTChallenge server.

    - ``gt_root``: MOTChallenge sequence folders ``SEQ/seqinfo.ini`` + ``SEQ/gt/gt.txt``.
    - ``results_root``: ``SEQ.txt`` per sequence (or a TrackEval tracker folder with ``data/``).
    - ``sequences``: names to evaluate; ``None`` = ``seqmap.txt`` or every sequence folder.
    - ``preset``: ``mot16``, ``mot17``, ``mot20``, ``mot15`` or ``plain`` (see :mod:`.presets`).
    - ``workers``: processes for the metric jobs (1 = in this process).

    Returns per-sequence and combined HOTA / CLEAR / Identity metrics and counts
    (:class:`~cstrack.eval.result.EvalResult`).
    """
    return evaluate_prepared(
        prepare(gt_root, results_root, sequences, preset, allow_missing=allow_missing), workers
    )
