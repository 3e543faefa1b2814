"""Our preprocessing must hand TrackEval's metrics exactly what ``MotChallenge2DBox`` would."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import trackeval
from trackeval.datasets._base_dataset import _BaseDataset

from cstrack.eval import prepare
from cstrack.eval.inputs import load_all, locate
from cstrack.eval.prepare import frame_bounds, frame_ious
from cstrack.eval.presets import get_preset
from cstrack.paths import shared_data

GOLDEN = shared_data() / "eval-golden"

SETS = [("tud", "motmetrics-test", "MOT15", "mot15"), ("mot20", "MPNTrack", "MOT20", "mot20")]


def _trackeval_dataset(name: str, tracker: str, benchmark: str):
    config = trackeval.datasets.MotChallenge2DBox.get_default_dataset_config()
    config.update(
        GT_FOLDER=str(GOLDEN / name / "gt"), TRACKERS_FOLDER=str(GOLDEN / name / "trackers"),
        TRACKERS_TO_EVAL=[tracker], BENCHMARK=benchmark, SKIP_SPLIT_FOL=True,
        SEQMAP_FILE=str(GOLDEN / name / "gt" / "seqmap.txt"), PRINT_CONFIG=False,
    )
    return trackeval.datasets.MotChallenge2DBox(config)


@pytest.mark.parametrize(("name", "tracker", "benchmark", "preset"), SETS)
def test_preprocessed_data_equals_trackeval(name, tracker, benchmark, preset):
    dataset = _trackeval_dataset(name, tracker, benchmark)
    ours = {p.name: p for p in prepare(GOLDEN / name / "gt", GOLDEN / name / "trackers" / tracker, None, preset)}
    for seq in dataset.seq_list:
        with contextlib.redirect_stdout(io.StringIO()):
            ref = dataset.get_preprocessed_seq_data(dataset.get_raw_seq_data(tracker, seq), "pedestrian")
        got = ours[seq].data
        for key in ("num_tracker_dets", "num_gt_dets", "num_tracker_ids", "num_gt_ids", "num_timesteps"):
            assert got[key] == ref[key], key
        for key in ("gt_ids", "tracker_ids", "gt_dets", "tracker_dets", "similarity_scores"):
            assert len(got[key]) == len(ref[key])
            for t, (a, b) in enumerate(zip(got[key], ref[key], strict=True)):
                assert a.shape == b.shape and np.array_equal(a, b), (seq, key, t)  # bit-identical


@pytest.mark.parametrize(("name", "tracker", "benchmark", "preset"), SETS)
def test_frame_ious_bit_identical_to_trackeval(name, tracker, benchmark, preset):
    files = locate(GOLDEN / name / "gt", GOLDEN / name / "trackers" / tracker / "data", None)
    for seq in load_all(files, get_preset(preset)):
        n = seq.seq_length
        gb, rb = frame_bounds(seq.gt.frame, n), frame_bounds(seq.result.frame, n)
        ious = frame_ious(seq.gt.tlwh, gb, seq.result.tlwh, rb, n)
        for t in range(n):
            gi, ri = gb[0][gb[1][t]:gb[1][t + 1]], rb[0][rb[1][t]:rb[1][t + 1]]
            ref = _BaseDataset._calculate_box_ious(seq.gt.tlwh[gi], seq.result.tlwh[ri], box_format="xywh")
            assert np.array_equal(ious[t], ref)


def test_frame_bounds_keep_file_order_within_a_frame():
    frames = np.array([2, 1, 2, 3, 1, 2])
    order, starts = frame_bounds(frames, 4)
    assert [order[starts[t]:starts[t + 1]].tolist() for t in range(4)] == [[1, 4], [0, 2, 5], [3], []]


def test_frame_ious_degenerate_boxes():
    gt = np.array([[0, 0, 10, 10], [0, 0, 0, 10]], float)  # second box has zero area
    res = np.array([[5, 0, 10, 10]], float)
    (iou,) = frame_ious(gt, frame_bounds(np.array([1, 1]), 1), res, frame_bounds(np.array([1]), 1), 1)
    # 5x10 overlap / (100 + 100 - 50) = 1/3; degenerate gt -> 0
    np.testing.assert_allclose(iou, [[1 / 3], [0.0]])
