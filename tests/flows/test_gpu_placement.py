"""GPU workers in the Dask cluster (issue 26): a task whose model runs on CUDA asks for the resource
GPU, everything else for CPU when the cluster declares it, and the scheduler places them so.  The
device is only named here (no GPU): the tasks run on the CPU."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dask
import pytest
import torch
from distributed import Scheduler, SpecCluster, Worker, get_worker
from prefect_dask.client import PrefectDaskClient

from cstrack.errors import ConfigError
from flows.cluster import CPU, GPU, declared_resources, job_resources, needs_gpu, placed, placement
from flows.dispatch import job_for
from flows.params import TrackAllParams
from tasks import track as track_module
from tasks.records import JobModel, SequenceRef, TrackJob, TrackMode

# (device, mode, appearance) -> asks for a GPU worker
CASES = {
    ("cuda", "private", True): True,
    ("cuda:1", "private", False): True,  # private: the detector runs whatever appearance says
    ("auto", "cached", True): True,  # cached: fills a missing cache with the model first
    ("cuda", "gt", True): True,  # appearance embeddings need the model
    ("cuda", "public", True): True,
    ("cuda", "gt", False): False,  # no model at all
    ("cuda", "public", False): False,
    ("cpu", "private", True): False,  # the model runs on the CPU
    ("cpu", "cached", True): False,
    ("cuda", "replay", False): False,  # tune's trials replay cached outputs
    ("cuda", "evaluate", False): False,
}


def test_which_jobs_need_a_gpu() -> None:
    assert {case: needs_gpu(*case) for case in CASES} == CASES


def test_placement_never_asks_for_what_no_worker_has() -> None:
    assert placement(True, {GPU, CPU}) == {GPU: 1}
    assert placement(False, {GPU, CPU}) == {CPU: 1}
    assert placement(True, {CPU}) == {}  # no GPU worker: run anywhere rather than wait forever
    assert placement(False, {GPU}) == {}
    assert placement(True, set()) == placement(False, set()) == {}  # a LocalCluster declares nothing


def _where(_: object) -> str:
    return str(get_worker().name)


@pytest.fixture(scope="module")
def client() -> Iterator[PrefectDaskClient]:
    """One worker declaring GPU (no GPU behind it), one declaring CPU; in-process, one thread each;
    the client class Prefect's Dask task runner submits through."""
    workers = {name: {"cls": Worker, "options": {"nthreads": 1, "resources": res, "host": "127.0.0.1",
                                                 "dashboard": False}}
               for name, res in (("gpu", {GPU: 1}), ("cpu", {CPU: 1}))}
    scheduler = {"cls": Scheduler, "options": {"host": "127.0.0.1", "dashboard": False,
                                               "dashboard_address": "127.0.0.1:0"}}
    with SpecCluster(workers=workers, scheduler=scheduler) as cluster, PrefectDaskClient(cluster) as c:
        c.wait_for_workers(2, timeout=60)
        yield c


def test_the_gpu_worker_receives_exactly_the_tasks_that_ask_for_it(client: PrefectDaskClient) -> None:
    declared = declared_resources(client)
    assert declared == {GPU, CPU}
    futures = {}
    for rep in range(3):  # each case three times: placement, not luck
        for case in CASES:
            with placed(placement(needs_gpu(*case), declared)):
                futures[(case, rep)] = client.submit(_where, (case, rep), pure=False)
    ran_on = dict(zip(futures, client.gather(list(futures.values())), strict=True))
    on_gpu = {case for (case, _), worker in ran_on.items() if worker == "gpu"}
    assert on_gpu == {case for case, gpu in CASES.items() if gpu}
    assert set(ran_on.values()) == {"gpu", "cpu"}
    assert not dask.get_annotations()  # the annotation ends with its block


def _job(device: str, mode: TrackMode, uses_model: bool) -> TrackJob:
    model = JobModel.of(variant="cstrack-n", weights="coco", input_size=(320, 256), path="eager", conf_thres=0.5,
                        nms_thres=0.6, device=device)
    return TrackJob(mode=mode, uses_model=uses_model, model=model, results_root="/r")


def test_a_tracking_job_asks_by_its_models_device_and_mode() -> None:
    declared = {GPU, CPU}
    assert job_resources(_job("cuda:0", "private", True), declared) == {GPU: 1}
    assert job_resources(_job("cuda:1", "cached", True), declared) == {GPU: 1}
    assert job_resources(_job("cuda:0", "gt", True), declared) == {GPU: 1}  # appearance embeddings
    assert job_resources(_job("cuda:0", "gt", False), declared) == {CPU: 1}
    assert job_resources(_job("cpu", "private", True), declared) == {CPU: 1}
    assert job_resources(_job("cuda:0", "private", True), set()) == {}  # a LocalCluster: anywhere


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a host without CUDA")
def test_a_cpu_flow_host_sends_cuda_work_to_gpu_workers(head8: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The flow's host has no CUDA: ``model.device: cuda`` is kept (pinned to cuda:0, the GPU path)
    for the GPU workers, and a worker without CUDA fails the task in one line naming model.device."""
    params = TrackAllParams(datasets=[{"name": "pets"}], model={"weights": "coco", "device": "cuda"})
    job = job_for(params, params.datasets[0])  # no error on this CPU-only host
    assert (job.model.device, job.model.path) == ("cuda:0", "eager")
    assert job_resources(job, {GPU, CPU}) == {GPU: 1}
    monkeypatch.setattr(track_module._Progress, "__call__", lambda self, n: None)
    seq = SequenceRef(dataset="pets", split="train", name=head8.name, seq_dir=str(head8), frames=8, has_gt=True)
    with pytest.raises(ConfigError) as err:
        track_module.track_sequence_task.fn(seq, str(tmp_path / "out"), job)
    assert str(err.value) == "model.device: 'cuda:0' requested but CUDA is not available on this machine"
    assert not (tmp_path / "out" / f"{head8.name}.txt").exists()
