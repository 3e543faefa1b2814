"""``cstrack data ...`` end to end through the Typer app."""

from __future__ import annotations

from pathlib import Path

import cv2
from typer.testing import CliRunner

from cstrack.cli import app
from cstrack.data.mot import read_seqinfo

runner = CliRunner()


def test_convert_video_held_out_half(tmp_path: Path, data_dir: Path) -> None:
    res = runner.invoke(app, [
        "data", "convert-video", str(data_dir / "raw" / "PETS09-S2L1.mp4"), "--out", str(tmp_path),
        "--name", "PETS09-S2L1-val", "--gt", str(data_dir / "mot15" / "PETS09-S2L1"), "--frames", "398:410",
    ])
    assert res.exit_code == 0, res.output
    assert "13 frames (source 398-410), frameRate 7 (from seqinfo)" in res.output
    info = read_seqinfo(tmp_path / "PETS09-S2L1-val")
    assert (info.name, info.seq_length, info.frame_rate) == ("PETS09-S2L1-val", 13, 7)
    gt = (tmp_path / "PETS09-S2L1-val" / "gt" / "gt.txt").read_text().splitlines()
    assert gt[0] == "1,1,584,142,26.148,63.105,1,-0.68315,-8.0505,0"  # source frame 398
    again = runner.invoke(app, ["data", "convert-video", str(data_dir / "raw" / "PETS09-S2L1.mp4"),
                                "--out", str(tmp_path), "--name", "PETS09-S2L1-val", "--frames", "1:2"])
    assert again.exit_code == 2 and "already exists (pass --overwrite" in again.output
    bad_range = runner.invoke(app, ["data", "convert-video", str(data_dir / "raw" / "PETS09-S2L1.mp4"),
                                    "--out", str(tmp_path), "--name", "x", "--frames", "5:2"])
    assert bad_range.exit_code == 2 and "--frames: need 1 <= A <= B" in bad_range.output


def test_convert_video_bad_frame_needs_the_flag(tmp_path: Path, data_dir: Path) -> None:
    head8 = data_dir / "mot15" / "PETS09-S2L1-head8"
    video = tmp_path / "v.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 7, (768, 576))
    for k in range(1, 9):
        writer.write(cv2.imread(str(head8 / "img1" / f"{k:06d}.jpg")))
    writer.release()
    data = bytearray(video.read_bytes())
    starts = [i for i in range(len(data) - 2) if data[i : i + 3] == b"\xff\xd8\xff"]
    data[starts[5] : starts[5] + 2000] = bytes(2000)  # destroy frame 6
    video.write_bytes(bytes(data))
    args = ["data", "convert-video", str(video), "--out", str(tmp_path / "o"), "--name", "s", "--gt", str(head8)]
    res = runner.invoke(app, args)
    assert res.exit_code == 2
    assert f"error: {video}: frame 6 (decoded index 5) could not be decoded" in res.output
    ok = runner.invoke(app, [*args, "--skip-bad-frames"])
    assert ok.exit_code == 0, ok.output
    assert "wrote" in ok.output and "7 frames" in ok.output and "skipped 1 bad frame(s): 6" in ok.output


def test_prepare_list_labels_and_synth(tmp_path: Path, data_dir: Path) -> None:
    res = runner.invoke(app, ["data", "prepare", "mot17-mini", "--root", str(tmp_path), "--quiet"])
    assert res.exit_code == 0, res.output
    assert f"mot17-mini: prepared in {tmp_path / 'mot17-mini'} (train.txt 10, train_half.txt 5, val_half.txt 5)" in res.output
    res = runner.invoke(app, ["data", "prepare", "mot17-mini", "--root", str(tmp_path), "--quiet"])
    assert "mot17-mini: already prepared" in res.output

    listing = runner.invoke(app, ["data", "list"])
    assert "mixture B: eth, citypersons, caltech, cuhk-sysu, prw, mot17, crowdhuman" in listing.output
    unknown = runner.invoke(app, ["data", "prepare", "nope", "--root", str(tmp_path)])
    assert unknown.exit_code == 2 and "error: unknown dataset or mixture 'nope'" in unknown.output

    synth = runner.invoke(app, ["data", "synth", "--out", str(tmp_path / "s" / "images" / "train"), "--sequences", "1",
                                "--length", "4", "--size", "160x96", "--objects", "3", "--seed", "5"])
    assert synth.exit_code == 0, synth.output
    assert cv2.imread(str(tmp_path / "s" / "images" / "train" / "SYNTH-01" / "img1" / "000004.jpg")).shape == (96, 160, 3)
    labels = runner.invoke(app, ["data", "labels", str(tmp_path / "s"), "--no-half"])
    assert labels.exit_code == 0, labels.output
    assert "1 sequences, 4 images" in labels.output
    assert (tmp_path / "s" / "train.txt").read_text().count("\n") == 4
    assert not (tmp_path / "s" / "val_half.txt").exists()
