"""Parameter counts and FLOPs of every variant, against the spec's measured reference numbers."""

from __future__ import annotations

import pytest

from cstrack.model import build_model
from cstrack.model.complexity import count_flops, count_params, model_report

# Spec §3: SOTS' full model has 78,863,078 parameters including the unused Detect scalar `k`
# (spec Q5), which we drop; 260.15 GFLOPs (130.08 GMACs) at 1088x608.
SPEC_L_PARAMS = 78_863_078
SPEC_L_GFLOPS = 260.15
# Spec §12: CSTrack-S (YOLOv5-s multiples) 18,079,206 params, 80.93 GFLOPs at 1088x608.
SPEC_S_PARAMS = 18_079_206
SPEC_S_GFLOPS = 80.93


def test_cstrack_l_matches_spec_reference() -> None:
    model = build_model("cstrack-l")
    params = count_params(model)
    assert params == SPEC_L_PARAMS - 1  # exactly the spec's count minus `k`
    assert abs(params - SPEC_L_PARAMS) / SPEC_L_PARAMS < 0.005
    total, groups, _ = count_flops(model, (1088, 608))
    assert abs(total / 1e9 - SPEC_L_GFLOPS) / SPEC_L_GFLOPS < 0.03
    assert total == 260_154_491_008
    # Spec §3 group table (GMACs): backbone 61.77, neck 31.50, REN 5.88, SAAN 30.85, Detect 0.08
    gmacs = {k: v / 2e9 for k, v in groups.items()}
    assert gmacs["backbone"] == pytest.approx(61.77, abs=0.01)
    assert gmacs["neck"] == pytest.approx(31.50, abs=0.01)
    assert gmacs["ren"] == pytest.approx(5.88, abs=0.01)
    assert gmacs["emb"] == pytest.approx(30.85, abs=0.01)
    assert gmacs["detect"] == pytest.approx(0.08, abs=0.01)


def test_cstrack_l_param_groups_match_spec_table() -> None:
    groups = {k: sum(p.numel() for p in ps) for k, ps in build_model("cstrack-l").parameter_groups().items()}
    # Spec §3: backbone 27,426,048; neck 19,934,976; REN 24,776,198; SAAN 6,693,545; Detect 32,311 - k
    assert groups == {
        "backbone": 27_426_048, "neck": 19_934_976, "ren": 24_776_198, "emb": 6_693_545, "detect": 32_310,
    }


def test_cstrack_s_matches_spec_assumption() -> None:
    model = build_model("cstrack-s")
    assert count_params(model) == SPEC_S_PARAMS - 1
    total, _, _ = count_flops(model, (1088, 608))
    assert total / 1e9 == pytest.approx(SPEC_S_GFLOPS, abs=0.01)


def test_jde_l_is_the_detector_with_a_plain_embedding_head() -> None:
    model = build_model("jde-l")
    # trunk + detect of cstrack-l, no REN, embedding = Conv2d(256, 512, 3) with bias on P3
    assert count_params(model) == 27_426_048 + 19_934_976 + (256 * 512 * 9 + 512) + 32_310
    _, groups, _ = count_flops(model, (1088, 608))
    assert groups["ren"] == 0
    assert groups["emb"] == 2 * 256 * 512 * 9 * 76 * 136


def test_cstrack_n_is_under_three_gflops_at_576x320() -> None:
    report = model_report(build_model("cstrack-n"), (576, 320))
    # Measured with this code: 3,603,821 params, 2.9127 GFLOPs; the aim is <= 3 GFLOPs.
    assert report["params"] == 3_603_821
    assert report["gflops"] == pytest.approx(2.9127, abs=0.0001)
    assert report["gflops"] <= 3.0
    # REN at the width-scaled channels 64/128/256: 2 (9 C^2 + C) + 2 per level
    assert report["groups"]["ren"]["params"] == sum(2 * (9 * c * c + c) + 2 for c in (64, 128, 256))


def test_params_do_not_depend_on_input_size() -> None:
    model = build_model("cstrack-n")
    a = model_report(model, (576, 320))
    b = model_report(model, (1088, 608))
    assert a["params"] == b["params"]
    assert b["gflops"] > a["gflops"] * 3
