"""Our tracker under preset ``original`` writes what the original JDETracker wrote on the fixture's
795 frames, given exactly the detections it consumed (``tracker_inputs.npz``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cstrack.detection import Detections
from cstrack.tracker import Tracker, preset


def run(parity: Path, preset_name: str) -> np.ndarray:
    """Rows (frame, id, x, y, w, h) sorted by frame then id."""
    cfg_json = json.loads((parity / "tracker_config.json").read_text())
    cfg = preset(preset_name, track_buffer=cfg_json["track_buffer"], det_thresh=cfg_json["det_thresh_new_track"])
    with np.load(parity / "tracker_inputs.npz") as z:
        frame, tlbr, score, emb = z["frame"], z["tlbr"], z["score"], z["emb"]
    tracker = Tracker(cfg, frame_rate=cfg_json["frame_rate"])
    rows = []
    bounds = np.searchsorted(frame, np.arange(1, cfg_json["frames"] + 2))  # rows are grouped by frame
    for f in range(1, cfg_json["frames"] + 1):
        sl = slice(bounds[f - 1], bounds[f])
        for o in tracker.update(Detections(tlbr[sl], score[sl], emb[sl])):
            rows.append((o.frame, o.track_id, *o.tlwh))
    out = np.array(rows, dtype=np.float64).reshape(-1, 6)
    return out[np.lexsort((out[:, 1], out[:, 0]))]


def reference(parity: Path) -> np.ndarray:
    ref = np.loadtxt(parity / "tracker_output_sots_raw.txt", delimiter=",", ndmin=2)[:, :6]
    return ref[np.lexsort((ref[:, 1], ref[:, 0]))]


@pytest.fixture(scope="module")
def original_rows(parity: Path) -> np.ndarray:
    return run(parity, "original")


def match_rows(ours: np.ndarray, ref: np.ndarray) -> tuple[dict[int, set[int]], float]:
    """Pair rows frame by frame by their boxes: ``(reference id -> our ids, max box difference)``."""
    ids: dict[int, set[int]] = {}
    worst = 0.0
    for f in np.unique(ref[:, 0]):
        a, b = ours[ours[:, 0] == f], ref[ref[:, 0] == f]
        assert len(a) == len(b), f"frame {int(f)}: {len(a)} rows, the original wrote {len(b)}"
        for row in b:
            d = np.abs(a[:, 2:6] - row[2:6]).max(axis=1)
            j = int(d.argmin())
            worst = max(worst, float(d[j]))
            ids.setdefault(int(row[1]), set()).add(int(a[j, 1]))
    return ids, worst


def test_preset_original_reproduces_the_original_row_for_row(parity: Path, original_rows: np.ndarray) -> None:
    ref = reference(parity)
    assert len(original_rows) == len(ref)
    assert np.array_equal(original_rows[:, 0], ref[:, 0])  # same frames, same row counts per frame
    ids, worst = match_rows(original_rows, ref)
    assert worst <= 1e-3  # px
    # identities equal up to a one-to-one renaming (the original's global counter leaves gaps)
    assert all(len(v) == 1 for v in ids.values())
    assert len({next(iter(v)) for v in ids.values()}) == len(ids)


def test_default_preset_differs_only_by_the_documented_backfill(parity: Path, original_rows: np.ndarray) -> None:
    # docs/tracking.md: the default reports a confirmed track's birth box too (Q9) and has no
    # output filter (Q10, which removes nothing on these pedestrian boxes).
    default = run(parity, "default")
    key = {(int(r[0]), int(r[1])) for r in original_rows}
    extra = np.array([r for r in default if (int(r[0]), int(r[1])) not in key])
    assert len(default) == len(original_rows) + len(extra)
    first = {}
    for r in original_rows:
        first.setdefault(int(r[1]), int(r[0]))
    # every extra row is a birth frame: the frame just before the track's first original row
    assert len(extra) > 0
    assert all(first[int(r[1])] == int(r[0]) + 1 for r in extra)
    shared = np.array([r for r in default if (int(r[0]), int(r[1])) in key])
    assert np.abs(shared[:, 2:] - original_rows[:, 2:]).max() == 0.0
