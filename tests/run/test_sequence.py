"""track_sequence: the three detection modes, timing, result files, validation."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from cstrack.boxes import tlwh_to_xyxy
from cstrack.data.mot import Sequence, counted_gt, read_results
from cstrack.detection import FrameDetector
from cstrack.errors import ConfigError, DatasetError
from cstrack.run.frames import FrameInput, read_frames
from cstrack.run.sequence import track_sequence
from cstrack.timing import STAGES
from cstrack.tracker import preset
from tests.clear_metrics import score_files
from tests.fake_detector import FakeDetector, write_sequence


@pytest.fixture(scope="module")
def pets(data_dir: Path) -> Path:
    return data_dir / "mot15" / "PETS09-S2L1"


@pytest.fixture(scope="module")
def syn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_sequence(tmp_path_factory.mktemp("syn"))


def test_gt_mode_on_pets09_without_model_or_images(pets: Path, tmp_path: Path) -> None:
    """Issue 4 acceptance: counted gt boxes, motion/IoU association, MOTA >= 0.95 (CLEAR via motmetrics).

    Reached: MOTA 0.9996, IDF1 0.943, 2 ID switches, 0 FP, 0 FN (the two switches are ids 11 and
    12 returning after 71 / 98 zero-marked frames, far beyond the 7-frame buffer at 7 fps).
    """
    assert not (pets / "img1").exists()
    run = track_sequence(pets, tmp_path, "gt", preset("default"))
    assert run.sequence == "PETS09-S2L1" and run.frames == 795 and run.mode == "gt"
    assert run.result_path == tmp_path / "PETS09-S2L1.txt"
    m = score_files(pets / "gt" / "gt.txt", run.result_path)
    assert m["mota"] >= 0.95
    assert m["idf1"] >= 0.93 and m["idsw"] <= 3 and m["fp"] == 0
    assert set(run.ms) == set(STAGES)
    assert run.ms["read"] == run.ms["forward"] == run.ms["preprocess"] == 0.0
    assert run.ms["associate"] > 0 and run.fps > 0


def test_original_preset_loses_first_frames(pets: Path, tmp_path: Path) -> None:
    default = score_files(pets / "gt" / "gt.txt", track_sequence(pets, tmp_path / "a", "gt", preset("default")).result_path)
    orig = score_files(pets / "gt" / "gt.txt", track_sequence(pets, tmp_path / "b", "gt", preset("original")).result_path)
    assert orig["fn"] > default["fn"]  # SOTS never reports a track's birth frame (spec Q9)
    assert orig["mota"] >= 0.95


def test_public_mode_without_model(pets: Path, tmp_path: Path) -> None:
    run = track_sequence(pets, tmp_path, "public", preset("default"))
    res = read_results(run.result_path, 795)
    det = Sequence.open(pets).det()
    # every back-filled birth box is a det.txt box of that frame, exactly (up to the 1e-3 rounding)
    first_rows = np.unique(res.id, return_index=True)[1]
    det_by_frame = det.frame_slices()
    for r in first_rows:
        cands = det.tlwh[det_by_frame[int(res.frame[r])]]
        assert np.abs(cands - res.tlwh[r]).max(axis=1).min() < 1e-3
    m = score_files(pets / "gt" / "gt.txt", run.result_path)
    assert m["mota"] > 0.55  # 0.62 with these Faster R-CNN boxes (detection-only bound: 0.59)


def test_private_mode_reads_frames_and_times_stages(syn: Path, tmp_path: Path) -> None:
    det = FakeDetector()
    run = track_sequence(syn, tmp_path, "private", preset("default"), det)
    assert run.frames == 50 and det.forward_calls == 50
    for stage in STAGES:
        assert run.ms[stage] > 0, stage
    assert run.fps > 0
    m = score_files(syn / "gt" / "gt.txt", run.result_path)
    assert m["idsw"] == 0 and m["mota"] > 0.85  # the blobs merge for a few frames where they cross
    assert run.num_tracks == 2


@pytest.mark.parametrize("mode", ["public", "gt"])
def test_table_modes_embed_the_given_boxes(syn: Path, tmp_path: Path, mode: str) -> None:
    det = FakeDetector()
    run = track_sequence(syn, tmp_path, mode, preset("default"), det)  # type: ignore[arg-type]
    seq = Sequence.open(syn)
    table = seq.det() if mode == "public" else counted_gt(seq.gt())
    assert len(det.embed_calls) == 50
    for f, rows in table.frame_slices().items():
        np.testing.assert_allclose(det.embed_calls[f - 1], tlwh_to_xyxy(table.tlwh[rows]), atol=1e-4)
    assert run.num_tracks == 2  # the zero-marked and the class-7 gt rows never became detections
    assert score_files(syn / "gt" / "gt.txt", run.result_path)["mota"] == 1.0


def test_result_file_format_and_order(syn: Path, tmp_path: Path) -> None:
    run = track_sequence(syn, tmp_path, "gt", preset("default"))
    lines = run.result_path.read_text().splitlines()
    assert len(lines) == run.num_boxes == 100
    keys = []
    for line in lines:
        cols = line.split(",")
        assert len(cols) == 10 and cols[7:] == ["-1", "-1", "-1"] and cols[6] == "1"
        keys.append((int(cols[0]), int(cols[1])))
    assert keys == sorted(keys)
    assert lines[0] == "1,1,20,60,20,40,1,-1,-1,-1"
    assert [p.name for p in tmp_path.iterdir()] == ["SYN-01.txt"]  # no temporary file left behind


def test_deterministic_output(syn: Path, tmp_path: Path) -> None:
    a = track_sequence(syn, tmp_path / "a", "private", preset("default"), FakeDetector())
    b = track_sequence(syn, tmp_path / "b", "private", preset("default"), FakeDetector())
    assert a.result_path.read_bytes() == b.result_path.read_bytes()


def test_frame_reader_is_swappable(syn: Path, tmp_path: Path) -> None:
    def first_three(seq: Sequence, detector: FrameDetector | None) -> Iterator[FrameInput]:
        for fr in read_frames(seq, detector):
            if fr.number > 3:
                return
            yield FrameInput(fr.number, fr.prep, read_s=0.5, preprocess_s=0.25)

    run = track_sequence(syn, tmp_path, "private", preset("default"), FakeDetector(), frame_reader=first_three)
    assert run.frames == 3
    assert run.ms["read"] == pytest.approx(500.0) and run.ms["preprocess"] == pytest.approx(250.0)
    assert read_results(run.result_path).frame.max() == 3


def test_progress_callback(syn: Path, tmp_path: Path) -> None:
    ticks: list[int] = []
    track_sequence(syn, tmp_path, "gt", None, progress=ticks.append)
    assert ticks == [1] * 50


def test_errors_before_any_work(syn: Path, pets: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="mode"):
        track_sequence(syn, tmp_path, "oracle", None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="needs a detector"):
        track_sequence(syn, tmp_path, "private", None)
    with pytest.raises(DatasetError, match="no images") as exc:
        track_sequence(pets, tmp_path, "public", None, FakeDetector())
    assert exc.value.path is not None and exc.value.path.endswith("img1")
    with pytest.raises(DatasetError, match="sequence folder not found"):
        track_sequence(tmp_path / "nope", tmp_path, "gt", None)
    assert list(tmp_path.iterdir()) == []


def test_malformed_gt_names_file_and_line(syn: Path, tmp_path: Path) -> None:
    import shutil

    seq = tmp_path / "BAD-01"
    shutil.copytree(syn, seq)
    gt = seq / "gt" / "gt.txt"
    lines = gt.read_text().splitlines()
    lines[4] = "1,2,10,10,-5,20,1,1,1"
    gt.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    with pytest.raises(DatasetError, match="negative box size") as exc:
        track_sequence(seq, out, "gt", None)
    assert exc.value.path == str(gt) and exc.value.line == 5
    assert not out.exists()


def test_empty_sequence(tmp_path: Path) -> None:
    seq = write_sequence(tmp_path, "EMPTY-01", frames=1)
    (seq / "seqinfo.ini").write_text((seq / "seqinfo.ini").read_text().replace("seqLength=1", "seqLength=0"))
    (seq / "gt" / "gt.txt").write_text("")
    run = track_sequence(seq, tmp_path / "out", "gt", None)
    assert run.frames == 0 and run.fps == 0.0 and run.num_boxes == 0
    assert run.result_path.read_text() == ""
    assert all(v == 0.0 for v in run.ms.values())
