"""MOT17 from an extracted copy to the server zip (issue 28): ``cstrack data prepare mot17 --from
DIR`` checks the folder against the server's sequence list and prepares every detector copy and
the test split; track-all's ``detector_copies: once`` tracks each image sequence once and writes
the other copies' names; ``cstrack submit`` accepts the result.  A generated MOT17-layout folder
(tiny images, 3 frames) stands in for MOT17."""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from cstrack.cli import app
from cstrack.fsutil import sha256_file
from flows.detector_copies import collapse, write_copies
from flows.params import DatasetSelection, TrackAllParams
from tasks.data import select_sequences
from tasks.records import SequenceOutcome, TrackRecord
from tests.data.mot17_layout import write_mot17_layout

runner = CliRunner()


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    base = tmp_path_factory.mktemp("mot17")
    src = write_mot17_layout(base / "download")
    res = runner.invoke(app, ["data", "prepare", "mot17", "--root", str(base / "data"), "--from", str(src)])
    return base, src, res.output


def test_prepare_from_an_extracted_copy(prepared: tuple[Path, Path, str]) -> None:
    base, _, output = prepared
    assert "all 42 MOT17 sequences of train, test present" in output, output
    assert ("note: a trimmed copy, 42 sequence(s) shorter than the benchmark's: MOT17-02-DPM has 3 frames, the "
            "benchmark's has 600;") in output and "(and 39 more)" in output
    d = base / "data" / "mot17"
    for split in ("train", "test"):
        seqs = sorted(p.name for p in (d / "images" / split).iterdir())
        assert len(seqs) == 21 and {s.rsplit("-", 1)[1] for s in seqs} == {"DPM", "FRCNN", "SDP"}
    # training labels once (the SDP copies of train): 7 sequences x 3 frames
    assert len((d / "train.txt").read_text().splitlines()) == 21
    assert all("-SDP/" in line for line in (d / "train.txt").read_text().splitlines())
    assert '"from": "--from"' in (d / "prepared.json").read_text()


def test_an_incomplete_copy_is_refused_naming_what_is_missing(tmp_path: Path) -> None:
    src = write_mot17_layout(tmp_path / "dl", skip=("MOT17-04-FRCNN", "MOT17-01-DPM"))
    (src / "train" / "MOT17-05-SDP" / "img1" / "000003.jpg").unlink()
    res = runner.invoke(app, ["data", "prepare", "mot17", "--root", str(tmp_path / "data"), "--from", str(src)])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "train: missing 1 of 21 sequences: MOT17-04-FRCNN" in res.output
    assert "test: missing 1 of 21 sequences: MOT17-01-DPM" in res.output
    assert "MOT17-05-SDP: seqinfo.ini declares 3 frames" in res.output
    assert not (tmp_path / "data" / "mot17" / "images").exists()
    two = runner.invoke(app, ["data", "prepare", "mot17", "mot20", "--root", str(tmp_path / "d"), "--from", str(src)])
    assert two.exit_code == 2 and "--from: give one dataset name" in two.output


def test_each_image_sequence_is_tracked_once_and_written_under_every_name(prepared: tuple[Path, Path, str],
                                                                         tmp_path: Path) -> None:
    base, _, _ = prepared
    sel = DatasetSelection(name="mot17", splits=["test"], detector_copies="once")
    seqs, copies = collapse(select_sequences.fn(str(base / "data"), [sel]), [sel])
    assert sorted(s.name for s in seqs) == [f"MOT17-{n}-SDP" for n in ("01", "03", "06", "07", "08", "12", "14")]
    assert copies[("mot17", "test", "MOT17-01-SDP")] == ["MOT17-01-FRCNN", "MOT17-01-DPM"]
    # "tracking": one result per kept sequence (what the task writes), then the copies
    run_dir = tmp_path / "run"
    outcomes = []
    for s in seqs:
        out = run_dir / s.dataset / s.split / f"{s.name}.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("1,1,2.0,2.0,8.0,12.0,0.9,-1,-1,-1\n2,1,2.5,2.0,8.0,12.0,0.9,-1,-1,-1\n")
        now = dt.datetime.now(dt.UTC).isoformat()
        rec = TrackRecord(dataset=s.dataset, split=s.split, sequence=s.name, mode="private", frames=3, fps=10.0,
                          result_path=str(out), result_sha256=sha256_file(out), started=now, finished=now, worker="w")
        outcomes.append(SequenceOutcome(s, "tracked", rec))
    written = write_copies(outcomes, run_dir, copies)
    assert len(written) == 14 and "mot17/test/MOT17-14-DPM" in written
    folder = run_dir / "mot17" / "test"
    assert (folder / "MOT17-07-DPM.txt").read_bytes() == (folder / "MOT17-07-SDP.txt").read_bytes()

    zip_path = tmp_path / "MOT17-test.zip"
    res = runner.invoke(app, ["submit", str(folder), "--benchmark", "MOT17", "--split", "test", "--out", str(zip_path)])
    assert res.exit_code == 0, res.output
    assert f"{zip_path}: 21 sequences, 42 rows (MOT17 test)" in res.output
    with zipfile.ZipFile(zip_path) as zf:
        assert len(zf.namelist()) == 21 and "MOT17-03-FRCNN.txt" in zf.namelist()


def test_copies_with_other_images_are_tracked_apart_and_public_mode_is_refused(prepared: tuple[Path, Path, str],
                                                                              tmp_path: Path) -> None:
    import shutil

    base, _, _ = prepared
    data = tmp_path / "data"
    shutil.copytree(base / "data" / "mot17", data / "mot17", symlinks=True)
    img = data / "mot17" / "images" / "train" / "MOT17-02-DPM" / "img1" / "000003.jpg"
    img.unlink()
    img.write_bytes((data / "mot17" / "images" / "train" / "MOT17-04-SDP" / "img1" / "000003.jpg").read_bytes())
    sel = DatasetSelection(name="mot17", splits=["train"], sequences=["MOT17-02-*"], detector_copies="once")
    seqs, copies = collapse(select_sequences.fn(str(data), [sel]), [sel])
    assert sorted(s.name for s in seqs) == ["MOT17-02-DPM", "MOT17-02-SDP"]
    assert copies == {("mot17", "train", "MOT17-02-SDP"): ["MOT17-02-FRCNN"]}
    with pytest.raises(ValidationError, match="public detections"):
        TrackAllParams(datasets=[{"name": "mot17", "detector_copies": "once", "mode": "public"}])
