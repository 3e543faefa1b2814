"""Golden equality with ../shared/data/eval-golden/EXPECTED.json (trackeval 1.3.0, server settings):
integers exact, ratios to 1e-9, on every set, per sequence and combined."""

from __future__ import annotations

import json

import pytest

from cstrack.eval import COMBINED, evaluate
from cstrack.paths import shared_data

GOLDEN = shared_data() / "eval-golden"

EXPECTED = json.loads((GOLDEN / "EXPECTED.json").read_text())
SETS = sorted(k for k in EXPECTED if not k.startswith("_"))
PRESET = {"MOT15": "mot15", "MOT16": "mot16", "MOT17": "mot17", "MOT20": "mot20"}


def _expected_rows(name: str) -> dict[str, dict[str, float]]:
    spec = EXPECTED[name]
    rows = {**spec["sequences"], COMBINED: spec["COMBINED"]}
    return {seq: {**{k: v for k, v in vals.items() if k != "_extra"}, **vals["_extra"]} for seq, vals in rows.items()}


def _assert_matches(result, name: str) -> None:
    for seq, vals in _expected_rows(name).items():
        got = result[seq]
        for key, want in vals.items():
            if isinstance(want, int):
                assert isinstance(got[key], int), (seq, key)
                assert got[key] == want, (seq, key, got[key], want)
            else:
                assert got[key] == pytest.approx(want, abs=1e-9, rel=0), (seq, key, got[key], want)


def test_every_golden_set_is_covered():
    assert SETS == ["mot20", "tud"]


@pytest.mark.parametrize("name", SETS)
def test_golden_equality_trackeval_layout(name):
    spec = EXPECTED[name]
    gt_root = GOLDEN / spec["gt_folder"]
    results = GOLDEN / spec["trackers_folder"] / spec["tracker"] / "data"
    result = evaluate(gt_root, results, preset=PRESET[spec["benchmark"]])
    assert result.sequences == tuple(spec["sequences"])
    _assert_matches(result, name)


@pytest.mark.parametrize("name", SETS)
def test_golden_equality_in_worker_processes_and_tracker_folder(name):
    spec = EXPECTED[name]
    gt_root = GOLDEN / spec["gt_folder"]
    tracker_folder = GOLDEN / spec["trackers_folder"] / spec["tracker"]  # data/ is found inside
    result = evaluate(gt_root, tracker_folder, sorted(spec["sequences"]), PRESET[spec["benchmark"]], workers=2)
    _assert_matches(result, name)


def test_golden_counts_are_consistent():
    spec = EXPECTED["tud"]
    result = evaluate(GOLDEN / spec["gt_folder"], GOLDEN / "tud/trackers/motmetrics-test/data", preset="mot15")
    for seq in (*spec["sequences"], COMBINED):
        m = result[seq]
        assert m["TP"] + m["FN"] == m["gt_dets"]
        assert m["TP"] + m["FP"] == m["tracker_dets"]
        assert m["MT"] + m["PT"] + m["ML"] == m["gt_ids"]
    # TUD: 359 + 1156 gt rows (all flag 1, MOT15 keeps them), 222 + 749 result rows, 71 + 179 frames.
    assert result[COMBINED]["gt_dets"] == 359 + 1156
    assert result[COMBINED]["tracker_dets"] == 222 + 749
    assert result[COMBINED]["frames"] == 71 + 179


def test_mot20_preprocessing_drops_distractors_and_zero_marked():
    spec = EXPECTED["mot20"]
    result = evaluate(GOLDEN / spec["gt_folder"], GOLDEN / "mot20/trackers/MPNTrack/data", preset="mot20")
    # Raw gt: 26,647 rows of which 19,870 are class 1 (data/README.md); pedestrians with flag 0 are
    # none in MOT20-01, so 19,870 are counted.
    assert result["MOT20-01"]["gt_dets"] == 19870


def test_json_layout():
    spec = EXPECTED["tud"]
    result = evaluate(GOLDEN / spec["gt_folder"], GOLDEN / "tud/trackers/motmetrics-test/data", preset="mot15")
    js = result.to_json()
    assert list(js) == ["TUD-Campus", "TUD-Stadtmitte", COMBINED]
    assert set(js[COMBINED]) == {"HOTA", "DetA", "AssA", "LocA", "MOTA", "MOTP", "IDF1", "IDP", "IDR",
                                 "IDSW", "FP", "FN", "Frag", "MT", "PT", "ML"}
    assert js[COMBINED]["IDSW"] == 14 and isinstance(js[COMBINED]["FN"], int)
    assert all(0.0 <= js[s][k] <= 1.0 for s in js for k in ("HOTA", "MOTP", "IDF1", "LocA"))
    json.dumps(js)  # plain Python types only
