"""Converters: the real PETS09-S2L1 video -> MOT sequence, MOT -> JDE labels, splits, list files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from cstrack.data.convert import (
    crowdhuman_to_jde,
    half_split,
    index_jde_images,
    label_path_for,
    parse_frame_range,
    read_list,
    video_to_sequence,
    write_list,
    write_mot_labels,
)
from cstrack.data.mot import Sequence, read_seqinfo
from cstrack.errors import ConfigError, DatasetError

SEQ = "PETS09-S2L1"


def _gt_lines(path: Path, first: int, last: int) -> list[str]:
    return [ln for ln in path.read_text().splitlines() if first <= int(ln.split(",")[0]) <= last]


def _labels(path: Path) -> list[list[float]]:
    return [[float(v) for v in ln.split()] for ln in path.read_text().splitlines()]


# ---------------------------------------------------------------------------------------------
# frame ranges and splits


def test_parse_frame_range() -> None:
    assert parse_frame_range("398:795") == (398, 795)
    assert parse_frame_range("5:") == (5, None)
    assert parse_frame_range(":10") == (1, 10)
    for bad in ("0:5", "9:3", "abc", ":", "1-5"):
        with pytest.raises(ConfigError, match="--frames"):
            parse_frame_range(bad)


def test_half_split_boundaries() -> None:
    train, val = half_split(795)  # the PETS09 protocol of issue 6: 1-397 train, 398-795 held out
    assert (train[0], train[-1], len(train)) == (1, 397, 397)
    assert (val[0], val[-1], len(val)) == (398, 795, 398)
    assert [list(r) for r in half_split(2)] == [[1], [2]]
    assert [list(r) for r in half_split(5)] == [[1, 2], [3, 4, 5]]
    with pytest.raises(ConfigError):
        half_split(1)


# ---------------------------------------------------------------------------------------------
# video -> MOT sequence (real video, frames 1-40 converted once per session)


def test_video_sequence_layout_and_gt(pets40: Path, data_dir: Path) -> None:
    seq = Sequence.open(pets40 / "images" / "train" / SEQ)
    # frameRate comes from the gt's seqinfo (7), not from the container (10 fps)
    assert (seq.info.name, seq.info.frame_rate, seq.info.seq_length) == (SEQ, 7, 40)
    assert (seq.info.im_width, seq.info.im_height) == (768, 576)
    assert sorted(p.name for p in (seq.root / "img1").iterdir()) == [f"{i:06d}.jpg" for i in range(1, 41)]
    src = data_dir / "mot15" / SEQ
    # rows of frames 1-40 kept verbatim, world coordinates included
    assert seq.gt_path.read_text().splitlines() == _gt_lines(src / "gt" / "gt.txt", 1, 40)
    assert seq.det_path.read_text().splitlines() == _gt_lines(src / "det" / "det.txt", 1, 40)
    assert len(seq.gt()) == 40 + 24 + 19 + 40 + 40  # ids 9, 11, 12, 15, 19 in frames 1-40


def test_decoded_index_i_is_mot_frame_i_plus_1(pets40: Path, data_dir: Path) -> None:
    """The converted frames match the shipped head8 JPEGs (decoded from the original video) at
    offset 0 and not at +-1: decoded frame i is MOT frame i+1."""
    head8 = data_dir / "mot15" / "PETS09-S2L1-head8" / "img1"
    ours = pets40 / "images" / "train" / SEQ / "img1"
    ref = {k: cv2.imread(str(head8 / f"{k:06d}.jpg")).astype(np.float32) for k in range(1, 9)}
    mine = {k: cv2.imread(str(ours / f"{k:06d}.jpg")).astype(np.float32) for k in range(1, 10)}
    for k in range(2, 9):
        same = np.abs(mine[k] - ref[k]).mean()
        assert same < 4.0  # re-encode + JPEG: about 2 grey levels (shared/data/README.md)
        assert same < np.abs(mine[k - 1] - ref[k]).mean() and same < np.abs(mine[k + 1] - ref[k]).mean()


def test_held_out_range_renumbered_and_shifted(tmp_path: Path, data_dir: Path) -> None:
    res = video_to_sequence(
        data_dir / "raw" / "PETS09-S2L1.mp4", tmp_path, "val", gt=data_dir / "mot15" / SEQ, frames=(398, 420)
    )
    assert (res.frames, res.first_source_frame, res.last_source_frame, res.frame_rate_from) == (23, 398, 420, "seqinfo")
    gt = (tmp_path / "val" / "gt" / "gt.txt").read_text().splitlines()
    src = _gt_lines(data_dir / "mot15" / SEQ / "gt" / "gt.txt", 398, 420)
    assert res.gt_rows == len(gt) == len(src) == 53
    # source "398,1,584,142,26.148,63.105,1,-0.68315,-8.0505,0" is frame 1 of the new sequence
    assert gt[0] == "1,1,584,142,26.148,63.105,1,-0.68315,-8.0505,0"
    assert [ln.split(",", 1)[1] for ln in gt] == [ln.split(",", 1)[1] for ln in src]
    assert [int(ln.split(",")[0]) for ln in gt] == [int(ln.split(",")[0]) - 397 for ln in src]
    assert read_seqinfo(tmp_path / "val").seq_length == 23
    with pytest.raises(ConfigError, match="already exists"):
        video_to_sequence(data_dir / "raw" / "PETS09-S2L1.mp4", tmp_path, "val", frames=(1, 2))
    over = video_to_sequence(data_dir / "raw" / "PETS09-S2L1.mp4", tmp_path, "val", frames=(1, 2), frame_rate=5,
                             overwrite=True)
    assert over.frames == 2 and read_seqinfo(tmp_path / "val").frame_rate == 5
    assert not (tmp_path / "val" / "gt").exists()  # no gt given this time: the old one is gone


def test_frames_past_end_and_container_rate(tmp_path: Path, data_dir: Path) -> None:
    video = data_dir / "raw" / "PETS09-S2L1.mp4"
    with pytest.raises(ConfigError, match="past the end"):
        video_to_sequence(video, tmp_path, "x", gt=data_dir / "mot15" / SEQ, frames=(790, 800))
    with pytest.raises(ConfigError, match="first frame 800 is past the end"):
        video_to_sequence(video, tmp_path, "x", gt=data_dir / "mot15" / SEQ, frames=(800, None))
    res = video_to_sequence(video, tmp_path, "nogt", frames=(1, 3))
    assert (res.frame_rate, res.frame_rate_from) == (10.0, "container")
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # failed attempt left nothing


def _mjpeg_with_bad_frame(head8: Path, out: Path, bad: int) -> Path:
    """An MJPEG AVI of the 8 real head8 frames whose frame ``bad`` has its JPEG data destroyed."""
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"MJPG"), 7, (768, 576))
    for k in range(1, 9):
        writer.write(cv2.imread(str(head8 / "img1" / f"{k:06d}.jpg")))
    writer.release()
    data = bytearray(out.read_bytes())
    starts = [i for i in range(len(data) - 2) if data[i : i + 3] == b"\xff\xd8\xff"]
    assert len(starts) == 8
    data[starts[bad - 1] : starts[bad - 1] + 2000] = bytes(2000)
    out.write_bytes(bytes(data))
    return out


def test_bad_frame_reported_or_skipped_with_flag(tmp_path: Path, data_dir: Path) -> None:
    head8 = data_dir / "mot15" / "PETS09-S2L1-head8"
    video = _mjpeg_with_bad_frame(head8, tmp_path / "bad.avi", bad=4)
    with pytest.raises(DatasetError, match=r"bad\.avi: frame 4 \(decoded index 3\) could not be decoded") as err:
        video_to_sequence(video, tmp_path / "out", "s", gt=head8)
    assert err.value.path == str(video)
    assert not (tmp_path / "out" / "s").exists()
    res = video_to_sequence(video, tmp_path / "out", "s", gt=head8, skip_bad_frames=True)
    assert res.bad_frames == (4,) and res.frames == 7
    src = _gt_lines(head8 / "gt" / "gt.txt", 1, 8)
    expected = [
        f"{f if f < 4 else f - 1},{ln.split(',', 1)[1]}" for ln in src if (f := int(ln.split(",")[0])) != 4
    ]
    assert (tmp_path / "out" / "s" / "gt" / "gt.txt").read_text().splitlines() == expected
    assert read_seqinfo(tmp_path / "out" / "s").seq_length == 7


def test_corrupt_gt_line_reported_with_path_and_line(tmp_path: Path, data_dir: Path) -> None:
    head8 = data_dir / "mot15" / "PETS09-S2L1-head8"
    lines = (head8 / "gt" / "gt.txt").read_text().splitlines()
    lines[4] = lines[4].replace(",", ",x", 1)
    gt = tmp_path / "gt.txt"
    gt.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetError, match=r"gt\.txt:5: malformed line") as err:
        video_to_sequence(data_dir / "raw" / "PETS09-S2L1.mp4", tmp_path / "o", "s", gt=gt, frames=(1, 8))
    assert (err.value.path, err.value.line) == (str(gt), 5)


def test_seqinfo_size_mismatch_rejected(tmp_path: Path, data_dir: Path) -> None:
    ini = tmp_path / "seqinfo.ini"
    ini.write_text((data_dir / "mot15" / SEQ / "seqinfo.ini").read_text().replace("imWidth=768", "imWidth=640"))
    with pytest.raises(DatasetError, match="768x576 but seqinfo says 640x576"):
        video_to_sequence(data_dir / "raw" / "PETS09-S2L1.mp4", tmp_path / "o", "s", seqinfo=ini)


# ---------------------------------------------------------------------------------------------
# MOT -> JDE labels


def test_labels_hand_computed_from_real_gt(pets40: Path) -> None:
    """Frame 1 of PETS09-S2L1 (image 768x576).  gt rows ``frame,id,x,y,w,h,...``:
    ``1,9,499,158,31.03,75.17``   -> cx = (499 + 31.03/2)/768 = 514.515/768 = 0.66994140625
                                     cy = (158 + 75.17/2)/576 = 195.585/576 = 0.33955729...
                                     w  = 31.03/768 = 0.04040364...,  h = 75.17/576 = 0.13050347...
    ``1,15,258,219,32.913,88.702`` -> cx = 274.4565/768 = 0.35736523...,  cy = 263.351/576 = 0.45720660...
                                     w  = 32.913/768 = 0.04285546...,  h = 88.702/576 = 0.15399652...
    ``1,19,633,242,42.338,81.074`` -> cx = 654.169/768 = 0.85178255...,  cy = 282.537/576 = 0.49051562...
                                     w  = 42.338/768 = 0.05512760...,  h = 81.074/576 = 0.14075347...
    Identities are renumbered over the counted gt ids present (9, 11, 12, 15, 19 -> 0..4).
    """
    img = pets40 / "images" / "train" / SEQ / "img1" / "000001.jpg"
    label = label_path_for(img)
    assert label == pets40 / "labels_with_ids" / "train" / SEQ / "img1" / "000001.txt"
    assert label.read_text().splitlines() == [
        "0 0 0.669941 0.339557 0.040404 0.130503",
        "0 3 0.357365 0.457207 0.042855 0.153997",
        "0 4 0.851783 0.490516 0.055128 0.140753",
    ]
    ids = (pets40 / "labels_with_ids" / "ids.csv").read_text().splitlines()
    assert ids == ["split,sequence,gt_id,identity"] + [f"train,{SEQ},{g},{i}" for i, g in enumerate([9, 11, 12, 15, 19])]


def test_zero_marked_rows_dropped(tmp_path: Path, data_dir: Path) -> None:
    # id 12 is zero-marked (flag 0, ignored by MOT conventions) from frame 147 on; flag 1 at 146
    d = tmp_path / "D"
    video_to_sequence(data_dir / "raw" / "PETS09-S2L1.mp4", d / "images" / "train", "p", gt=data_dir / "mot15" / SEQ,
                      frames=(146, 149))
    s = write_mot_labels(d, half=False)
    src = _gt_lines(data_dir / "mot15" / SEQ / "gt" / "gt.txt", 146, 149)
    assert s.boxes == sum(1 for ln in src if ln.split(",")[6] == "1") == len(src) - 3
    per_frame = [len(_labels(d / "labels_with_ids" / "train" / "p" / "img1" / f"{k:06d}.txt")) for k in range(1, 5)]
    counts = [sum(1 for ln in src if int(ln.split(",")[0]) == f) for f in range(146, 150)]
    assert per_frame == [counts[0], counts[1] - 1, counts[2] - 1, counts[3] - 1]
    assert s.identities == len({ln.split(",")[1] for ln in src})  # id 12 still counted (frame 146)


def test_lists_and_half_protocol(pets40: Path) -> None:
    imgs = pets40 / "images" / "train" / SEQ / "img1"
    assert read_list(pets40 / "train.txt") == [imgs / f"{k:06d}.jpg" for k in range(1, 41)]
    assert read_list(pets40 / "train_half.txt") == [imgs / f"{k:06d}.jpg" for k in range(1, 21)]
    assert read_list(pets40 / "val_half.txt") == [imgs / f"{k:06d}.jpg" for k in range(21, 41)]
    first = (pets40 / "train.txt").read_text().splitlines()[0]
    assert first == f"images/train/{SEQ}/img1/000001.jpg"  # relative to the list file: relocatable


def test_mot17_classes_and_visibility(tmp_path: Path, data_dir: Path) -> None:
    d = tmp_path / "D"
    shutil.copytree(data_dir / "mot17-mini" / "train", d / "images" / "train")
    gt_rows = [
        [float(v) for v in ln.split(",")]
        for ln in (d / "images" / "train" / "MOT17-05-FRCNN" / "gt" / "gt.txt").read_text().splitlines()
    ]
    for vis in (0.0, 0.5):
        s = write_mot_labels(d, sequences="MOT17-05-*", visibility=vis)
        for f in range(1, 7):
            expect = [r for r in gt_rows if r[0] == f and r[6] == 1 and r[7] == 1 and r[8] >= vis]
            got = _labels(d / "labels_with_ids" / "train" / "MOT17-05-FRCNN" / "img1" / f"{f:06d}.txt")
            assert len(got) == len(expect)
            for row, g in zip(sorted(got, key=lambda r: (r[2], r[3])), sorted(expect, key=lambda r: (r[2] + r[4] / 2, r[3])), strict=True):
                assert row[2:] == pytest.approx([(g[2] + g[4] / 2) / 640, (g[3] + g[5] / 2) / 480, g[4] / 640, g[5] / 480], abs=1e-6)
        assert s.sequences == ("train/MOT17-05-FRCNN",)
    all_counted = [r for r in gt_rows if r[6] == 1 and r[7] == 1]
    assert 0 < len([r for r in all_counted if r[8] < 0.5]) < len(all_counted)  # the threshold did something


def test_identities_unique_across_sequences(tmp_path: Path, data_dir: Path) -> None:
    d = tmp_path / "D"
    shutil.copytree(data_dir / "mot17-mini" / "train", d / "images" / "train")
    s = write_mot_labels(d, id_start=100)
    ids: dict[str, set[int]] = {}
    for seq in ("MOT17-02-FRCNN", "MOT17-05-FRCNN"):
        for f in (d / "labels_with_ids" / "train" / seq / "img1").iterdir():
            ids.setdefault(seq, set()).update(int(r[1]) for r in _labels(f))
    assert not ids["MOT17-02-FRCNN"] & ids["MOT17-05-FRCNN"]
    assert min(ids["MOT17-02-FRCNN"]) == 100
    assert max(ids["MOT17-05-FRCNN"]) == 100 + s.identities - 1
    assert len(ids["MOT17-02-FRCNN"] | ids["MOT17-05-FRCNN"]) == s.identities


# ---------------------------------------------------------------------------------------------
# list files, CrowdHuman, JDE zoo layout


def test_list_round_trip_and_label_rule(tmp_path: Path) -> None:
    imgs = [tmp_path / "images" / "a" / "1.jpg", Path("/abs/elsewhere/images/x.png")]
    write_list(tmp_path / "l.txt", imgs)
    assert (tmp_path / "l.txt").read_text() == "images/a/1.jpg\n/abs/elsewhere/images/x.png\n"
    assert read_list(tmp_path / "l.txt") == imgs
    assert label_path_for("/d/images/images/s/img1/000001.jpg") == Path("/d/images/labels_with_ids/s/img1/000001.txt")
    with pytest.raises(DatasetError, match="no 'images' folder"):
        label_path_for("/d/img1/000001.jpg")


def test_crowdhuman_conversion(tmp_path: Path, data_dir: Path) -> None:
    raw = tmp_path / "raw" / "CrowdHuman_val" / "Images"
    raw.mkdir(parents=True)
    head8 = data_dir / "mot15" / "PETS09-S2L1-head8" / "img1"
    shutil.copy(head8 / "000001.jpg", raw / "273271,c9db000d5146c15.jpg")  # a real 768x576 JPEG
    shutil.copy(head8 / "000002.jpg", raw / "273271,empty.jpg")
    recs = [
        {"ID": "273271,c9db000d5146c15", "gtboxes": [
            {"tag": "person", "fbox": [76.8, 57.6, 38.4, 115.2], "vbox": [80, 60, 30, 100], "extra": {"ignore": 0}},
            {"tag": "person", "fbox": [0, 0, 10, 10], "extra": {"ignore": 1}},
            {"tag": "mask", "fbox": [5, 5, 50, 50]},
            {"tag": "person", "fbox": [384, 288, 76.8, 57.6]},
        ]},
        {"ID": "273271,empty", "gtboxes": []},
    ]
    odgt = tmp_path / "annotation_val.odgt"
    odgt.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    images, next_id = crowdhuman_to_jde(odgt, [tmp_path / "raw"], tmp_path / "D", "val", id_start=7)
    assert next_id == 9
    assert images == [tmp_path / "D" / "images" / "val" / "273271,c9db000d5146c15.jpg",
                      tmp_path / "D" / "images" / "val" / "273271,empty.jpg"]
    # fbox (76.8, 57.6, 38.4, 115.2) in 768x576: cx = 96/768 = 0.125, cy = 115.2/576 = 0.2,
    # w = 0.05, h = 0.2; fbox (384, 288, 76.8, 57.6): cx = 422.4/768 = 0.55, cy = 316.8/576 = 0.55, w = h = 0.1
    assert label_path_for(images[0]).read_text().splitlines() == [
        "0 7 0.125000 0.200000 0.050000 0.200000",
        "0 8 0.550000 0.550000 0.100000 0.100000",
    ]
    assert label_path_for(images[1]).read_text() == ""
    assert index_jde_images(tmp_path / "D") == images
    odgt.write_text(odgt.read_text() + '{"ID": 5, "gtboxes": [{"tag": "person"}]\n')
    with pytest.raises(DatasetError, match=r"annotation_val\.odgt:3: malformed odgt record"):
        crowdhuman_to_jde(odgt, [tmp_path / "raw"], tmp_path / "D2", "val")
