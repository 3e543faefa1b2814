"""Every gt/result file is validated before any metric work; errors name file and line."""

from __future__ import annotations

import re

import pytest

from cstrack.errors import ConfigError, DatasetError, EvaluationError
from cstrack.eval import evaluate, evaluation

GOOD_GT = ["1,1,0,0,10,20,1,1,1.0", "2,1,0,0,10,20,1,1,1.0", "3,1,0,0,10,20,1,1,1.0"]
GOOD_RES = ["1,7,0,0,10,20,1,-1,-1,-1", "2,7,0,0,10,20,1,-1,-1,-1"]


def _raises_at(exc_info, path_end: str, line: int | None) -> None:
    err = exc_info.value
    assert err.path is not None and err.path.endswith(path_end)
    assert err.line == line
    assert path_end in str(err)


@pytest.mark.parametrize(
    ("bad_row", "message"),
    [
        ("2,1,0,0,10,x,1,1,1.0", "non-numeric"),
        ("2,1,0,0,10", "columns"),
        ("2,1,0,0,10,20,1,1", "columns where earlier lines have 9"),
        ("2,1,0,0,-10,20,1,1,1.0", "negative box size"),
        ("2,1.5,0,0,10,20,1,1,1.0", "not an integer"),
        ("4,1,0,0,10,20,1,1,1.0", "outside the sequence (1..3)"),
        ("2,-3,0,0,10,20,1,1,1.0", "negative gt id"),
        ("2,2,0,0,10,20,1,14,1.0", "not a MOTChallenge class"),
    ],
)
def test_bad_gt_line_names_file_and_line(make_sequence, bad_row, message):
    gt = [GOOD_GT[0], bad_row, GOOD_GT[2]]
    gt_root, res_root = make_sequence("s", 3, gt, GOOD_RES)
    with pytest.raises(DatasetError, match=re.escape(message)) as exc:
        evaluate(gt_root, res_root, ["s"], "mot17")
    _raises_at(exc, "s/gt/gt.txt", 2)


@pytest.mark.parametrize(
    ("bad_row", "message"),
    [
        ("2,7,0,0,10,twenty,1,-1,-1,-1", "non-numeric"),
        ("9,7,0,0,10,20,1,-1,-1,-1", "frame 9 outside the sequence"),
        ("0,7,0,0,10,20,1,-1,-1,-1", "frame 0 outside"),
        ("1,7,5,5,10,20,1,-1,-1,-1", "duplicate id 7 in frame 1 (first seen on line 1)"),
        ("2,8,0,0,10,nan,1,-1,-1,-1", "non-finite"),
        ("2,-1,0,0,10,20,1,-1,-1,-1", "negative track id"),
        ("2,8,0,0,10,20,1,3,-1,-1", "only pedestrian results"),
    ],
)
def test_bad_result_line_names_file_and_line(make_sequence, bad_row, message):
    gt_root, res_root = make_sequence("s", 3, GOOD_GT, [GOOD_RES[0], bad_row])
    with pytest.raises(DatasetError, match=re.escape(message)) as exc:
        evaluate(gt_root, res_root, ["s"], "mot17")
    _raises_at(exc, "res/s.txt", 2)


def test_plain_preset_accepts_result_class_column(make_sequence):
    gt_root, res_root = make_sequence("s", 3, GOOD_GT, ["1,7,0,0,10,20,1,3,-1,-1"])
    assert evaluate(gt_root, res_root, ["s"], "plain")["s"]["TP"] == 1


def test_preset_column_requirements(make_sequence):
    gt_root, res_root = make_sequence("a", 3, ["1,1,0,0,10,20,1,-1,-1,-1"], GOOD_RES)  # MOT15 layout
    with pytest.raises(DatasetError, match="not a MOTChallenge class") as exc:
        evaluate(gt_root, res_root, ["a"], "mot17")
    _raises_at(exc, "a/gt/gt.txt", 1)
    assert evaluate(gt_root, res_root, ["a"], "mot15")["a"]["TP"] == 1
    gt_root, res_root = make_sequence("b", 3, ["1,1,0,0,10,20"], GOOD_RES)
    with pytest.raises(DatasetError, match="at least 8 columns") as exc:
        evaluate(gt_root, res_root, ["b"], "mot15")
    _raises_at(exc, "b/gt/gt.txt", 1)
    assert evaluate(gt_root, res_root, ["b"], "plain")["b"]["TP"] == 1


def test_missing_result_is_an_error_naming_the_file(make_sequence):
    gt_root, res_root = make_sequence("s", 3, GOOD_GT, None)
    with pytest.raises(EvaluationError, match=r"res/s\.txt: no result file for sequence s"):
        evaluate(gt_root, res_root, ["s"], "mot17")
    assert evaluate(gt_root, res_root, ["s"], "mot17", allow_missing=True)["s"]["FN"] == 3


def test_missing_sequence_folder_and_seqinfo(make_sequence):
    gt_root, res_root = make_sequence("s", 3, GOOD_GT, GOOD_RES)
    with pytest.raises(EvaluationError, match="no such sequence folder"):
        evaluate(gt_root, res_root, ["nope"], "mot17")
    (gt_root / "s" / "seqinfo.ini").unlink()
    with pytest.raises(DatasetError, match=r"seqinfo\.ini not found"):
        evaluate(gt_root, res_root, ["s"], "mot17")


def test_unknown_preset():
    with pytest.raises(ConfigError, match="preset: unknown 'mot99'"):
        evaluate(".", ".", ["x"], "mot99")


def test_all_files_checked_before_metric_work(make_sequence, monkeypatch):
    """A bad file in the last sequence stops the run before any metric is computed, and the
    message counts the other invalid sequences."""
    calls = []
    monkeypatch.setattr(evaluation, "run_metrics", lambda *a, **k: calls.append(a))
    make_sequence("a-good", 3, GOOD_GT, GOOD_RES)
    make_sequence("b-bad", 3, GOOD_GT, ["1,7,0,0,10,20,1,-1,-1,-1", "1,7,0,0,10,20,1,-1,-1,-1"])
    gt_root, res_root = make_sequence("c-missing", 3, GOOD_GT, None)
    with pytest.raises(DatasetError, match=r"duplicate id 7 .*\[and 1 more invalid sequence\(s\): .*c-missing") as exc:
        evaluate(gt_root, res_root, ["a-good", "b-bad", "c-missing"], "mot17")
    _raises_at(exc, "res/b-bad.txt", 2)
    assert calls == []
