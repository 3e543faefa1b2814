"""Evaluation identical to the MOTChallenge server (TrackEval metrics) plus a motmetrics event log.

- :func:`evaluate` - validate every file, preprocess as the server, run HOTA/CLEAR/Identity.
- :func:`prepare` / :func:`evaluate_prepared` - the same in two steps (to reuse the prepared data).
- :func:`event_log` - per-frame MATCH / SWITCH / MISS / FP rows from ``motmetrics``.
- :data:`PRESETS` - ``mot16``, ``mot17``, ``mot20``, ``mot15``, ``plain``.
"""

from cstrack.eval.evaluation import evaluate, evaluate_prepared, prepare
from cstrack.eval.events import EVENT_TYPES, accumulate, event_log
from cstrack.eval.presets import PRESETS, Preset, get_preset
from cstrack.eval.result import (
    COMBINED,
    JSON_FIELDS,
    METRIC_FIELDS,
    EvalResult,
    format_table,
)

__all__ = [
    "COMBINED",
    "EVENT_TYPES",
    "JSON_FIELDS",
    "METRIC_FIELDS",
    "PRESETS",
    "EvalResult",
    "Preset",
    "accumulate",
    "evaluate",
    "evaluate_prepared",
    "event_log",
    "format_table",
    "get_preset",
    "prepare",
]
