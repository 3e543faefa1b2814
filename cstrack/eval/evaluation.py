"""``evaluate()``: validate every file, apply the preset's server preprocessing, run TrackEval."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cstrack.errors import EvaluationError
from cstrack.eval.inputs import load_all, locate
from cstrack.eval.metrics import run_metrics
from cstrack.eval.prepare import PreparedSequence, prepare_sequence
from cstrack.eval.presets import Preset, get_preset
from cstrack.eval.result import EvalResult


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
    """Run HOTA, CLEAR, Identity and Count on prepared sequences and combine them
    (:func:`cstrack.eval.scores.combine_scores`: the same combination as sequences scored apart)."""
    from cstrack.eval.scores import SequenceScore, combine_scores

    if not prepared:
        raise EvaluationError("no sequences to evaluate")
    presets = {p.preset for p in prepared}
    if len(presets) != 1:
        raise EvaluationError(f"sequences prepared with different presets: {sorted(presets)}")
    per_seq = run_metrics(prepared, workers)
    return combine_scores([SequenceScore(p.name, p.preset, p.num_frames, per_seq[p.name], p.missing_result)
                           for p in prepared])


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
