"""A 3-frame toy case whose metrics are computed by hand.

Boxes are tlwh; every match has IoU exactly 1 (identical boxes) and every other pair IoU 0, so all
19 HOTA alpha thresholds give the same matches.

    frame 1: gt 1 @A, gt 2 @B        tracks 10 @A, 11 @B
    frame 2: gt 1 @A, gt 2 @B        tracks 10 @A, 12 @B      (gt 2 switches from track 11 to 12)
    frame 3: gt 1 @A                 tracks 10 @A, 13 @C      (13 overlaps nothing: false positive)

CLEAR: TP = 5 (1-10 three times, 2-11, 2-12), FN = 0, FP = 1, IDSW = 1 (gt 2: 11 -> 12)
    MOTA = (TP - FP - IDSW) / (TP + FN) = (5 - 1 - 1) / 5 = 0.6;  MOTP = mean IoU of TPs = 1
    MT = 2 (gt 1 matched 3/3, gt 2 matched 2/2), PT = ML = 0, Frag = 0 (no track is interrupted)
Identity: best one-to-one id mapping 1->10 (3 frames), 2->11 or 2->12 (1 frame): IDTP = 4
    IDFN = 5 - 4 = 1, IDFP = 6 - 4 = 2;  IDP = 4/6, IDR = 4/5, IDF1 = 2*4 / (5 + 6) = 8/11
HOTA (any alpha): TP = 5, FN = 0, FP = 1 -> DetA = 5/6, DetRe = 1, DetPr = 5/6
    A(c) = TPA / (|gt id| + |track id| - TPA):  (1,10): 3/(3+3-3) = 1 (three TPs),
    (2,11): 1/(2+1-1) = 1/2, (2,12): 1/(2+1-1) = 1/2  ->  AssA = (3*1 + 1/2 + 1/2) / 5 = 4/5
    AssRe = mean TPA/|gt id| = (3*1 + 1/2 + 1/2) / 5 = 4/5;  AssPr = mean TPA/|track id| = 1
    HOTA = sqrt(DetA * AssA) = sqrt(2/3);  LocA = 1
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from cstrack.eval import COMBINED, evaluate, event_log, prepare

A, B, C = "0,0,10,20", "100,0,10,20", "300,300,10,20"

GT_PLAIN = [f"1,1,{A},1,-1,-1,-1", f"1,2,{B},1,-1,-1,-1", f"2,1,{A},1,-1,-1,-1", f"2,2,{B},1,-1,-1,-1",
            f"3,1,{A},1,-1,-1,-1"]
RESULTS = [f"1,10,{A},1,-1,-1,-1", f"1,11,{B},1,-1,-1,-1", f"2,10,{A},1,-1,-1,-1", f"2,12,{B},1,-1,-1,-1",
           f"3,10,{A},1,-1,-1,-1", f"3,13,{C},1,-1,-1,-1"]

HAND = {
    "TP": 5, "FN": 0, "FP": 1, "IDSW": 1, "MT": 2, "PT": 0, "ML": 0, "Frag": 0,
    "MOTA": 0.6, "MOTP": 1.0, "IDP": 4 / 6, "IDR": 4 / 5, "IDF1": 8 / 11,
    "DetA": 5 / 6, "DetRe": 1.0, "DetPr": 5 / 6, "AssA": 4 / 5, "AssRe": 4 / 5, "AssPr": 1.0,
    "HOTA": math.sqrt(2 / 3), "LocA": 1.0,
    "gt_dets": 5, "tracker_dets": 6, "gt_ids": 2, "tracker_ids": 4, "frames": 3,
}


def _check(metrics):
    for key, want in HAND.items():
        assert metrics[key] == pytest.approx(want, abs=1e-12), key


@pytest.mark.parametrize("preset", ["plain", "mot15"])
def test_toy_case_matches_hand_computation(make_sequence, preset):
    gt_root, res_root = make_sequence("toy", 3, GT_PLAIN, RESULTS)
    result = evaluate(gt_root, res_root, ["toy"], preset)
    _check(result["toy"])
    _check(result[COMBINED])


def test_toy_case_mot17_preprocessing(make_sequence):
    """The same scene in MOT17's 9-column gt, plus what the server's preprocessing removes:

    - gt 3 (class 7, static person) at D in frame 1 with track 14 on it: track 14 is matched to a
      distractor, so it is removed, and gt 3 is not a pedestrian, so it is not counted;
    - gt 4 (pedestrian, flag 0) at E in frame 2: ignored (no FN);
    - gt 5 (class 11, occluder, flag 1): not counted, and track 15 on it is NOT removed (11 is not a
      distractor class) -> one more FP, one more track id.
    So TP/FN/IDSW stay, FP = 1 + 1 = 2, MOTA = (5 - 2 - 1)/5 = 0.4, IDFP = 7 - 4 = 3,
    IDP = 4/7, IDF1 = 8/12, DetA = 5/7, HOTA = sqrt(5/7 * 4/5) = sqrt(4/7), AssPr = 1, AssA = 4/5.
    """
    D, E, F = "200,0,10,20", "400,0,10,20", "500,0,10,20"
    gt = [r.replace(",1,-1,-1,-1", ",1,1,1.0") for r in GT_PLAIN] + [
        f"1,3,{D},1,7,1.0", f"2,4,{E},0,1,1.0", f"3,5,{F},1,11,1.0"]
    res = [*RESULTS, f"1,14,{D},1,-1,-1,-1", f"3,15,{F},1,-1,-1,-1"]
    gt_root, res_root = make_sequence("toy", 3, gt, res)
    m = evaluate(gt_root, res_root, ["toy"], "mot17")["toy"]
    assert (m["TP"], m["FN"], m["FP"], m["IDSW"]) == (5, 0, 2, 1)
    assert m["MOTA"] == pytest.approx(0.4)
    assert m["IDP"] == pytest.approx(4 / 7) and m["IDF1"] == pytest.approx(8 / 12)
    assert m["DetA"] == pytest.approx(5 / 7) and m["AssA"] == pytest.approx(4 / 5)
    assert m["HOTA"] == pytest.approx(math.sqrt(4 / 7))
    assert (m["gt_dets"], m["tracker_dets"], m["gt_ids"], m["tracker_ids"]) == (5, 7, 2, 5)
    # mot15 ignores classes: gt 3 and gt 5 become counted pedestrians matched by tracks 14 and 15.
    m15 = evaluate(gt_root, res_root, ["toy"], "mot15")["toy"]
    assert (m15["TP"], m15["FP"], m15["gt_dets"]) == (7, 1, 7)


def test_toy_event_log_rows(make_sequence):
    gt_root, res_root = make_sequence("toy", 3, GT_PLAIN, RESULTS)
    ev = event_log(prepare(gt_root, res_root, ["toy"], "plain")[0])
    rows = [
        (int(f), str(e), None if g is pd.NA else int(g), None if h is pd.NA else int(h))
        for f, e, g, h in zip(ev["frame"], ev["event"], ev["gt_id"], ev["track_id"], strict=True)
    ]
    assert sorted(rows, key=str) == sorted([
        (1, "MATCH", 1, 10), (1, "MATCH", 2, 11),
        (2, "MATCH", 1, 10), (2, "SWITCH", 2, 12),
        (3, "MATCH", 1, 10), (3, "FP", None, 13),
    ], key=str)
    assert ev.loc[ev["event"] != "FP", "iou"].tolist() == [1.0] * 5
    assert ev.loc[ev["event"] == "FP", "iou"].isna().all()


def test_missing_result_counted_empty_only_with_flag(make_sequence):
    gt_root, res_root = make_sequence("toy", 3, GT_PLAIN, None)
    m = evaluate(gt_root, res_root, ["toy"], "plain", allow_missing=True)
    assert m.missing == ("toy",)
    t = m["toy"]
    assert (t["TP"], t["FN"], t["FP"], t["MOTA"], t["tracker_dets"]) == (0, 5, 0, 0.0, 0)
    assert (t["ML"], t["HOTA"], t["IDF1"]) == (2, 0.0, 0.0)
