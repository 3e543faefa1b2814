"""Tracker tuning on cached network outputs (issue 17): search space, scoring, study, report."""

from cstrack.tune.evaluate import EvalJob, Segment, halves, score, whole, write_window_gt
from cstrack.tune.space import SEARCH_SPACES, Param, apply, default_params, search_space
from cstrack.tune.study import StudyConfig, StudyResult, catalog_rows, run_study, write_best_preset

__all__ = [
    "SEARCH_SPACES",
    "EvalJob",
    "Param",
    "Segment",
    "StudyConfig",
    "StudyResult",
    "apply",
    "catalog_rows",
    "default_params",
    "halves",
    "run_study",
    "score",
    "search_space",
    "whole",
    "write_best_preset",
    "write_window_gt",
]
