"""docker/compose.yaml and docker/Dockerfile, checked without a Docker engine: every service runs a
real entry point of this environment, with the command templates the end-to-end tests start
(stack.commands), wired to the other services' names, ports and volumes."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from stack import commands as svc
from tests.flows import harness
from tests.flows.harness import BIN, REPO

COMPOSE = REPO / "docker" / "compose.yaml"
DOCKERFILE = REPO / "docker" / "Dockerfile"
# compose service -> the template its command must instantiate
EXPECTED = {
    "prefect-server": svc.PREFECT_SERVER,
    "prefect-worker": svc.PREFECT_WORKER,
    "deploy": svc.DEPLOY,
    "dask-scheduler": svc.DASK_SCHEDULER,
    "dask-worker-1": svc.DASK_WORKER,
    "dask-worker-2": svc.DASK_WORKER,
    "dask-gpu-worker-1": svc.DASK_GPU_WORKER,
    "object-store": svc.OBJECT_STORE,
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def _match(service: str, compose: dict[str, Any]) -> dict[str, str]:
    command = compose["services"][service]["command"]
    assert isinstance(command, list), f"{service}: command must be an exec-form list"
    values = EXPECTED[service].match(command)
    assert values is not None, f"{service}: {command} is not an instance of {EXPECTED[service].argv}"
    return values


def test_every_service_runs_a_template_of_flows_services(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"postgres", *EXPECTED}
    for service in EXPECTED:
        _match(service, compose)
    # and those templates are the ones the harness starts (the same objects, not copies)
    assert harness.PREFECT_SERVER is svc.PREFECT_SERVER and harness.PREFECT_WORKER is svc.PREFECT_WORKER
    assert harness.DASK_SCHEDULER is svc.DASK_SCHEDULER and harness.DASK_WORKER is svc.DASK_WORKER
    e2e = (REPO / "tests" / "flows" / "test_track_all_e2e.py").read_text()
    assert "DEPLOY.render()" in e2e


@pytest.mark.parametrize("service", sorted(EXPECTED))
def test_service_command_is_a_real_entry_point(compose: dict[str, Any], service: str) -> None:
    """The console script exists in this environment and accepts the sub-command (``--help`` exits 0;
    for make, the target exists: ``make -n``)."""
    argv = compose["services"][service]["command"]
    if argv[0] == "make":
        assert shutil.which("make"), "make not installed"
        out = subprocess.run(["make", "-n", *argv[1:]], cwd=REPO, capture_output=True, text=True, timeout=60,
                             check=False)
        assert out.returncode == 0, out.stderr
        assert "deploy --all --prefect-file flows/prefect.yaml" in out.stdout
        return
    exe = BIN / argv[0]
    assert exe.is_file(), f"{argv[0]} is not a console script of this environment"
    if argv[0] == "weed":  # Go flags: `weed help server` lists them (`--help` exits 2)
        out = subprocess.run([str(exe), "help", argv[1]], capture_output=True, text=True, timeout=60, check=False)
        assert out.returncode == 0, out.stderr
        for flag in (a.split("=", 1)[0] for a in argv[2:]):
            assert f"  {flag}" in out.stdout + out.stderr, f"{service}: weed {argv[1]} has no option {flag}"
        return
    sub = [a for a in argv[1:3] if not a.startswith(("-", "tcp://"))]
    out = subprocess.run([str(exe), *sub, "--help"], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, f"{argv[0]} {' '.join(sub)} --help: {out.stderr[-2000:]}"
    for flag in (a for a in argv[1:] if a.startswith("--")):
        assert flag in out.stdout, f"{service}: {argv[0]} {' '.join(sub)} has no option {flag}"


def test_services_are_wired_to_each_other(compose: dict[str, Any]) -> None:
    services = compose["services"]
    server = _match("prefect-server", compose)
    sched = _match("dask-scheduler", compose)
    api = f"http://prefect-server:{server['port']}/api"
    address = f"tcp://dask-scheduler:{sched['port']}"
    workers = ("dask-worker-1", "dask-worker-2", "dask-gpu-worker-1")
    for name in ("prefect-worker", "deploy", *workers):
        env = services[name]["environment"]
        assert env["PREFECT_API_URL"] == api, name
        assert env["CSTRACK_DASK_ADDRESS"] == address, name
    for name in workers:
        w = _match(name, compose)
        assert w["scheduler"] == address and w["host"] == services[name]["hostname"]
    assert len({_match(n, compose)["name"] for n in workers}) == 3
    # the GPU worker: started only with --profile gpu, on the CUDA image, one reserved device that
    # its CUDA_VISIBLE_DEVICES names; the CPU workers reserve none
    gpu = services["dask-gpu-worker-1"]
    assert gpu["profiles"] == ["gpu"] and gpu["image"] == "cstrack:cuda"
    assert "cu1" in gpu["build"]["args"]["TORCH_INDEX_URL"] and gpu["build"]["args"]["BASE_IMAGE"].startswith("nvidia/cuda")
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert gpu["environment"]["CUDA_VISIBLE_DEVICES"] == ",".join(device["device_ids"]) == "0"
    assert all("deploy" not in services[n] and "profiles" not in services[n] for n in workers[:2])
    # the worker serves the pool the deployments use
    prefect_yaml = yaml.safe_load((REPO / "flows" / "prefect.yaml").read_text())
    pools = {d["work_pool"]["name"] for d in prefect_yaml["deployments"] if d["name"] == "nightly"}
    assert pools == {_match("prefect-worker", compose)["pool"]}
    # Prefect on Postgres, with the credentials the postgres service is created with
    pg = services["postgres"]["environment"]
    url = services["prefect-server"]["environment"]["PREFECT_API_DATABASE_CONNECTION_URL"]
    assert url == f"postgresql+asyncpg://{pg['POSTGRES_USER']}:{pg['POSTGRES_PASSWORD']}@postgres:5432/{pg['POSTGRES_DB']}"
    # the flow runs (prefect-worker) and the tracking tasks (dask workers) see the same volumes at
    # the same paths: results written by a Dask worker are read by the flow run for evaluation
    mounts = {n: set(services[n]["volumes"]) for n in ("prefect-worker", *workers)}
    assert mounts["prefect-worker"] == mounts["dask-worker-1"] == mounts["dask-worker-2"] == mounts["dask-gpu-worker-1"]
    assert {"results:/opt/cstrack/results", "data:/opt/cstrack/data"} <= mounts["prefect-worker"]
    assert {"pgdata", "data", "results"} <= set(compose["volumes"])
    # the object store: its keys only in secret files, the clients pointed at it and at those files
    store = _match("object-store", compose)
    assert store["config"] == "/run/secrets/s3-identities" and "s3-identities" in services["object-store"]["secrets"]
    for name in ("prefect-worker", *workers):
        env = services[name]["environment"]
        assert env["AWS_ENDPOINT_URL"] == f"http://{store['host']}:{store['s3']}", name
        assert env["AWS_SHARED_CREDENTIALS_FILE"] == "/run/secrets/aws-credentials" and "aws-credentials" in services[name]["secrets"]
        assert "AWS_SECRET_ACCESS_KEY" not in env
    # published ports on the host's loopback only
    for name, s in services.items():
        for p in s.get("ports", []):
            assert str(p).startswith("127.0.0.1:"), f"{name}: {p}"


def test_dockerfile_takes_the_base_image_as_a_build_argument(compose: dict[str, Any]) -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11\S*$", text, re.M)
    assert re.search(r"^FROM \$\{BASE_IMAGE\}$", text, re.M)
    assert re.search(r"^ARG TORCH_INDEX_URL=https://download\.pytorch\.org/whl/cpu$", text, re.M)
    build = compose["services"]["prefect-server"]["build"]
    assert build["dockerfile"] == "docker/Dockerfile" and (COMPOSE.parent / build["context"]).resolve() == REPO
    assert "BASE_IMAGE" in build["args"]
    # everything the image copies is in the build context
    for src in re.findall(r"^COPY (\S+)", text, re.M):
        assert any(Path(REPO).glob(src.rstrip("*") + "*")) or src == ".", src
