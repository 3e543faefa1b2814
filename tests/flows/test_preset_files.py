"""A tuned preset file works in track-all, nightly and tune as in ``cstrack track --preset FILE``:
accepted (made absolute, checked now), its detection threshold applied unless the run sets one,
its content in the cache key, its name in the catalog."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from cstrack.tracker import preset
from cstrack.tracker.presetfile import write_preset_file
from flows.dispatch import job_for
from flows.params import NightlyParams, TrackAllParams, TuneParams
from flows.recording import catalog_config, preset_label
from tasks.cachekeys import tracker_fingerprint


@pytest.fixture
def tuned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return write_preset_file(tmp_path / "best_preset.yaml", "default", {"track_buffer": 45, "det_thresh": 0.42}, 0.35)


def test_track_all_takes_a_preset_file(tuned: Path) -> None:
    p = TrackAllParams(datasets=[{"name": "synth"}], tracker_preset="best_preset.yaml")  # relative to the cwd
    assert p.tracker_preset == str(tuned.resolve())
    job = job_for(p, p.datasets[0])
    assert job.tracker_preset == str(tuned.resolve())
    assert preset(job.tracker_preset).track_buffer == 45 and job.model.conf_thres == 0.35  # the file's threshold
    own = TrackAllParams(datasets=[{"name": "synth"}], tracker_preset=str(tuned), model={"conf_thres": 0.6})
    assert job_for(own, own.datasets[0]).model.conf_thres == 0.6  # the run's value wins
    cfg = catalog_config(p, p.datasets[0])
    assert cfg["tracker"]["track_buffer"] == 45 and preset_label(job.tracker_preset) == "best_preset"
    # the file's content is in the cache key (not its name)
    before = tracker_fingerprint(job.tracker_preset)
    write_preset_file(tuned, "default", {"track_buffer": 46}, 0.35)
    assert tracker_fingerprint(job.tracker_preset) != before


def test_nightly_and_tune_take_it_and_a_bad_file_is_refused_naming_it(tuned: Path, tmp_path: Path) -> None:
    n = NightlyParams(track={"datasets": [{"name": "synth"}], "tracker_preset": str(tuned)})
    assert n.track.tracker_preset == str(tuned)
    t = TuneParams(sequences=["x"], study="s", trials=1, tracker_preset=str(tuned))
    assert t.tracker_preset == str(tuned) and TuneParams(sequences=["x"], study="s", trials=1).tracker_preset is None
    bad = tmp_path / "bad.yaml"
    bad.write_text("base: default\ntracker:\n  no_such_field: 1\n")
    with pytest.raises(ValidationError, match=r"tracker_preset[\s\S]*bad.yaml"):
        TrackAllParams(datasets=[{"name": "synth"}], tracker_preset=str(bad))
    with pytest.raises(ValidationError, match="sots"):  # the built-in names are listed
        TrackAllParams(datasets=[{"name": "synth"}], tracker_preset="nonsense")
    with pytest.raises(ValidationError, match="no such preset file"):
        TrackAllParams(datasets=[{"name": "synth"}], tracker_preset="missing.yaml")


def test_extra_datasets_add_to_the_benchmark_list() -> None:
    """How a dataset joins a deployment's list without restating it (docs/datasets.md)."""
    p = TrackAllParams(datasets=[{"name": "pets09-s2l1"}],
                       extra_datasets=[{"name": "mot17", "splits": ["train"], "detector_copies": "once"}])
    assert [d.name for d in p.datasets] == ["pets09-s2l1", "mot17"] and p.extra_datasets == []
    assert p.datasets[1].detector_copies == "once"
    assert TrackAllParams.model_validate_json(p.model_dump_json()) == p  # round trip: added once
    n = NightlyParams(track={"datasets": [{"name": "pets09-s2l1"}], "extra_datasets": [{"name": "mot17"}]})
    assert [d.name for d in n.track.datasets] == ["pets09-s2l1", "mot17"]
    with pytest.raises(ValidationError, match="selected twice"):
        TrackAllParams(datasets=[{"name": "mot17"}], extra_datasets=[{"name": "mot17"}])
