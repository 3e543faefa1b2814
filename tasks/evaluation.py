"""Scoring a tracked sequence where it was tracked (a Dask worker), right after tracking.

:func:`score_tracked` is a plain function: the flow submits it to Dask for a sequence tracked by a
per-sequence task (no Prefect task run: a few milliseconds of work needs no orchestration), and a
shard (:mod:`tasks.shard`) calls it after each sequence it tracked.  It returns a small
:class:`ScoredSequence`: TrackEval's per-sequence result dicts (:class:`cstrack.eval.scores.
SequenceScore`) and, when asked, the sequence's event log rows; the flow combines the scores of a
(dataset, split) exactly as :func:`cstrack.eval.evaluate` would (:func:`cstrack.eval.scores.
combine_scores`).  Memory: one sequence's prepared data at a time on the worker.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cstrack.errors import CSTrackError
from cstrack.eval.scores import SequenceScore
from tasks.records import SequenceRef


@dataclass(frozen=True)
class ScoredSequence:
    """One sequence's score (or ``error``: ``Type: first line``, e.g. a malformed gt file), its
    event log (``events``: :func:`catalog.ingest.event_rows` columns, ``None`` when not asked
    for), the seconds it took and the worker (host/pid) that did it."""

    label: str
    score: SequenceScore | None
    events: Any = field(default=None, repr=False, compare=False)  # pandas DataFrame or None
    error: str | None = None
    seconds: float = 0.0
    worker: str = ""


def score_tracked(seq: SequenceRef, out_dir: str, preset: str, events: bool = True) -> ScoredSequence:
    """Score ``<out_dir>/<seq.name>.txt`` against ``seq``'s ground truth with ``preset``; with
    ``events`` also its motmetrics event log.  A project error (bad file) is returned, not raised:
    the flow reports it for the sequence's (dataset, split), as the evaluate task would."""
    import os
    import socket

    from cstrack.eval.events import event_log
    from cstrack.eval.scores import score_sequence

    t0 = time.perf_counter()
    worker = f"{socket.gethostname()}/{os.getpid()}"
    label = f"{seq.dataset}/{seq.split}/{seq.name}"
    try:
        score, prepared = score_sequence(seq.gt_root, Path(out_dir), seq.name, preset)
        log = event_log(prepared) if events else None
    except (CSTrackError, OSError) as exc:
        text = str(exc).strip().splitlines()
        return ScoredSequence(label, None, error=f"{type(exc).__name__}: {text[0] if text else ''}",
                              seconds=time.perf_counter() - t0, worker=worker)
    return ScoredSequence(label, score, log, None, time.perf_counter() - t0, worker)
