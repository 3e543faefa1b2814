"""The trainer's data adapter over cstrack.data.jde: labels (hand-computed), zero-marked boxes,
per-epoch loaders with DDP shards."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from cstrack.errors import ConfigError
from cstrack.train.config import DataSection, SequenceSource
from cstrack.train.data import TensorFrames, build_train_data


def test_letterboxed_labels_and_identities(head8: Path) -> None:
    # PETS frames are 768x576; at 128x128 the letterbox ratio is 1/6 with 16 px padding top/bottom.
    data = DataSection(sequences=(SequenceSource(str(head8), (1, 2)),), input_size=(128, 128), resize="letterbox", augment=False)
    td = build_train_data(data, seed=0)
    assert len(td.dataset) == 2
    assert td.num_ids == 4  # gt ids 9, 15, 19 -> 1, 2, 3 (0 = no identity)
    img, lab = td.dataset[0]
    assert img.shape == (3, 128, 128) and float(img.max()) <= 1.0
    assert lab[:, 1].tolist() == [1, 2, 3]
    # gt row "1,9,499,158,31.03,75.17": net box x 499/6..530.03/6, y 158/6+16..233.17/6+16
    assert lab[0, 2:].tolist() == pytest.approx([85.7525 / 128, 48.5975 / 128, 5.171667 / 128, 12.528333 / 128], abs=1e-5)
    assert td.description["images"] == 2 and td.description["sources"][0]["frames"] == [1, 2]


def test_zero_marked_boxes_kept_without_identity(head8: Path, tmp_path: Path) -> None:
    seq = tmp_path / "SEQ"
    shutil.copytree(head8, seq)
    gt = seq / "gt" / "gt.txt"
    lines = gt.read_text().splitlines()
    assert lines[1].startswith("1,15,")
    parts = lines[1].split(",")
    parts[6] = "0"  # frame 1, id 15: zero-marked
    lines[1] = ",".join(parts)
    gt.write_text("\n".join(lines) + "\n")
    base = {"sequences": (SequenceSource(str(seq), (1, 1)),), "input_size": (128, 96), "augment": False}
    dropped = build_train_data(DataSection(**base), seed=0).dataset[0][1]
    kept = build_train_data(DataSection(**base, zero_marked="no_identity"), seed=0).dataset[0][1]
    assert dropped[:, 1].tolist() == [1, 3]  # ids 9 and 19 (15 is still counted in frames 2-8)
    assert kept[:, 1].tolist() == [1, 3, 0]
    # stretch at 128x96 = 768x576 / 6: cx = (258 + 32.913 / 2) / 768
    assert float(kept[2, 2]) == pytest.approx((258 + 32.913 / 2) / 768, abs=1e-5)


def test_epoch_loaders_are_deterministic_and_sharded(head8: Path) -> None:
    td = build_train_data(DataSection(sequences=(SequenceSource(str(head8)),), input_size=(64, 64)), seed=3)
    assert td.make_loader is not None

    def batches(epoch: int, rank: int, world: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return list(td.make_loader(epoch, 2, rank, world, 0, False))

    a, b = batches(0, 0, 1), batches(0, 0, 1)
    assert len(a) == 4
    assert all(torch.equal(x[0], y[0]) and torch.equal(x[1], y[1]) for x, y in zip(a, b, strict=True))
    assert not all(torch.equal(x[0], y[0]) for x, y in zip(a, batches(1, 0, 1), strict=True))
    r0, r1 = batches(0, 0, 2), batches(0, 1, 2)
    assert len(r0) == len(r1) == 2
    seen = {tuple(img.flatten()[:64].tolist()) for part in (r0, r1) for batch in part for img in batch[0]}
    assert len(seen) == 8  # the two ranks share the 8 frames without overlap


def test_tensor_frames_and_validation() -> None:
    tf = TensorFrames(torch.zeros(2, 3, 32, 32), [torch.tensor([[0, 5, 0.5, 0.5, 0.1, 0.1]]), torch.zeros(0, 6)])
    assert tf.num_ids == 6 and tf[1][1].shape == (0, 6)
    with pytest.raises(ConfigError, match="2 images but 1"):
        TensorFrames(torch.zeros(2, 3, 32, 32), [torch.zeros(0, 6)])
    with pytest.raises(ConfigError, match=r"data\.root"):
        DataSection(mixture="M", input_size=(64, 64))
