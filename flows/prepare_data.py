"""``prepare-data``: download + verify + convert registry datasets into a data root (idempotent:
a dataset whose preparation record matches its registry entry is skipped)."""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.logging import get_run_logger

from flows.params import PrepareDataParams
from tasks.data import prepare_dataset


@flow(name="prepare-data", log_prints=True)
def prepare_data(params: PrepareDataParams) -> list[dict[str, Any]]:
    """Prepare every dataset of ``params.datasets`` (mixture names expand to their datasets), in order."""
    from pathlib import Path

    from cstrack.data.registry import load_registry

    names = load_registry(params.registry).expand(params.datasets)
    from cstrack.storage import is_remote

    root = params.data_root if is_remote(params.data_root) else str(Path(params.data_root).expanduser().resolve())
    out = [prepare_dataset(name, root, params.registry) for name in names]
    get_run_logger().info("%d dataset(s) ready in %s (%d already prepared)", len(out), root,
                          sum(bool(r["skipped"]) for r in out))
    return out
