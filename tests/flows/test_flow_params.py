"""The flows' parameter models: bad values fail at the edge with the field named."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from flows.params import (
    DatasetSelection,
    EvaluateParams,
    ModelSpec,
    NightlyParams,
    Thresholds,
    TrackAllParams,
    default_eval_preset,
)


def _error_locs(exc: ValidationError) -> list[str]:
    return [".".join(str(p) for p in e["loc"]) for e in exc.errors()]


def test_defaults_and_derived_values() -> None:
    p = TrackAllParams(datasets=[{"name": "pets09-s2l1"}, {"name": "synth-mini", "mode": "gt"},
                                 {"name": "mot17-mini", "mode": "public", "appearance": True}])
    assert p.model.variant == "cstrack-n" and p.model.input_size is None  # the checkpoint's (flows.inference)
    assert p.model.path == "auto" and p.tracker_preset is None
    assert [p.mode_of(d) for d in p.datasets] == ["private", "gt", "public"]
    # private always runs the model; public/gt only for embeddings
    assert [p.appearance_of(d) for d in p.datasets] == [True, False, True]
    assert p.needs_model()
    assert [d.preset for d in p.datasets] == ["mot15", "plain", "mot17"]
    assert p.catalog == "results"
    only_gt = TrackAllParams(datasets=[{"name": "synth", "mode": "gt"}])
    assert not only_gt.needs_model()


@pytest.mark.parametrize(
    ("name", "preset"),
    [("MOT17-mini", "mot17"), ("mot20", "mot20"), ("PETS09-S2L1", "mot15"), ("mot15-x", "mot15"), ("synth", "plain")],
)
def test_default_eval_preset(name: str, preset: str) -> None:
    assert default_eval_preset(name) == preset


@pytest.mark.parametrize(
    ("data", "loc", "words"),
    [
        ({"datasets": []}, "datasets", "at least 1"),
        ({"datasets": [{"name": "../etc"}]}, "datasets.0.name", "invalid dataset name"),
        ({"datasets": [{"name": "a", "mode": "magic"}]}, "datasets.0.mode", "private"),
        ({"datasets": [{"name": "a", "eval_preset": "mot99"}]}, "datasets.0.eval_preset", "unknown evaluation preset"),
        ({"datasets": [{"name": "a", "sequences": ["x/y"]}]}, "datasets.0.sequences", "invalid sequence"),
        ({"datasets": [{"name": "a", "splits": []}]}, "datasets.0.splits", "empty list"),
        ({"datasets": [{"name": "a"}], "model": {"input_size": [100, 64]}}, "model.input_size", "multiples of 32"),
        ({"datasets": [{"name": "a"}], "model": {"variant": "yolo9"}}, "model.variant", "unknown variant"),
        ({"datasets": [{"name": "a"}], "tracker_preset": "fast"}, "tracker_preset", "unknown tracker preset"),
        ({"datasets": [{"name": "a"}], "cluster": {"dask_address": "localhost:8786"}}, "cluster.dask_address",
         "tcp://"),
        ({"datasets": [{"name": "a"}], "cluster": {"local_workers": 0}}, "cluster.local_workers", "greater than"),
        ({"datasets": [{"name": "a"}], "run_name": "sequence_metrics"}, "run_name", "catalog table"),
        ({"datasets": [{"name": "a"}], "unknown": 1}, "unknown", "Extra inputs"),
        ({"datasets": [{"name": "a"}, {"name": "a"}]}, "", "selected twice"),
    ],
)
def test_track_all_rejects_bad_values_naming_the_field(data: dict, loc: str, words: str) -> None:
    with pytest.raises(ValidationError) as info:
        TrackAllParams.model_validate(data)
    assert loc in _error_locs(info.value) or (loc == "" and info.value.errors()[0]["loc"] == ())
    assert words in str(info.value)


def test_dask_address_empty_string_means_local() -> None:
    p = TrackAllParams.model_validate({"datasets": [{"name": "a"}], "cluster": {"dask_address": ""}})
    assert p.cluster.dask_address is None


def test_models_are_frozen_and_json_round_trip() -> None:
    p = TrackAllParams(datasets=[DatasetSelection(name="a", sequences=["MOT17-*"])], model=ModelSpec(weights=None))
    with pytest.raises(ValidationError):
        p.run_name = "x"  # type: ignore[misc]
    assert TrackAllParams.model_validate_json(p.model_dump_json()) == p


def test_thresholds_must_be_ordered() -> None:
    with pytest.raises(ValidationError, match="metric_fail must be >= metric_warn"):
        Thresholds(metric_warn=0.1, metric_fail=0.01)
    with pytest.raises(ValidationError, match="fps_fail must be >= fps_warn"):
        Thresholds(fps_warn=0.5, fps_fail=0.2)


def test_nightly_and_evaluate_params() -> None:
    n = NightlyParams(track={"datasets": [{"name": "synth-mini", "mode": "gt"}]})
    assert n.prepare == ["pets09-s2l1", "mot17-mini", "synth-mini"] and n.thresholds.metrics == ["HOTA", "MOTA", "IDF1"]
    with pytest.raises(ValidationError) as info:
        EvaluateParams(gt_root="g", results="r", dataset="MOT17", preset="nope")
    assert _error_locs(info.value) == ["preset"]


def test_every_deployment_has_valid_parameters() -> None:
    """Each deployment in flows/prefect.yaml validates against its flow's parameter model, the
    files it names exist in the repository, and a train config loads as a TrainConfig."""
    from pathlib import Path

    import yaml

    from cstrack.train.config import load_train_config
    from flows.params import TrainParams

    repo = Path(__file__).resolve().parents[2]
    doc = yaml.safe_load((repo / "flows" / "prefect.yaml").read_text())
    models = {"flows.track_all.track_all": TrackAllParams, "flows.nightly.nightly": NightlyParams,
              "flows.train.train": TrainParams}
    seen = set()
    for dep in doc["deployments"]:
        model = models[dep["entrypoint"]]
        params = model.model_validate(dep["parameters"]["params"])
        seen.add(dep["entrypoint"])
        track = params.track if isinstance(params, NightlyParams) else params
        if isinstance(track, TrackAllParams) and track.model.weights not in (None, "coco"):
            assert (repo / track.model.weights).is_file(), track.model.weights
        if isinstance(params, TrainParams):
            cfg = load_train_config(repo / params.config)
            assert cfg.model.variant == "cstrack-n" and cfg.init.kind == "coco"
    assert seen == set(models)


def test_job_carries_thread_and_read_ahead_settings() -> None:
    from flows.dispatch import job_for
    from flows.params import ClusterSpec

    p = TrackAllParams(datasets=[{"name": "pets09-s2l1"}], cluster={"torch_threads": 1, "prefetch": 0})
    job = job_for(p, p.datasets[0])
    assert (job.torch_threads, job.prefetch, job.mode) == (1, 0, "private")
    assert job_for(TrackAllParams(datasets=[{"name": "x"}]), DatasetSelection(name="x")).prefetch == 2
    with pytest.raises(ValidationError) as e:
        ClusterSpec(prefetch=-1)
    assert _error_locs(e.value) == ["prefetch"]
