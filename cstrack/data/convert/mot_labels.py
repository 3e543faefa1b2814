"""MOTChallenge sequences -> JDE training labels (``labels_with_ids``) and list files, with the
"half" split protocol."""

from __future__ import annotations

import csv
import fnmatch
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cstrack.data.convert.layout import IMAGES_DIR, LABELS_DIR, format_labels, label_path_for, write_list
from cstrack.data.convert.ranges import half_split
from cstrack.data.mot import Sequence as MotSequence
from cstrack.data.mot import counted_gt
from cstrack.errors import ConfigError, DatasetError
from cstrack.fsutil import atomic_write_text


@dataclass(frozen=True)
class LabelSummary:
    """What :func:`write_mot_labels` wrote."""

    sequences: tuple[str, ...]
    images: int
    boxes: int
    identities: int  # number of distinct identities (ids 0..identities-1)
    lists: dict[str, int] = field(default_factory=dict)  # list file name -> number of images


def find_sequences(root: str | Path) -> list[Path]:
    """MOT sequence folders (containing ``seqinfo.ini``) under ``root``, sorted."""
    return sorted(p.parent for p in Path(root).rglob("seqinfo.ini"))


def sequence_label_rows(seq: MotSequence, visibility: float = 0.0) -> tuple[dict[int, np.ndarray], np.ndarray]:
    """JDE rows per frame for the counted gt of ``seq`` (raw gt ids in column 1).

    Kept: flag 1 and, where the file has classes, class 1 (pedestrian), with visibility >=
    ``visibility`` where known (:func:`cstrack.data.mot.counted_gt`).  Returns ``({frame: float64
    [n, 6]}, sorted unique raw ids)``.
    """
    table = counted_gt(seq.gt(), visibility)
    W, H = seq.info.im_width, seq.info.im_height
    x, y, w, h = table.tlwh.T
    rows = np.stack([np.zeros(len(table)), table.id.astype(np.float64), (x + w / 2) / W, (y + h / 2) / H, w / W, h / H], 1)
    per_frame = {int(f): rows[idx] for f, idx in table.frame_slices().items()}
    return per_frame, np.unique(table.id)


def write_mot_labels(
    dataset_dir: str | Path,
    *,
    splits: Sequence[str] = ("train",),
    sequences: str = "*",
    visibility: float = 0.0,
    id_start: int = 0,
    half: bool = True,
) -> LabelSummary:
    """Write JDE labels and list files for the MOT sequences in ``dataset_dir/images/<split>/``.

    Identities are renumbered ``id_start, id_start+1, ...`` in (split, sequence, gt id) order so
    that they are unique across the sequences (pass ``id_start`` to continue after another dataset).
    Every frame gets a label file (empty when no box is counted).  List files: ``<split>.txt`` (all
    frames) and, with ``half``, ``<split>_half.txt`` / ``val_half.txt`` from the "half" protocol
    (:func:`half_split`).  ``ids.csv`` in the labels folder maps (split, sequence, gt id) to the
    identity written.  Sequences without ``gt/gt.txt`` are skipped.
    """
    if not 0.0 <= visibility <= 1.0:
        raise ConfigError(f"visibility: must be in [0, 1], got {visibility}")
    if id_start < 0:
        raise ConfigError(f"id_start: must be >= 0, got {id_start}")
    root = Path(dataset_dir)
    next_id = id_start
    names: list[str] = []
    lists: dict[str, list[Path]] = {}
    id_rows: list[tuple[str, str, int, int]] = []
    n_boxes = 0
    for split in splits:
        split_dir = root / IMAGES_DIR / split
        seq_dirs = [d for d in sorted(split_dir.iterdir()) if (d / "seqinfo.ini").is_file()] if split_dir.is_dir() else []
        for seq_dir in seq_dirs:
            if not fnmatch.fnmatchcase(seq_dir.name, sequences):
                continue
            seq = MotSequence.open(seq_dir)
            if not seq.gt_path.is_file():
                continue
            per_frame, raw_ids = sequence_label_rows(seq, visibility)
            id_map = {int(r): next_id + k for k, r in enumerate(raw_ids)}
            id_rows += [(split, seq.name, r, i) for r, i in id_map.items()]
            next_id += len(id_map)
            images = []
            for frame in range(1, seq.info.seq_length + 1):
                img = seq.image_path(frame)
                if not img.is_file():
                    raise DatasetError(f"image of frame {frame} missing (seqLength={seq.info.seq_length})", img)
                rows = per_frame.get(frame, np.zeros((0, 6)))
                if len(rows):
                    rows = rows.copy()
                    rows[:, 1] = [id_map[int(r)] for r in rows[:, 1]]
                n_boxes += len(rows)
                label = label_path_for(img)
                label.parent.mkdir(parents=True, exist_ok=True)
                label.write_text(format_labels(rows), encoding="utf-8")
                images.append(img)
            names.append(f"{split}/{seq.name}")
            lists.setdefault(split, []).extend(images)
            if half:
                first, second = half_split(len(images))
                lists.setdefault(f"{split}_half", []).extend(images[i - 1] for i in first)
                lists.setdefault("val_half", []).extend(images[i - 1] for i in second)
    counts = {}
    for list_name, images in lists.items():
        write_list(root / f"{list_name}.txt", images)
        counts[f"{list_name}.txt"] = len(images)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["split", "sequence", "gt_id", "identity"])
    writer.writerows(id_rows)
    if names:
        atomic_write_text(root / LABELS_DIR / "ids.csv", buf.getvalue())
    return LabelSummary(tuple(names), sum(len(v) for k, v in lists.items() if k in splits), n_boxes, next_id - id_start, counts)
