"""Fixtures of the inference-path tests: a private export cache, real frames, shared models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from cstrack.model import CSTrackModel, build_model
from cstrack.model.weights import load_coco_yolov5n

N_SIZE = (576, 320)  # cstrack-n at its real-time size (spec-free choice of issue 8)


@pytest.fixture(scope="session", autouse=True)
def _export_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Exported / quantised graphs go to a per-session folder, never the user's cache."""
    root = tmp_path_factory.mktemp("cstrack-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CSTRACK_CACHE", str(root))
        yield root


@pytest.fixture(scope="session")
def head8_frames(head8: Path) -> list[np.ndarray]:
    """The 8 real PETS09-S2L1 frames (BGR uint8, 768x576)."""
    files = sorted((head8 / "img1").glob("*.jpg"))
    assert len(files) == 8
    return [cv2.imread(str(f), cv2.IMREAD_COLOR) for f in files]


@pytest.fixture(scope="session")
def coco_n() -> CSTrackModel:
    """cstrack-n with the shipped COCO trunk + head (REN and SAAN seeded random): real pedestrian
    boxes on PETS09 frames."""
    torch.manual_seed(0)
    return load_coco_yolov5n(build_model("cstrack-n")).eval()  # REN kept (``--weights coco`` switches it off)
