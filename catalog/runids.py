"""Every catalog run id is built here.

- :func:`catalog_run_id`: ``<tracker>-<dataset>[-<split>]-<12 hex>``, hashed over what makes the run
  (the flows: the results and the flow run, so every flow run adds a run; ``cstrack eval``: the
  result files, preset, config, detection mode and source, so evaluating the same files again with
  it replaces the run).
- :func:`tune_run_id`: ``tune-<study>``, the ``tune_trials`` rows of a tuning study.
- A training run's id is its config's ``name`` (:class:`catalog.train_steps.CatalogSteps`).
"""

from __future__ import annotations

import re
from typing import Any

from cstrack.fsutil import stable_hash

_RUN_ID_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


def catalog_run_id(tracker: str, dataset: str, split: str | None, content: Any) -> str:
    """``<tracker>-<dataset>[-<split>]-<12 hex>``: the catalog's run id convention, hashed over
    ``content`` (any JSON-able value, :func:`cstrack.fsutil.stable_hash`)."""
    parts = [tracker, dataset] + ([split] if split else [])
    stem = _RUN_ID_CHARS.sub("-", "-".join(parts)).strip("-.")
    return f"{stem[:150]}-{stable_hash(content)[:12]}"


def tune_run_id(study: str) -> str:
    """The run id of tuning study ``study``'s ``tune_trials`` rows."""
    return f"tune-{study}"
