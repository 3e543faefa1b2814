"""The ``tune`` flow on a real Prefect server: caches and trials as Dask tasks on a LocalCluster;
the same seeded study as ``cstrack tune`` in one process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from catalog import store
from cstrack.cli import app
from tests.flows.harness import PrefectStack
from tests.flows.test_track_all_e2e import run_flow_cli

WEIGHTS = str(Path(__file__).resolve().parents[2] / "weights" / "cstrack-n_pets09.pt")


@pytest.mark.slow
def test_tune_flow_matches_the_cli(prefect_stack: PrefectStack, head8: Path, tmp_path: Path) -> None:
    params = {"sequences": [str(head8)], "study": "f", "trials": 2, "batch": 2,
              "model": {"weights": WEIGHTS, "input_size": [320, 256]},  # track-all's model parameters
              "results_root": str(tmp_path / "flow"), "cluster": {"local_workers": 2}}
    out = run_flow_cli(prefect_stack, "tune", params, tmp_path)
    assert out["protocol"] == "half" and out["trials"] == 2
    assert len(store.load("tune_trials", root=tmp_path / "flow")) == 4
    res = CliRunner().invoke(app, ["tune", str(head8), "--weights", WEIGHTS, "--size", "320x256", "--study", "f",
                                   "--trials", "2", "--batch", "2", "--results", str(tmp_path / "cli"), "--json",
                                   "--no-progress"])
    assert res.exit_code == 0, res.output
    cli = json.loads(res.stdout)
    assert {k: out[k] for k in cli} == cli  # Dask tasks or one process: the same study
    arts = prefect_stack.api("POST", "/artifacts/filter", json={"artifacts": {"key": {"any_": ["tune-f"]}}})
    assert arts and "validated on: PETS09-S2L1-head8_f5-8" in arts[0]["data"]
