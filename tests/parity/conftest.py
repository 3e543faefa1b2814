"""Parity fixtures: numbers made by running the original CSTrack code (SOTS).

Everything is read from ``$CSTRACK_SOTS_PARITY`` (default ``shared/reference/sots-parity``): the
architecture from ``tiny_config.json``, sizes and counts from the arrays, so these tests pass on any
folder with this layout.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cstrack.paths import sots_parity_dir


@pytest.fixture(scope="session")
def parity() -> Path:
    d = sots_parity_dir()
    assert (d / "tiny_config.json").is_file(), f"parity fixtures not found in {d} (set CSTRACK_SOTS_PARITY)"
    return d


@pytest.fixture(scope="session")
def tiny_config(parity: Path) -> dict[str, Any]:
    return json.loads((parity / "tiny_config.json").read_text())


@pytest.fixture(scope="session")
def tiny_outputs(parity: Path) -> dict[str, np.ndarray]:
    with np.load(parity / "tiny_outputs.npz") as z:
        return {k: z[k] for k in z.files}
