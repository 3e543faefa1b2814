"""Training dataset: target format, identity shifting across a mixture, empty labels, errors,
determinism across workers, the epoch sampler and registry mixtures."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from cstrack.data.augment import AugmentConfig
from cstrack.data.convert import label_path_for, write_list
from cstrack.data.jde import (
    DataConfig,
    EpochSampler,
    ImageSet,
    JDEDataset,
    collate,
    list_source,
    make_loader,
    read_label_file,
    sequence_source,
    set_epoch,
)
from cstrack.data.prepare import prepare_many
from cstrack.data.registry import DEFAULT_REGISTRY, parse_registry
from cstrack.errors import ConfigError, DatasetError

SMALL = DataConfig(input_size=(320, 192), augment=False)


def test_target_format_and_stretch_keeps_normalised_boxes(pets40: Path) -> None:
    ds = JDEDataset.from_lists([pets40 / "train.txt"], DataConfig(augment=False))
    image, targets = ds[0]
    assert image.dtype == torch.float32 and tuple(image.shape) == (3, 608, 1088)
    assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0
    # RGB: channel 0 is the red channel of the BGR file, stretched bilinearly to 1088x608
    bgr = cv2.resize(cv2.imread(str(ds.image_path(0))), (1088, 608), interpolation=cv2.INTER_LINEAR)
    assert torch.equal(image[0], torch.from_numpy(bgr[:, :, 2]).float() / 255)
    # stretching keeps normalised boxes: targets equal the label file (frame 1, by hand in
    # test_convert.py) with identities shifted by +1
    assert targets.dtype == torch.float32 and tuple(targets.shape) == (3, 6)
    np.testing.assert_allclose(targets.numpy(), [
        [0, 1, 0.669941, 0.339557, 0.040404, 0.130503],
        [0, 4, 0.357365, 0.457207, 0.042855, 0.153997],
        [0, 5, 0.851783, 0.490516, 0.055128, 0.140753],
    ], atol=2e-6)
    assert ds.num_ids == 6  # identities 0..4 of frames 1-40 -> 1..5, plus class 0


def test_letterbox_option_maps_boxes_into_the_padded_image(pets40: Path) -> None:
    ds = JDEDataset.from_lists([pets40 / "train.txt"], DataConfig(augment=False, resize="letterbox"))
    _, t = ds[0]
    # 768x576 -> ratio 608/576, image 811 px wide, left pad 138: cx' = (138 + cx*768*r) / 1088
    r = 608 / 576
    assert float(t[0, 2]) == pytest.approx((138 + 0.66994140625 * 768 * r) / 1088, abs=1e-5)
    assert float(t[0, 3]) == pytest.approx(0.33955729, abs=1e-5)  # no vertical padding
    assert float(t[0, 4]) == pytest.approx(31.03 * r / 1088, abs=1e-5)


def test_identity_offsets_across_a_mixture(pets40: Path, data_dir: Path, tmp_path: Path) -> None:
    a = list_source(pets40 / "train.txt", name="pets")  # raw ids 0..4
    b = sequence_source(data_dir / "mot17-mini" / "train" / "MOT17-05-FRCNN")  # raw ids 0..m
    img_dir = tmp_path / "images"
    img_dir.mkdir()
    shutil.copy(a.items[0].image, img_dir / "x.jpg")
    label_path_for(img_dir / "x.jpg").parent.mkdir(parents=True)
    label_path_for(img_dir / "x.jpg").write_text("0 -1 0.5 0.5 0.1 0.2\n0 2 0.3 0.5 0.1 0.2\n")
    write_list(tmp_path / "c.txt", [img_dir / "x.jpg"])
    c = list_source(tmp_path / "c.txt")  # one box without identity (-1), one with raw id 2
    assert (a.max_id, c.max_id) == (4, 2)
    ds = JDEDataset([a, b, c], SMALL)
    # offsets: a -> 0, b -> 0 + (4 + 1) = 5, c -> 5 + (b.max_id + 1)
    assert ds.offsets == (0, 5, 5 + b.max_id + 1)
    assert ds.num_ids == 1 + 5 + (b.max_id + 1) + 3
    assert ds.identities(0).min() >= 1
    b_ids = np.concatenate([ds.identities(len(a) + j) for j in range(len(b))])
    assert b_ids.min() == 6 and b_ids.max() == 5 + b.max_id + 1  # raw 0 -> 1 + 5
    assert ds.identities(len(a) + len(b)).tolist() == [0, 2 + 1 + ds.offsets[2]]  # -1 -> 0 ("no identity")
    _, t = ds[len(a) + len(b)]
    assert t[:, 1].tolist() == [0.0, float(2 + 1 + ds.offsets[2])]


def test_empty_label_file_and_collate(tmp_path: Path, pets40: Path) -> None:
    img_dir = tmp_path / "images"
    img_dir.mkdir()
    src = list_source(pets40 / "train.txt").items[0].image
    for name, text in (("empty.jpg", ""), ("one.jpg", "0 3 0.5 0.5 0.2 0.4\n")):
        shutil.copy(src, img_dir / name)
        label_path_for(img_dir / name).parent.mkdir(parents=True, exist_ok=True)
        label_path_for(img_dir / name).write_text(text)
    write_list(tmp_path / "l.txt", [img_dir / "empty.jpg", img_dir / "one.jpg", img_dir / "empty.jpg"])
    ds = JDEDataset.from_lists([tmp_path / "l.txt"], DataConfig(input_size=(320, 192)))  # augmenting path too
    img0, t0 = ds[0]
    assert tuple(t0.shape) == (0, 6) and tuple(img0.shape) == (3, 192, 320)
    images, targets = collate([ds[0], ds[1], ds[2]])
    assert tuple(images.shape) == (3, 3, 192, 320)
    assert tuple(targets.shape) == (1, 6)
    assert targets[0, 0] == 1 and targets[0, 1] == 4  # image index 1 in the batch, identity 3 + 1
    assert read_label_file(label_path_for(img_dir / "empty.jpg")).shape == (0, 6)


def test_bad_inputs_are_reported_with_path_and_line(tmp_path: Path, pets40: Path) -> None:
    img_dir = tmp_path / "images"
    img_dir.mkdir()
    src = list_source(pets40 / "train.txt").items[0].image
    shutil.copy(src, img_dir / "a.jpg")
    label = label_path_for(img_dir / "a.jpg")
    label.parent.mkdir(parents=True)
    label.write_text("0 1 0.5 0.5 0.1 0.1\n0 2 0.5 0.5 0.1\n")
    with pytest.raises(DatasetError, match=r"a\.txt:2: malformed label line: 5 values") as err:
        read_label_file(label)
    assert (err.value.path, err.value.line) == (str(label), 2)
    for bad in ("0 1 0.5 0.5 0 0.1\n", "0 1.5 0.5 0.5 0.1 0.1\n", "0 -2 0.5 0.5 0.1 0.1\n", "0 1 nan 0.5 0.1 0.1\n"):
        label.write_text(bad)
        with pytest.raises(DatasetError, match=r"a\.txt:1: "):
            read_label_file(label)
    label.write_text("0 1 0.5 0.5 0.1 0.1\n")
    (tmp_path / "l.txt").write_text("images/a.jpg\n\nimages/missing.jpg\n")
    with pytest.raises(DatasetError, match=r"l\.txt:3: image not found"):
        list_source(tmp_path / "l.txt")
    (tmp_path / "l.txt").write_text("images/a.jpg\n")
    ds = JDEDataset.from_lists([tmp_path / "l.txt"], SMALL)
    (img_dir / "a.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DatasetError, match=r"a\.jpg: not a decodable image"):
        ds[0]


def test_augmentation_deterministic_per_seed_epoch_index(pets40: Path) -> None:
    cfg = DataConfig(input_size=(320, 192), seed=5)
    ds = JDEDataset.from_lists([pets40 / "train.txt"], cfg)
    a, b = ds[(0, 3)], ds[(0, 3)]
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    other_epoch = [ds[(1, i)] for i in range(4)]
    assert any(not torch.equal(o[0], ds[(0, i)][0]) for i, o in enumerate(other_epoch))
    other_seed = JDEDataset.from_lists([pets40 / "train.txt"], DataConfig(input_size=(320, 192), seed=6))
    assert any(not torch.equal(other_seed[(0, i)][0], ds[(0, i)][0]) for i in range(4))
    # flips happen (p = 0.5) and mirror boxes: cx -> 1 - cx relative to the unaugmented item
    plain = JDEDataset.from_lists([pets40 / "train.txt"], DataConfig(input_size=(320, 192), augment=False))
    flipped = 0
    for i in range(12):
        t_aug, t_plain = ds[(0, i)][1], plain[i][1]
        if torch.allclose(t_aug[:, 2], 1 - t_plain[:, 2], atol=1e-5):
            flipped += 1
            torch.testing.assert_close(t_aug[:, [0, 1, 3, 4, 5]], t_plain[:, [0, 1, 3, 4, 5]])
        else:
            torch.testing.assert_close(t_aug, t_plain)  # HSV alone moves no box
    assert 0 < flipped < 12


def test_loader_identical_with_and_without_workers(pets40: Path) -> None:
    ds = JDEDataset.from_lists([pets40 / "train.txt"], DataConfig(input_size=(224, 128), seed=1))
    batches = {}
    for workers in (0, 2):
        loader = make_loader(ds, batch_size=4, num_workers=workers)
        set_epoch(loader, 2)
        batches[workers] = [b for _, b in zip(range(3), loader, strict=False)]
    for (i0, t0), (i2, t2) in zip(batches[0], batches[2], strict=True):
        assert torch.equal(i0, i2) and torch.equal(t0, t2)
    assert tuple(batches[0][0][0].shape) == (4, 3, 128, 224)


def test_epoch_sampler_shuffles_by_epoch_and_shards() -> None:
    s = EpochSampler(10, seed=3)
    e0 = list(s)
    assert sorted(i for _, i in e0) == list(range(10)) and {e for e, _ in e0} == {0}
    assert list(s) == e0
    s.set_epoch(1)
    e1 = list(s)
    assert [i for _, i in e1] != [i for _, i in e0] and {e for e, _ in e1} == {1}
    ranks = [EpochSampler(10, seed=3, rank=r, world_size=3) for r in range(3)]
    shards = [[i for _, i in r] for r in ranks]
    assert [len(x) for x in shards] == [4, 4, 4]  # 10 padded to 12 by wrapping
    assert {i for shard in shards for i in shard} == set(range(10))
    dropped = [EpochSampler(10, seed=3, rank=r, world_size=3, drop_last=True) for r in range(3)]
    flat = [i for r in dropped for _, i in r]
    assert len(flat) == 9 and len(set(flat)) == 9
    assert list(EpochSampler(4, shuffle=False)) == [(0, 0), (0, 1), (0, 2), (0, 3)]
    with pytest.raises(ConfigError):
        EpochSampler(4, rank=2, world_size=2)


def test_registry_mixture(tmp_path: Path) -> None:
    raw = yaml.safe_load(DEFAULT_REGISTRY.read_text())
    raw["mixtures"]["T"] = ["mot17-mini", "synth-mini"]
    reg = parse_registry(raw)
    with pytest.raises(DatasetError, match="run `cstrack data prepare mot17-mini"):
        JDEDataset.from_registry(["T"], tmp_path, registry=reg)
    prepare_many(["T"], tmp_path, registry=reg, progress=False)
    ds = JDEDataset.from_registry(["T"], tmp_path, config=SMALL, registry=reg)
    assert [s.name for s in ds.sets] == ["mot17-mini", "synth-mini"]
    assert len(ds) == 10 + 120
    mini, synth = ds.sets
    assert ds.offsets == (0, mini.max_id + 1)
    assert ds.num_ids == 1 + (mini.max_id + 1) + (synth.max_id + 1) == 1 + 31 + 12
    half = JDEDataset.from_registry(["T"], tmp_path, split="val_half", config=SMALL, registry=reg)
    assert len(half) == 5 + 60
    desc = ds.describe()
    assert desc["num_ids"] == ds.num_ids and desc["sets"][1]["id_offset"] == 31


def test_sequence_source_frame_range(pets40: Path) -> None:
    seq = pets40 / "images" / "train" / "PETS09-S2L1"
    s = sequence_source(seq, (21, 40))
    assert len(s) == 20 and s.items[0].image.name == "000021.jpg"
    # labels from the gt agree with the label files written by the converter for the same frame
    ref = list_source(pets40 / "train.txt").items[20].labels
    np.testing.assert_allclose(s.items[0].labels[:, 2:], ref[:, 2:], atol=1e-6)
    with pytest.raises(ConfigError, match="frames"):
        sequence_source(seq, (30, 41))
    with pytest.raises(ConfigError):
        JDEDataset([ImageSet("empty", ())])
    with pytest.raises(ConfigError, match="input_size"):
        DataConfig(input_size=(100, 64))
    assert AugmentConfig().hsv_gains == (0.015, 0.5, 0.4)
