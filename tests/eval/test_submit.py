"""Submissions: expected sequences per benchmark, checks that name every problem, the flat zip."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cstrack.cli import app
from cstrack.errors import ConfigError
from cstrack.eval.submit import SubmissionError, check, expected_sequences, write_submission

runner = CliRunner()


def _fill(root: Path, names: dict[str, int]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for name, length in names.items():
        (root / f"{name}.txt").write_text(f"1,1,10,20,30,60,0.9,-1,-1,-1\n{length},1,12,20,30,60,0.8,-1,-1,-1\n")


def test_expected_sequences() -> None:
    mot17 = expected_sequences("MOT17", "test")
    assert len(mot17) == 21 and mot17["MOT17-03-SDP"] == 1500 and mot17["MOT17-01-DPM"] == 450
    assert {k.rsplit("-", 1)[1] for k in mot17} == {"DPM", "FRCNN", "SDP"}
    assert expected_sequences("mot20", "train") == {"MOT20-01": 429, "MOT20-02": 2782, "MOT20-03": 2405,
                                                    "MOT20-05": 3315}
    assert len(expected_sequences("MOT16", "train")) == 7
    with pytest.raises(ConfigError, match="--benchmark"):
        expected_sequences("MOT18", "train")
    with pytest.raises(ConfigError, match="--split"):
        expected_sequences("MOT17", "val")


def test_complete_submission_is_a_flat_zip(tmp_path: Path) -> None:
    want = expected_sequences("MOT20", "test")
    _fill(tmp_path / "res", want)
    (tmp_path / "res" / "PETS09-S2L1.txt").write_text("1,1,1,1,5,5,1,-1,-1,-1\n")
    res = write_submission(tmp_path / "res", "MOT20", "test", tmp_path / "sub.zip")
    assert res.ignored == ["PETS09-S2L1.txt"] and res.rows == 8
    with zipfile.ZipFile(tmp_path / "sub.zip") as zf:
        assert sorted(zf.namelist()) == sorted(f"{s}.txt" for s in want)  # flat: no folder
        assert zf.read("MOT20-04.txt") == (tmp_path / "res" / "MOT20-04.txt").read_bytes()


def test_every_problem_is_listed_and_nothing_written(tmp_path: Path) -> None:
    want = expected_sequences("MOT17", "train")
    _fill(tmp_path, {k: v for k, v in want.items() if not k.endswith("-SDP")})  # one detector copy missing
    (tmp_path / "MOT17-02-DPM.txt").write_text("0,1,10,20,30,60,0.9,-1,-1,-1\n")  # frame 0
    (tmp_path / "MOT17-04-DPM.txt").write_text("1051,1,10,20,30,60,0.9,-1,-1,-1\n")  # beyond seqLength 1050
    (tmp_path / "MOT17-05-DPM.txt").write_text("3,7,10,20,30,60,0.9,-1,-1,-1\n3,7,50,20,30,60,0.9,-1,-1,-1\n")
    res = check(tmp_path, "MOT17", "train")
    assert res.problems[0].startswith("missing 7 of 21 sequences: MOT17-02-SDP, MOT17-04-SDP")
    text = "\n".join(res.problems)
    for name in ("MOT17-02-DPM.txt", "MOT17-04-DPM.txt", "MOT17-05-DPM.txt"):
        assert name in text
    assert len(res.problems) == 4
    with pytest.raises(SubmissionError):
        write_submission(tmp_path, "MOT17", "train", tmp_path / "out.zip")
    assert not (tmp_path / "out.zip").exists()


def test_cli(tmp_path: Path) -> None:
    _fill(tmp_path / "ok", expected_sequences("MOT16", "train"))
    res = runner.invoke(app, ["submit", str(tmp_path / "ok"), "--benchmark", "MOT16", "--split", "train",
                              "--out", str(tmp_path / "s.zip")])
    assert res.exit_code == 0, res.output
    assert "7 sequences" in res.stdout and zipfile.is_zipfile(tmp_path / "s.zip")
    res = runner.invoke(app, ["submit", str(tmp_path / "ok"), "--benchmark", "MOT16", "--split", "test",
                              "--out", str(tmp_path / "t.zip")])
    assert res.exit_code == 2 and "missing 7 of 7 sequences: MOT16-01" in res.output
    assert "Traceback" not in res.output and not (tmp_path / "t.zip").exists()
