"""The flows' ``model.batch_size`` / ``model.precision`` (as ``cstrack track --batch-size/--precision``):
carried to the tracking task, where a batch of 2 writes the tracks of batch 1 (the same rows, boxes
within tests/infer/test_batch.py's 1e-3 px: batched float sums are not bit-equal); refused where
the path or the mode cannot honour them, naming the parameter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cstrack.data.mot import read_results
from cstrack.errors import ConfigError
from cstrack.infer.batch import PRECISIONS, BatchedDetector
from flows.dispatch import job_for
from flows.params import TrackAllParams
from tasks import records
from tasks import track as track_module
from tasks.records import SequenceRef

BOX_ATOL = 1e-3  # px, as tests/infer/test_batch.py (plus the result file's rounding)
WEIGHTS = str(Path(__file__).resolve().parents[2] / "weights" / "cstrack-n_pets09.pt")


def _params(**model: object) -> TrackAllParams:
    return TrackAllParams(datasets=[{"name": "pets"}], model={"weights": WEIGHTS, "input_size": [320, 256],
                                                              "path": "eager", "device": "cpu", **model})


def test_batch_size_two_writes_the_tracks_of_batch_one(head8: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(track_module._Progress, "__call__", lambda self, n: None)  # no flow run to log to
    calls: list[int] = []
    forward_batch = BatchedDetector.forward_batch
    monkeypatch.setattr(BatchedDetector, "forward_batch",
                        lambda self, preps: calls.append(len(preps)) or forward_batch(self, preps))
    seq = SequenceRef(dataset="pets", split="train", name=head8.name, seq_dir=str(head8), frames=8, has_gt=True)
    out: dict[int, Path] = {}
    for batch in (1, 2):
        params = _params(batch_size=batch)
        job = job_for(params, params.datasets[0])
        assert (job.model.batch_size, job.model.precision) == (batch, "fp32")
        rec = track_module.track_sequence_task.fn(seq, str(tmp_path / f"b{batch}"), job)
        out[batch] = Path(rec.result_path)
    assert calls == [2] * 4  # batch 2 ran batched (8 frames); batch 1 is the plain detector
    got, want = read_results(out[2]), read_results(out[1])
    assert len(want) >= 12 and len(set(want.id)) >= 2  # people are tracked (320x256, 8 frames)
    np.testing.assert_array_equal(got.frame, want.frame)
    np.testing.assert_array_equal(got.id, want.id)
    assert np.abs(got.tlwh - want.tlwh).max() <= BOX_ATOL + 1e-6
    np.testing.assert_allclose(got.conf, want.conf, rtol=0, atol=1e-5)


def test_what_cannot_batch_or_run_half_precision_is_named() -> None:
    assert records.PRECISIONS == PRECISIONS
    params = _params(path="onnx", batch_size=2)
    with pytest.raises(ConfigError, match=r"^model\.batch_size: batches on the eager and fast paths only"):
        job_for(params, params.datasets[0])
    params = _params(path="onnx", precision="bf16")
    with pytest.raises(ConfigError, match=r"^model\.precision: bf16 runs on the eager and fast paths only"):
        job_for(params, params.datasets[0])
    params = TrackAllParams(datasets=[{"name": "pets", "mode": "cached"}], model={"path": "eager", "precision": "fp16"})
    with pytest.raises(ConfigError, match=r"^model\.precision: the detection cache holds fp32"):
        job_for(params, params.datasets[0])
    with pytest.raises(ValueError, match="precision"):
        _params(precision="fp8")
    default = job_for(_params(), _params().datasets[0])
    assert (default.model.batch_size, default.model.precision) == (None, "fp32")
