"""``--path auto`` is only as fast as it is faithful: its tracks equal the eager path's on PETS09."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cstrack.data.mot import read_results
from cstrack.model.detector import AUTO_PATH, build_detector, resolve_path
from cstrack.model.inference_settings import settings_for_weights
from cstrack.paths import shipped_weights
from cstrack.source_runner import track_source
from cstrack.sources import make_source
from cstrack.tracker import preset

SEGMENT = 25  # frames 1-25 of PETS09-S2L1: tracks are born and confirmed, people walk past each other


@pytest.mark.slow  # an ONNX export and 80 forwards: ~10 s on an idle 2-core machine
def test_auto_path_tracks_equal_eager_on_a_pets09_segment(data_dir: Path, tmp_path: Path) -> None:
    assert resolve_path("auto") == AUTO_PATH != "eager"
    weights = shipped_weights()
    settings = settings_for_weights(weights)
    tables = {}
    for path in ("eager", "auto"):
        det = build_detector("cstrack-n", weights, settings.input_size, path=path, post=settings.postprocess_config())
        run = track_source(make_source(str(data_dir / "raw" / "PETS09-S2L1.mp4")), tmp_path / path, det,
                           preset(settings.tracker_preset), max_frames=SEGMENT, prefetch=0)
        assert run.frames == SEGMENT and run.result_path is not None
        tables[path] = read_results(run.result_path)
    eager, auto = tables["eager"], tables["auto"]
    assert len(eager) > 3 * SEGMENT and len(set(eager.id)) >= 3  # the people on screen are tracked
    # the same tracks: same rows (frame, id); boxes and scores equal up to the file's last rounded digit
    np.testing.assert_array_equal(auto.frame, eager.frame)
    np.testing.assert_array_equal(auto.id, eager.id)
    np.testing.assert_allclose(auto.tlwh, eager.tlwh, rtol=0, atol=2e-3)
    np.testing.assert_allclose(auto.conf, eager.conf, rtol=0, atol=1e-5)
