"""One sequence scored on its own, and sequences combined as the server combines them.

TrackEval evaluates every sequence separately (``eval_sequence``) and then combines the per-sequence
result dicts (``combine_sequences``): CLEAR, Identity and Count add their integer counts and
recompute the ratios; HOTA adds its per-alpha TP/FN/FP arrays (19 thresholds), weights AssA/AssRe/
AssPr and LocA by the per-alpha TP and recomputes.  So a sequence's TrackEval result dicts are all
the combination needs: :func:`score_sequence` computes them where the sequence was tracked (a Dask
worker, right after tracking) and :func:`combine_scores` gives the same :class:`EvalResult`, to the
last digit, as :func:`cstrack.eval.evaluate` on the same files (it is the code
:func:`~cstrack.eval.evaluate_prepared` runs; sequences combined in sorted name order).

A :class:`SequenceScore` is small (about 2 KB: a few arrays of 19 floats and counts) and round-trips
through JSON exactly (:meth:`SequenceScore.to_json`: numpy scalars and arrays keep their dtype,
floats are written with ``repr``), so it can be kept beside a result as a cache.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cstrack.errors import EvaluationError
from cstrack.eval.inputs import load_all, locate
from cstrack.eval.metrics import METRIC_NAMES, SeqResult, combine, eval_metric
from cstrack.eval.prepare import PreparedSequence, prepare_sequence
from cstrack.eval.presets import Preset, get_preset
from cstrack.eval.result import COMBINED, EvalResult, summarize


@dataclass(frozen=True)
class SequenceScore:
    """TrackEval's result dicts of one sequence (``raw[metric]``, metric in
    :data:`~cstrack.eval.metrics.METRIC_NAMES`) with what combining needs: its name, preset,
    frame count and whether its result file was missing (counted as empty)."""

    name: str
    preset: str
    frames: int
    raw: SeqResult = field(repr=False, compare=False)
    missing: bool = False

    def __post_init__(self) -> None:
        absent = [m for m in METRIC_NAMES if m not in self.raw]
        if absent:
            raise EvaluationError(f"score of {self.name}: metrics {absent} missing")

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict that :meth:`from_json` turns back into an equal score (bit for bit)."""
        return {"name": self.name, "preset": self.preset, "frames": self.frames, "missing": self.missing,
                "raw": {m: {k: _encode(v) for k, v in res.items()} for m, res in self.raw.items()}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SequenceScore:
        try:
            raw = {m: {k: _decode(v) for k, v in res.items()} for m, res in data["raw"].items()}
            return cls(str(data["name"]), str(data["preset"]), int(data["frames"]), raw, bool(data["missing"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise EvaluationError(f"sequence score record: {type(exc).__name__}: {exc}") from None


def _encode(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return {"__ndarray__": v.dtype.str, "shape": list(v.shape), "values": v.ravel().tolist()}
    if isinstance(v, np.generic):
        return {"__scalar__": v.dtype.str, "value": v.item()}
    if isinstance(v, float | int | str | bool) or v is None:
        return v
    raise EvaluationError(f"sequence score: cannot record a value of type {type(v).__name__}")


def _decode(v: Any) -> Any:
    if isinstance(v, dict) and "__ndarray__" in v:
        return np.asarray(v["values"], dtype=np.dtype(v["__ndarray__"])).reshape(v["shape"])
    if isinstance(v, dict) and "__scalar__" in v:
        return np.dtype(v["__scalar__"]).type(v["value"])
    return v


def score_prepared(seq: PreparedSequence) -> SequenceScore:
    """HOTA, CLEAR, Identity and Count of one prepared sequence."""
    raw = {m: eval_metric(m, seq) for m in METRIC_NAMES}
    return SequenceScore(seq.name, seq.preset, seq.num_frames, raw, seq.missing_result)


def score_sequence(gt_root: str | Path, results_root: str | Path, name: str, preset: str | Preset = "mot17",
                   *, allow_missing: bool = False) -> tuple[SequenceScore, PreparedSequence]:
    """Validate, preprocess and score sequence ``name`` (gt under ``gt_root``, ``<name>.txt`` in
    ``results_root``); returns the score and the prepared data (for the event log).  Raises as
    :func:`cstrack.eval.prepare` does (file and line)."""
    p = get_preset(preset)
    (loaded,) = load_all(locate(gt_root, results_root, [name]), p, allow_missing)
    prepared = prepare_sequence(loaded, p)
    return score_prepared(prepared), prepared


def combine_scores(scores: Sequence[SequenceScore]) -> EvalResult:
    """The evaluation of these sequences together: per-sequence metrics and their combination,
    as :func:`cstrack.eval.evaluate` gives them (``sequences`` in the given order)."""
    if not scores:
        raise EvaluationError("no sequences to evaluate")
    presets = {s.preset for s in scores}
    if len(presets) != 1:
        raise EvaluationError(f"sequences prepared with different presets: {sorted(presets)}")
    names = [s.name for s in scores]
    if len(set(names)) != len(names):
        raise EvaluationError(f"a sequence scored twice: {sorted({n for n in names if names.count(n) > 1})}")
    per_seq = {s.name: s.raw for s in scores}
    combined_raw = combine(per_seq)
    return EvalResult(
        preset=presets.pop(),
        sequences=tuple(names),
        per_sequence={s.name: summarize(s.raw, s.frames) for s in sorted(scores, key=lambda s: s.name)},
        combined=summarize(combined_raw, sum(s.frames for s in scores)),
        raw={**per_seq, COMBINED: combined_raw},
        missing=tuple(s.name for s in scores if s.missing),
    )
