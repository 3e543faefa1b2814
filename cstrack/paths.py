"""Where the project finds its shipped resources."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def shared_dir() -> Path:
    """The read-only ``shared/`` folder (``$CSTRACK_SHARED`` or ``../shared`` beside the repo)."""
    env = os.environ.get("CSTRACK_SHARED")
    return Path(env) if env else REPO_ROOT.parent / "shared"


def shared_data() -> Path:
    return shared_dir() / "data"


def coco_yolov5n_weights() -> Path:
    """The COCO-pretrained YOLOv5n v6 state dict shipped in ``shared/weights``."""
    return shared_dir() / "weights" / "yolov5n_coco_v6.pt"


# The CPU checkpoint tracking uses when no --weights is given (issue 16): COCO's detector with
# identity embeddings learned on PETS09 (docs/training.md), at its record's 1088x608 / conf 0.4.
SHIPPED_WEIGHTS = "weights/cstrack-n_cpu.pt"


def shipped_weights() -> Path:
    """The shipped default CPU checkpoint (with its ``.json`` record beside it)."""
    return REPO_ROOT / SHIPPED_WEIGHTS


def sots_parity_dir() -> Path:
    """Fixtures made by running the original CSTrack code (``$CSTRACK_SOTS_PARITY``, default
    ``shared/reference/sots-parity``); their README describes every array."""
    env = os.environ.get("CSTRACK_SOTS_PARITY")
    return Path(env) if env else shared_dir() / "reference" / "sots-parity"
