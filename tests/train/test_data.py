"""The trainer's data adapter: collate, box fitting and MOT-sequence items (hand-computed labels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from cstrack.errors import DatasetError
from cstrack.train.config import DataSection, SequenceSource
from cstrack.train.data import SequenceFrames, build_train_data, collate, fit_boxes


def test_collate_sets_image_index_and_accepts_empty_labels() -> None:
    a = (torch.zeros(3, 32, 32), torch.tensor([[0, 4, 0.5, 0.5, 0.1, 0.2]]))
    b = (torch.ones(3, 32, 32), torch.zeros((0, 6)))  # spec Q16: an image without labels
    c = (torch.ones(3, 32, 32), torch.tensor([[0, 1, 0.1, 0.1, 0.1, 0.1], [0, 2, 0.2, 0.2, 0.1, 0.1]]))
    images, targets = collate([a, b, c])
    assert images.shape == (3, 3, 32, 32)
    assert targets[:, 0].tolist() == [0, 2, 2]
    assert targets[:, 1].tolist() == [4, 1, 2]
    assert a[1][0, 0] == 0  # the input is not modified


def test_fit_boxes_scale_clip_and_filters() -> None:
    xyxy = np.array([
        [10, 20, 50, 100],  # -> (5, 10, 25, 50), y2 clipped to 49
        [-100, 0, 2, 30],  # -> x clipped to [1, 1]: zero width, dropped
        [0, 0, 190, 8],  # -> (1, 1, 95, 4): aspect 94 / 3 >= 20, dropped
        [0, 0, 8, 40],  # -> (1, 1, 4, 20): kept (w 3 > 2, area 57 / 80 > 0.2)
    ], dtype=float)
    out, kept = fit_boxes(xyxy, (0.5, 0.5), (0.0, 0.0), (100, 50))
    assert kept.tolist() == [0, 3]
    assert out.tolist() == [[5, 10, 25, 49], [1, 1, 4, 20]]


def test_sequence_frames_letterbox_labels(head8: Path) -> None:
    # PETS frames are 768x576; at 128x128 the letterbox ratio is 1/6 with 16 px padding top/bottom.
    data = DataSection(sequences=(SequenceSource(str(head8), (1, 2)),), input_size=(128, 128), resize="letterbox", augment=False)
    ds = SequenceFrames(data)
    assert len(ds) == 2 and ds.num_ids == 20  # ids 1..19 of the gt -> classes 0..19
    img, lab = ds[0]
    assert img.shape == (3, 128, 128) and img.dtype == torch.float32
    assert float(img.max()) <= 1.0
    assert lab[:, 1].tolist() == [9, 15, 19]
    # gt row "1,9,499,158,31.03,75.17": net box x 499/6..530.03/6, y 158/6+16..233.17/6+16
    assert lab[0, 2:].tolist() == pytest.approx([85.7525 / 128, 48.5975 / 128, 5.171667 / 128, 12.528333 / 128], abs=1e-5)


def test_sequence_frames_stretch_and_flip(head8: Path) -> None:
    plain = SequenceFrames(DataSection(sequences=(SequenceSource(str(head8), (1, 1)),), input_size=(128, 64), augment=False))
    flipped = SequenceFrames(DataSection(sequences=(SequenceSource(str(head8), (1, 1)),), input_size=(128, 64),
                                         hsv_gains=(0.0, 0.0, 0.0), flip=1.0))
    _, a = plain[0]
    _, b = flipped[0]
    # stretch keeps normalised coordinates: cx = (499 + 31.03 / 2) / 768, cy = (158 + 75.17 / 2) / 576
    assert a[0, 2:4].tolist() == pytest.approx([514.515 / 768, 195.585 / 576], abs=1e-5)
    assert b[:, 2].tolist() == pytest.approx((1 - a[:, 2]).tolist(), abs=1e-5)
    assert torch.allclose(b[:, 3:], a[:, 3:], atol=1e-6)


def test_build_train_data_description_and_errors(head8: Path, tmp_path: Path) -> None:
    td = build_train_data(DataSection(sequences=(SequenceSource(str(head8), (3, 8)),), input_size=(64, 64)))
    assert td.description["images"] == 6
    assert td.description["sources"][0]["frames"] == [3, 8]
    with pytest.raises(DatasetError, match="seqLength"):
        SequenceFrames(DataSection(sequences=(SequenceSource(str(head8), (1, 9)),), input_size=(64, 64)))
    with pytest.raises(DatasetError, match="sequence folder not found"):
        SequenceFrames(DataSection(sequences=(SequenceSource(str(tmp_path / "missing")),), input_size=(64, 64)))
