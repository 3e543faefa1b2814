"""The training layout's names: label files (the JDE rule) and list files (one image per line)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from cstrack.errors import DatasetError
from cstrack.fsutil import atomic_write_text

IMAGES_DIR = "images"
LABELS_DIR = "labels_with_ids"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def label_path_for(image: str | Path) -> Path:
    """JDE rule: the last ``images`` folder becomes ``labels_with_ids``, the extension ``.txt``."""
    p = Path(image)
    parts = p.parts
    idx = max((i for i, part in enumerate(parts[:-1]) if part == IMAGES_DIR), default=-1)
    if idx < 0:
        raise DatasetError(f"no '{IMAGES_DIR}' folder in the image path: cannot locate its label file", p)
    return Path(*parts[:idx], LABELS_DIR, *parts[idx + 1 :]).with_suffix(".txt")


def format_labels(rows: np.ndarray) -> str:
    """Label-file text for ``rows`` float [n, 6] = (class, identity, cx, cy, w, h) normalised."""
    return "".join(
        f"{int(c)} {int(i)} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n" for c, i, cx, cy, w, h in np.asarray(rows)
    )


def write_list(path: str | Path, images: Iterable[str | Path]) -> Path:
    """Write a list file: one image path per line, relative to the list file's folder when inside it."""
    p = Path(path)
    base = p.parent.resolve()
    lines = []
    for img in images:
        q = Path(img).resolve()
        try:
            lines.append(q.relative_to(base).as_posix())
        except ValueError:
            lines.append(q.as_posix())
    return atomic_write_text(p, "".join(f"{line}\n" for line in lines))


def read_list(path: str | Path) -> list[Path]:
    """Image paths of a list file (relative lines resolved against its folder; blank lines and
    lines starting with ``#`` skipped)."""
    p = Path(path)
    if not p.is_file():
        raise DatasetError("list file not found", p)
    out = []
    for line in p.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        q = Path(line)
        out.append(q if q.is_absolute() else p.parent / q)
    return out
