"""Track records and the struct-of-arrays store."""

from __future__ import annotations

import numpy as np
import pytest

from cstrack.boxes import xyah_to_tlwh
from cstrack.tracker import kalman
from cstrack.tracker.track import TrackArrays, TrackOutputs, TrackState, xyah_to_tlwh_fast


def test_state_values() -> None:
    assert [s.value for s in TrackState] == [0, 1, 2, 3]
    assert [s.name for s in TrackState] == ["NEW", "TRACKED", "LOST", "REMOVED"]


def test_fast_conversion_matches_boxes_module() -> None:
    xyah = np.random.default_rng(1).uniform(1, 100, (7, 4))
    np.testing.assert_allclose(xyah_to_tlwh_fast(xyah), xyah_to_tlwh(xyah))


def _add(store: TrackArrays, ids: list[int], frame: int, template: np.ndarray | None = None) -> None:
    xyah = np.array([[10.0 * i, 20.0, 0.5, 40.0] for i in ids])
    mean, cov = kalman.initiate(xyah)
    store.append(np.array(ids), mean, cov, np.full(len(ids), 0.9), frame, False, xyah_to_tlwh(xyah), template)


def test_append_keep_snapshot() -> None:
    s = TrackArrays()
    _add(s, [1, 2, 3], frame=4)
    assert len(s) == 3
    snap = s.snapshot()
    assert [t.track_id for t in snap] == [1, 2, 3]
    assert snap[1].state is TrackState.TRACKED and not snap[1].is_activated
    assert snap[1].start_frame == 4 and snap[1].frame_id == 4 and snap[1].tracklet_len == 0
    np.testing.assert_allclose(snap[2].tlwh, [20.0, 0.0, 20.0, 40.0])
    assert snap[0].template is None
    s.keep(np.array([True, False, True]))
    assert s.ids.tolist() == [1, 3] and s.mean.shape == (2, 8) and s.cov.shape == (2, 3, 4)
    np.testing.assert_allclose(s.birth_tlwh[1], [20.0, 0.0, 20.0, 40.0])


def test_templates_are_allocated_lazily() -> None:
    s = TrackArrays()
    _add(s, [1], frame=1)  # born without appearance
    s.ensure_template_dim(4)
    assert s.template is not None and s.template.shape == (1, 4) and not s.has_template[0]
    _add(s, [2], frame=2, template=np.array([[0, 1, 0, 0]], np.float32))
    assert s.template.shape == (2, 4) and s.has_template.tolist() == [False, True]
    assert s.snapshot()[1].template.tolist() == [0, 1, 0, 0]
    with pytest.raises(ValueError, match="embedding size changed"):
        s.ensure_template_dim(8)


def test_outputs_to_list() -> None:
    out = TrackOutputs(np.array([3, 4]), np.array([7, 8]), np.array([[1.0, 2, 3, 4], [5, 6, 7, 8]]),
                       np.array([0.5, 1.0], np.float32))
    rows = out.to_list()
    assert len(out) == 2
    assert [(r.frame, r.track_id, r.score) for r in rows] == [(3, 7, 0.5), (4, 8, 1.0)]
    assert rows[1].tlwh.tolist() == [5, 6, 7, 8]
    assert isinstance(rows[0].frame, int) and isinstance(rows[0].track_id, int)
