"""MOTChallenge files: round trips of every kind and the error of every malformed-input class."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cstrack.data.mot import (
    MotTable,
    SeqInfo,
    Sequence,
    counted_gt,
    format_mot,
    read_det,
    read_gt,
    read_mot,
    read_results,
    read_seqinfo,
    write_mot,
    write_results,
    write_seqinfo,
)
from cstrack.errors import DatasetError


def assert_tables_equal(a: MotTable, b: MotTable) -> None:
    for name in ("frame", "id", "tlwh", "conf", "cls", "vis", "world"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


# --------------------------------------------------------------------------------------------
# round trips


def test_seqinfo_round_trip(data_dir: Path, tmp_path: Path) -> None:
    info = read_seqinfo(data_dir / "mot15" / "PETS09-S2L1")
    assert info == SeqInfo("PETS09-S2L1", 7.0, 795, 768, 576, "img1", ".jpg")
    write_seqinfo(tmp_path, info)
    assert read_seqinfo(tmp_path / "seqinfo.ini") == info
    odd = SeqInfo("X", 12.5, 3, 10, 20, "frames", ".png")
    write_seqinfo(tmp_path / "x.ini", odd)
    assert read_seqinfo(tmp_path / "x.ini") == odd
    assert odd.image_path("/s", 7) == Path("/s/frames/000007.png")


def test_gt_mot15_ten_columns_round_trip_is_byte_identical(data_dir: Path, tmp_path: Path) -> None:
    src = data_dir / "mot15" / "PETS09-S2L1" / "gt" / "gt.txt"
    gt = read_gt(src, 795)
    assert len(gt) == 4650 and (gt.cls == -1).all()
    np.testing.assert_allclose(gt.world[0], [-4.1554, -7.3591, 0])  # "1,9,499,158,31.03,75.17,1,-4.1554,-7.3591,0"
    write_mot(tmp_path / "gt.txt", gt, "gt")
    assert (tmp_path / "gt.txt").read_bytes() == src.read_bytes()
    assert_tables_equal(read_gt(tmp_path / "gt.txt", 795), gt)


def test_gt_mot17_nine_columns_round_trip(data_dir: Path, tmp_path: Path) -> None:
    src = data_dir / "mot17-mini" / "train" / "MOT17-02-FRCNN" / "gt" / "gt.txt"
    gt = read_gt(src, 4)
    assert len(gt) == 156 and set(np.unique(gt.cls)) > {1}
    write_mot(tmp_path / "gt.txt", gt, "gt")
    assert all(len(line.split(",")) == 9 for line in (tmp_path / "gt.txt").read_text().splitlines())
    back = read_gt(tmp_path / "gt.txt", 4)
    assert_tables_equal(back, gt)
    # same numbers as the source, line by line (the writer drops trailing ".0")
    for ours, theirs in zip((tmp_path / "gt.txt").read_text().splitlines(), src.read_text().splitlines(), strict=True):
        assert [float(x) for x in ours.split(",")] == [float(x) for x in theirs.split(",")]


@pytest.mark.parametrize(
    ("rel", "frames", "ncols"),
    [("mot15/PETS09-S2L1/det/det.txt", 795, 10), ("mot17-mini/train/MOT17-05-FRCNN/det/det.txt", 6, 7)],
)
def test_det_round_trip(data_dir: Path, tmp_path: Path, rel: str, frames: int, ncols: int) -> None:
    src = data_dir / rel
    det = read_det(src, frames)
    assert (det.id == -1).all() and det.conf.max() <= 1
    write_mot(tmp_path / "det.txt", det, "det")
    if ncols == 10:
        assert (tmp_path / "det.txt").read_bytes() == src.read_bytes()
    assert_tables_equal(read_det(tmp_path / "det.txt", frames), det)


def test_result_round_trip(tmp_path: Path) -> None:
    table = MotTable(
        frame=[1, 1, 2], id=[1, 2, 1],
        tlwh=[[10.5, 20.25, 30, 40], [0, 0, 1e-3, 2], [11.0, 21.0, 30.125, 40]],
        conf=[0.9, 1.0, 0.123456],
    )
    write_results(tmp_path / "r.txt", table)
    text = (tmp_path / "r.txt").read_text()
    assert text.splitlines()[0] == "1,1,10.5,20.25,30,40,0.9,-1,-1,-1"
    assert_tables_equal(read_results(tmp_path / "r.txt", 2), table)
    assert format_mot(MotTable.empty(), "result") == ""


def test_counted_gt(data_dir: Path) -> None:
    mot15 = read_gt(data_dir / "mot15" / "PETS09-S2L1" / "gt" / "gt.txt")
    assert len(counted_gt(mot15)) == 4650 - 174  # flag-0 rows of ids 11, 12 and 16
    mot17 = read_gt(data_dir / "mot17-mini" / "train" / "MOT17-02-FRCNN" / "gt" / "gt.txt")
    kept = counted_gt(mot17)
    assert (kept.cls == 1).all() and (kept.conf == 1).all()
    assert len(kept) == int(((mot17.cls == 1) & (mot17.conf == 1)).sum()) < len(mot17)


def test_writer_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "r.txt"
    path.write_text("old\n")
    bad = MotTable([1], [1], [[0, 0, np.nan, 1]], [1.0])
    with pytest.raises(DatasetError, match="non-finite"):
        write_results(path, bad)
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["r.txt"]


def test_sequence(data_dir: Path, tmp_path: Path) -> None:
    seq = Sequence.open(data_dir / "mot15" / "PETS09-S2L1-head8")
    assert seq.name == "PETS09-S2L1-head8" and seq.has_images()
    assert seq.gt().frame.max() == 8 and len(seq.det()) > 0
    assert not Sequence.open(data_dir / "mot15" / "PETS09-S2L1").has_images()
    with pytest.raises(DatasetError, match="sequence folder not found"):
        Sequence.open(tmp_path / "missing")
    (tmp_path / "s").mkdir()
    with pytest.raises(DatasetError, match=r"seqinfo\.ini not found"):
        Sequence.open(tmp_path / "s")


# --------------------------------------------------------------------------------------------
# malformed inputs: each class raises DatasetError naming the file and the line

GOOD = "1,1,10,10,20,40,1,1,1\n1,2,50,10,20,40,1,1,1\n2,1,12,10,20,40,1,1,1\n"


@pytest.mark.parametrize(
    ("kind", "text", "line", "message"),
    [
        ("gt", GOOD + "3,1,10,10\n", 4, "malformed line"),
        ("gt", GOOD + "3,1,10,10,abc,40,1,1,1\n", 4, "malformed line"),
        ("gt", GOOD + "3,1,10,10,20,40,1,1\n", 4, "malformed line"),  # ragged
        ("gt", GOOD + "3,1,10,nan,20,40,1,1,1\n", 4, "non-finite"),
        ("gt", "1,1,10,10,20,inf,1,1,1\n" + GOOD, 1, "non-finite"),
        ("gt", GOOD + "3,1,10,10,-20,40,1,1,1\n", 4, "negative box size"),
        ("det", "1,-1,10,10,20,-0.5,0.9\n", 1, "negative box size"),
        ("gt", GOOD + "6,1,10,10,20,40,1,1,1\n", 4, "outside the sequence"),
        ("gt", "0,1,10,10,20,40,1,1,1\n" + GOOD, 1, "outside the sequence"),
        ("result", "1,1,10,10,20,40,1,-1,-1,-1\n1,1,12,10,20,40,1,-1,-1,-1\n", 2, "duplicate id 1 in frame 1"),
        ("gt", GOOD + "\n\n2,2,10,10,20,40,1,1,1\n2,2,10,10,20,40,1,1,1\n", 7, "duplicate id 2 in frame 2"),
        ("result", "1.5,1,10,10,20,40,1,-1,-1,-1\n", 1, "not an integer"),
    ],
)
def test_malformed_input_names_file_and_line(tmp_path: Path, kind: str, text: str, line: int, message: str) -> None:
    path = tmp_path / f"{kind}.txt"
    path.write_text(text)
    with pytest.raises(DatasetError, match=message) as exc:
        read_mot(path, kind, seq_length=5)  # type: ignore[arg-type]
    assert exc.value.path == str(path) and exc.value.line == line
    assert str(exc.value).startswith(f"{path}:{line}: ")


def test_detections_may_repeat_ids(tmp_path: Path) -> None:
    path = tmp_path / "det.txt"
    path.write_text("1,-1,10,10,20,40,0.9\n1,-1,50,10,20,40,0.8\n")
    assert len(read_det(path, 1)) == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[Sequence]\nname=X\nframeRate=abc\nseqLength=3\nimWidth=1\nimHeight=1\n", r"framerate='abc' is not a valid float"),
        ("[Sequence]\nname=X\nframeRate=10\nimWidth=1\nimHeight=1\n", "missing key 'seqlength'"),
        ("[Other]\nname=X\n", "missing \\[Sequence\\]"),
        ("[Sequence]\nname=X\nframeRate=0\nseqLength=3\nimWidth=1\nimHeight=1\n", "frameRate=0 must be a finite number"),
        ("[Sequence]\nname=X\nframeRate=nan\nseqLength=3\nimWidth=1\nimHeight=1\n", "frameRate=nan must be"),
        ("[Sequence]\nname=X\nframeRate=25\nseqLength=3\nimWidth=0\nimHeight=1\n", "imWidth=0, imHeight=1: must be positive"),
    ],
)
def test_bad_seqinfo(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "seqinfo.ini"
    path.write_text(text)
    with pytest.raises(DatasetError, match=message) as exc:
        read_seqinfo(path)
    assert exc.value.path == str(path)


def test_missing_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="gt file not found"):
        read_gt(tmp_path / "nope.txt")
    (tmp_path / "b.txt").write_bytes(b"\xff\xfe\x00\x01")
    with pytest.raises(DatasetError, match="not a text file"):
        read_results(tmp_path / "b.txt")
