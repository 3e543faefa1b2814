"""Shared fixtures: the read-only shared data folder and small helpers."""

from __future__ import annotations

from pathlib import Path

import pytest

from cstrack.paths import shared_data, shared_dir


@pytest.fixture(scope="session")
def shared() -> Path:
    d = shared_dir()
    assert d.is_dir(), f"../shared not found at {d} (set CSTRACK_SHARED)"
    return d


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return shared_data()


@pytest.fixture(scope="session")
def head8(data_dir: Path) -> Path:
    """PETS09-S2L1 frames 1-8 with images, gt and det."""
    return data_dir / "mot15" / "PETS09-S2L1-head8"
