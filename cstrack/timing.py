"""The stages a tracked frame's time is split into, named once for the runner, the source runner,
the speed benchmark, timing records (``timing.json``: ``"ms": {stage: mean ms per frame}``) and
the catalog's ``<stage>_ms`` columns.

- ``read``: reading the frame (file, video or stream; for a live source, waiting for it too);
- ``preprocess``: letterbox + tensor;
- ``forward``: the network;
- ``postprocess``: box decoding + NMS + embeddings (or boxes from a table + embeddings);
- ``associate``: the tracker update.

Records and catalog partitions written before the ``decode`` -> ``read`` rename are read with
:func:`stage_ms` / :data:`RENAMED`.  A leaf: imports nothing of the project.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Frames read + letterboxed ahead of the one in the network (issue 8): the runner's and the
# pipeline records' default.
DEFAULT_PREFETCH = 2

STAGES: tuple[str, ...] = ("read", "preprocess", "forward", "postprocess", "associate")

RENAMED: dict[str, str] = {"decode": "read"}  # old stage name -> its name now


def stage_ms(ms: Mapping[str, Any]) -> dict[str, float]:
    """``{stage: ms}`` of a timing record's ``ms`` (old stage names renamed, unknown keys dropped)."""
    out = {RENAMED.get(k, k): float(v) for k, v in ms.items()}
    return {k: v for k, v in out.items() if k in STAGES}
