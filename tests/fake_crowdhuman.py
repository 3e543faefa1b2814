"""A tiny CrowdHuman download folder (the registry's six manual files) built from PETS09 frames,
so ``cstrack data prepare crowdhuman`` runs offline in tests."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from cstrack.paths import shared_data

ZIPS = ("CrowdHuman_train01.zip", "CrowdHuman_train02.zip", "CrowdHuman_train03.zip", "CrowdHuman_val.zip")


def write_crowdhuman_downloads(root: Path) -> Path:
    """``root/crowdhuman/downloads/`` with one 768x576 image per zip and both annotation files
    (train: 3 images, 2 boxes each; val: 1 image).  Returns the val annotation file."""
    frames = sorted((shared_data() / "mot15" / "PETS09-S2L1-head8" / "img1").glob("*.jpg"))
    dl = root / "crowdhuman" / "downloads"
    dl.mkdir(parents=True)
    records: dict[str, list[str]] = {"train": [], "val": []}
    for k, name in enumerate(ZIPS):
        image_id = f"27327{k},{k:015x}"
        with zipfile.ZipFile(dl / name, "w") as zf:
            zf.write(frames[k], f"Images/{image_id}.jpg")
        boxes = [{"tag": "person", "fbox": [100 + 10 * k, 50, 40, 120]}, {"tag": "person", "fbox": [400, 300, 30, 90]}]
        records["val" if "val" in name else "train"].append(json.dumps({"ID": image_id, "gtboxes": boxes}))
    for split, lines in records.items():
        (dl / f"annotation_{split}.odgt").write_text("\n".join(lines) + "\n")
    return dl / "annotation_val.odgt"
