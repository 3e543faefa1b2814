"""track-all's pieces with data, results, cache records and catalog in an S3 bucket (SeaweedFS),
against the same pieces on local folders: the selection, the tracking task (its result bytes and
cache key), the cached-result check and the evaluation into the catalog.  In-process; the flow on
workers in other network and mount namespaces is tests/storage/test_multi_host.py."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest

import catalog
from catalog.ingest import RunInfo
from cstrack.storage import Location, upload_tree
from flows.dispatch import abs_root, job_for
from flows.params import DatasetSelection, TrackAllParams
from tasks import track as track_module
from tasks.cachekeys import track_cache_key
from tasks.catalog import evaluate_task
from tasks.data import find_selection
from tasks.remote import cache_storage
from tasks.results import check_cached_result
from tests.fake_detector import write_sequence


@pytest.fixture
def datasets(tmp_path: Path, s3_bucket: str) -> tuple[Path, str]:
    """``syn`` with two sequences (split ``train``) on local disk and the same bytes in the bucket."""
    local = tmp_path / "data"
    split = local / "syn" / "images" / "train"
    write_sequence(split, "SYN-01", frames=12)
    write_sequence(split, "SYN-02", frames=8, size=(256, 160))
    (split / "notes").mkdir()  # not a sequence (no seqinfo.ini): skipped on both
    (split / "notes" / "readme.txt").write_text("x")
    remote = f"{s3_bucket}/data"
    upload_tree(local, remote, manifest=None)
    return local, remote


def test_pipeline_pieces_on_s3_match_local(datasets: tuple[Path, str], s3_bucket: str, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    local_data, remote_data = datasets
    monkeypatch.setattr(track_module._Progress, "__call__", lambda self, n: None)  # no flow run to log to
    monkeypatch.setenv("CSTRACK_CACHE", str(tmp_path / "worker-cache"))
    sel = DatasetSelection(name="syn", mode="gt")
    here = find_selection(local_data, sel)
    there = find_selection(remote_data, sel)
    assert [s.name for s in there] == [s.name for s in here] == ["SYN-01", "SYN-02"]
    for a, b in zip(here, there, strict=True):
        assert dataclasses.replace(b, seq_dir=a.seq_dir, gt_root=a.gt_root) == a
        assert b.seq_dir == f"{remote_data}/syn/images/train/{a.name}" and b.has_gt
    with pytest.raises(Exception, match=r"no split 'val'"):
        find_selection(remote_data, DatasetSelection(name="syn", splits=["val"]))
    with pytest.raises(Exception, match=r"datasets.nope: not prepared under s3://"):
        find_selection(remote_data, DatasetSelection(name="nope"))

    params = TrackAllParams(datasets=[sel], data_root=remote_data, results_root=f"{s3_bucket}/results")
    job = job_for(params, params.datasets[0])
    out_local = tmp_path / "results" / "syn" / "train"
    out_remote = f"{s3_bucket}/results/default/syn/train"
    for a, b in zip(here, there, strict=True):
        ra = track_module.track_sequence_task.fn(a, str(out_local), job)
        rb = track_module.track_sequence_task.fn(b, out_remote, job)
        result = Location.of(f"{out_remote}/{a.name}.txt")
        assert result.read_bytes() == (out_local / f"{a.name}.txt").read_bytes()  # identical bytes
        assert rb.result_path == result.url and rb.result_sha256 == ra.result_sha256 and rb.frames == ra.frames
        timing = Location.of(f"{out_remote}/{a.name}.timing.json").read_json()
        assert timing == json.loads(json.dumps(rb.to_json()))
        # the same cache key for the bucket's copy as for the local folder
        assert track_cache_key(None, {"seq": b, "job": job}) == track_cache_key(None, {"seq": a, "job": job})
        # a cached record is put in place in another run's folder of the bucket
        other = f"{s3_bucket}/results/rerun/syn/train"
        assert check_cached_result(rb, other) is None
        assert Location.of(f"{other}/{a.name}.txt").read_bytes() == result.read_bytes()
        assert Location.of(f"{other}/{a.name}.timing.json").exists()

    Location.of(f"{out_remote}/SYN-02.txt").write_text("1,1,1,1,1,1,1,-1,-1,-1\n")
    gone = track_module.track_sequence_task.fn(there[1], out_remote, job)  # tracked again: bytes restored
    assert Location.of(gone.result_path).read_bytes() == (out_local / "SYN-02.txt").read_bytes()

    # evaluation from the bucket into a catalog in the bucket: the rows of the local evaluation
    run = RunInfo(run_id="r-syn", dataset="syn", tracker="cstrack-n", split="train")
    names = ["SYN-01", "SYN-02"]
    evaluate_task.fn(str(local_data / "syn/images/train"), str(out_local), names, "mot17", "syn/train",
                     str(tmp_path / "cat"), run)
    evaluate_task.fn(there[0].gt_root, out_remote, names, "mot17", "syn/train", f"{s3_bucket}/cat", run)
    a = catalog.load("sequence_metrics", root=tmp_path / "cat")
    b = catalog.load("sequence_metrics", root=f"{s3_bucket}/cat")
    timing = [c for c in a.columns if c == "fps" or c.endswith("_ms")]  # two executions, two timings
    pd.testing.assert_frame_equal(a.drop(columns=timing), b.drop(columns=timing))
    assert b["fps"].notna().all()  # the timing records were read from the bucket
    assert a.loc[a["sequence"] == "COMBINED", "MOTA"].iloc[0] > 0.9  # gt boxes tracked: near-perfect

    # an s3:// results root keeps the Prefect cache records in the bucket (the task with them runs
    # in test_multi_host.py: Prefect wants the block saved on its server)
    assert cache_storage(f"{abs_root(s3_bucket)}/results/.cache/records", save=False).basepath == \
        f"{s3_bucket}/results/.cache/records"
    assert cache_storage(str(tmp_path / "c"), save=False) == tmp_path / "c"
