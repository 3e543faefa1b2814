"""The other training sources: CrowdHuman (``.odgt`` annotations) into JDE labels, and the
images of an already converted JDE-zoo dataset."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cstrack.data.convert.layout import IMAGE_SUFFIXES, IMAGES_DIR, format_labels, label_path_for
from cstrack.errors import ConfigError, DatasetError


def link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link ``src`` to ``dst`` (same file system), else copy it."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def crowdhuman_to_jde(
    odgt: str | Path,
    image_dirs: Sequence[str | Path],
    dataset_dir: str | Path,
    split: str,
    *,
    id_start: int = 0,
    box: str = "fbox",
) -> tuple[list[Path], int]:
    """Convert one CrowdHuman ``.odgt`` file into ``dataset_dir/images/<split>/<ID>.jpg`` + labels.

    Each line is a JSON record ``{"ID": ..., "gtboxes": [{"tag", "fbox", "vbox", "extra"}, ...]}``;
    boxes tagged ``person`` and not marked ``extra.ignore == 1`` are kept, each with its own new
    identity (CrowdHuman has no tracks).  ``box`` picks the full (``fbox``) or visible (``vbox``)
    box.  Images are looked up by ``<ID>.jpg`` in ``image_dirs`` and hard-linked (or copied).
    Returns (image paths, next free identity).  A malformed line raises :class:`DatasetError` with
    the odgt path and line.
    """
    from PIL import Image

    if box not in ("fbox", "vbox"):
        raise ConfigError(f"box: must be 'fbox' or 'vbox', got {box!r}")
    odgt = Path(odgt)
    index = {p.name: p for d in image_dirs for p in Path(d).rglob("*.jpg")}
    out_dir = Path(dataset_dir) / IMAGES_DIR / split
    next_id = id_start
    images: list[Path] = []
    for line_no, line in enumerate(odgt.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            image_id = str(rec["ID"])
            boxes = rec.get("gtboxes", [])
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise DatasetError(f"malformed odgt record ({exc})", odgt, line_no) from None
        src = index.get(f"{image_id}.jpg")
        if src is None:
            raise DatasetError(f"image {image_id}.jpg not found in {', '.join(map(str, image_dirs))}", odgt, line_no)
        try:
            with Image.open(src) as im:
                W, H = im.size
        except OSError as exc:
            raise DatasetError(f"unreadable image ({exc})", src) from None
        rows = []
        for b in boxes:
            if b.get("tag") != "person" or (b.get("extra") or {}).get("ignore", 0) == 1:
                continue
            try:
                x, y, w, h = (float(v) for v in b[box])
            except (KeyError, TypeError, ValueError):
                raise DatasetError(f"person without a valid {box}", odgt, line_no) from None
            if w <= 0 or h <= 0:
                continue
            rows.append((0, next_id, (x + w / 2) / W, (y + h / 2) / H, w / W, h / H))
            next_id += 1
        dst = out_dir / f"{image_id}.jpg"
        link_or_copy(src, dst)
        label = label_path_for(dst)
        label.parent.mkdir(parents=True, exist_ok=True)
        label.write_text(format_labels(np.asarray(rows, dtype=np.float64).reshape(-1, 6)), encoding="utf-8")
        images.append(dst)
    return images, next_id


def index_jde_images(root: str | Path) -> list[Path]:
    """Images under any ``images`` folder below ``root`` that have a label file, sorted."""
    out = []
    for p in sorted(Path(root).rglob("*")):
        is_image = p.suffix.lower() in IMAGE_SUFFIXES and IMAGES_DIR in p.parts[:-1] and p.is_file()
        if is_image and label_path_for(p).is_file():
            out.append(p)
    return out
