"""tasks.cachekeys: a cached result is reused for the same content, whatever the path, and never
for changed content."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from tasks.cachekeys import code_fingerprint, sequence_fingerprint, track_cache_key, track_key
from tasks.records import JobModel, SequenceRef, TrackJob, TrackMode


def _job(mode: TrackMode = "private", uses_model: bool = True, weights: str | None = "coco",
         preset: str = "default", size: tuple[int, int] = (320, 256)) -> TrackJob:
    model = JobModel.of(variant="cstrack-n", weights=weights, input_size=size, path="eager", conf_thres=0.5,
                        nms_thres=0.6, tracker_preset=preset)
    return TrackJob(mode=mode, uses_model=uses_model, model=model)


@pytest.fixture
def seq(head8: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "a" / "PETS09-S2L1-head8"
    shutil.copytree(head8, dst)
    return dst


def test_same_content_elsewhere_gives_the_same_key(seq: Path, tmp_path: Path) -> None:
    other = tmp_path / "b" / "renamed-parent" / seq.name
    shutil.copytree(seq, other)
    assert track_key(seq, _job()) == track_key(other, _job())
    ref = SequenceRef(dataset="pets", split="train", name=seq.name, seq_dir=str(seq))
    assert track_cache_key(None, {"seq": ref, "job": _job()}) == track_key(seq, _job())


def test_a_changed_image_changes_private_keys_only(seq: Path) -> None:
    keys = {m: track_key(seq, _job(m, uses_model=(m == "private"))) for m in ("private", "public", "gt")}
    img = seq / "img1" / "000005.jpg"
    img.write_bytes(img.read_bytes()[:-10] + b"0123456789")  # same name, same size, other bytes
    assert track_key(seq, _job("private")) != keys["private"]
    assert track_key(seq, _job("public", uses_model=False)) == keys["public"]
    assert track_key(seq, _job("gt", uses_model=False)) == keys["gt"]


def test_tables_change_the_keys_of_the_modes_that_read_them(seq: Path) -> None:
    gt_key = track_key(seq, _job("gt", uses_model=False))
    pub_key = track_key(seq, _job("public", uses_model=False))
    gt = seq / "gt" / "gt.txt"
    lines = gt.read_text().splitlines()
    gt.write_text("\n".join(lines[:-1]) + "\n")  # drop the last row
    assert track_key(seq, _job("gt", uses_model=False)) != gt_key
    assert track_key(seq, _job("public", uses_model=False)) == pub_key
    det = seq / "det" / "det.txt"
    det.write_text(det.read_text() + "1,-1,10,10,20,40,0.9,-1,-1,-1\n")
    assert track_key(seq, _job("public", uses_model=False)) != pub_key


def test_configuration_enters_the_key(seq: Path) -> None:
    base = track_key(seq, _job())
    assert track_key(seq, _job(size=(640, 384))) != base
    assert track_key(seq, _job(preset="original")) != base
    assert track_key(seq, _job(mode="public")) != base
    # half precision changes the tracks, the batch size does not (tests/flows/test_flow_batching.py)
    job = _job()
    half = dataclasses.replace(job, model=dataclasses.replace(job.model, precision="fp16"))
    batched = dataclasses.replace(job, model=dataclasses.replace(job.model, batch_size=4))
    assert track_key(seq, half) != base and track_key(seq, batched) == base
    # without a model the model settings do not matter
    assert track_key(seq, _job("gt", False, size=(640, 384))) == track_key(seq, _job("gt", False))


def test_weights_by_content_and_random_weights_never_cached(seq: Path, tmp_path: Path) -> None:
    w = tmp_path / "w.pt"
    w.write_bytes(b"weights v1")
    k1 = track_key(seq, _job(weights=str(w)))
    moved = tmp_path / "elsewhere.pt"
    shutil.copy(w, moved)
    assert track_key(seq, _job(weights=str(moved))) == k1
    w.write_bytes(b"weights v2")
    assert track_key(seq, _job(weights=str(w))) != k1
    assert track_key(seq, _job(weights=None)) is None
    # a checkpoint with a record is identified by the record's sha256 (verified again at load)
    (tmp_path / "w.json").write_text('{"sha256": "' + "ab" * 32 + '"}')
    assert track_key(seq, _job(weights=str(w))) == track_key(seq, _job(weights=str(w)))
    assert track_key(seq, _job(weights=str(w))) != k1


def test_missing_image_hashes_as_missing(seq: Path) -> None:
    before = sequence_fingerprint(seq, "private", reads_images=True)
    (seq / "img1" / "000008.jpg").unlink()
    assert sequence_fingerprint(seq, "private", reads_images=True) != before


def test_code_fingerprint_follows_the_tracking_code(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "tracker").mkdir(parents=True)
    (pkg / "runner.py").write_text("x = 1\n")
    (pkg / "tracker" / "a.py").write_text("y = 1\n")
    (pkg / "unrelated.py").write_text("z = 1\n")
    parts = ("runner.py", "tracker")
    a = code_fingerprint(pkg, parts)
    (pkg / "unrelated.py").write_text("z = 2\n")
    assert code_fingerprint(pkg, parts) == a
    (pkg / "tracker" / "a.py").write_text("y = 2\n")
    assert code_fingerprint(pkg, parts) != a


def test_the_code_that_counts_depends_on_the_job() -> None:
    from tasks.cachekeys import INFER_CODE, MODEL_CODE, TRACKING_CODE, code_parts

    assert code_parts(False, "eager") == TRACKING_CODE
    assert code_parts(True, "eager") == TRACKING_CODE + MODEL_CODE
    assert code_parts(True, "onnx") == TRACKING_CODE + MODEL_CODE + INFER_CODE


def test_the_key_hashes_plain_values_as_the_dictionary_jobs_did(seq: Path) -> None:
    """A typed job keys exactly as its dictionary form did (caches written before stay valid):
    the model's fields but its weights, which count by content."""
    from cstrack.fsutil import stable_hash
    from cstrack.model.weights import COCO_YOLOV5N_SHA256
    from tasks.cachekeys import KEY_VERSION, code_parts, tracker_fingerprint

    job = _job(size=(640, 384))
    assert job.model.key_fields() == {"variant": "cstrack-n", "input_size": [640, 384], "path": "eager",
                                      "conf_thres": 0.5, "nms_thres": 0.6, "frame_rate": None}
    expected = stable_hash({
        "v": KEY_VERSION, "inputs": sequence_fingerprint(seq, "private", reads_images=True),
        "weights": f"coco:{COCO_YOLOV5N_SHA256}", "model": job.model.key_fields(), "mode": "private",
        "tracker": tracker_fingerprint("default"), "code": code_fingerprint(parts=code_parts(True, "eager")),
    })
    assert track_key(seq, job) == expected
