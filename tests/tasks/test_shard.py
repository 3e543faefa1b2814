"""Shards of short sequences (tasks/shard.py): which sequences share a task."""

from __future__ import annotations

from tasks.records import SequenceRef
from tasks.shard import plan_shards


def _seq(name: str, frames: int) -> SequenceRef:
    return SequenceRef(dataset="d", split="train", name=name, seq_dir=f"/data/{name}", frames=frames)


def test_short_sequences_fill_shards_of_at_least_the_minimum_in_order() -> None:
    seqs = [_seq("LONG", 500), _seq("VIDEO", 0), *(_seq(f"S{i}", 20) for i in range(7))]
    alone, shards = plan_shards(seqs, 50)
    assert [s.name for s in alone] == ["LONG", "VIDEO"]  # long enough, or of unknown length
    # 20 + 20 + 20 >= 50 closes a shard; the last one holds what is left
    assert [[s.name for s in sh] for sh in shards] == [["S0", "S1", "S2"], ["S3", "S4", "S5"], ["S6"]]
    assert sorted([s.name for sh in shards for s in sh] + ["LONG", "VIDEO"]) == sorted(s.name for s in seqs)


def test_zero_means_a_task_per_sequence() -> None:
    seqs = [_seq(f"S{i}", 20) for i in range(3)]
    assert plan_shards(seqs, 0) == (seqs, [])


def test_task_count_is_bounded_by_frames_not_sequences() -> None:
    seqs = [_seq(f"S{i:04d}", 20) for i in range(5000)]
    alone, shards = plan_shards(seqs, 1000)
    assert alone == [] and len(shards) == 100 and all(len(sh) == 50 for sh in shards)


def test_a_shard_isolates_failures_caches_and_scores_each_sequence(tmp_path, monkeypatch) -> None:
    """Two sequences in one shard: the one with a malformed gt line fails alone (file and line
    named), the other is tracked and scored; run again it is a cache hit (same record, scored
    again), and with its result deleted it is tracked again."""
    import logging

    import prefect.logging

    from cstrack.data.synthetic import SynthConfig, generate
    from cstrack.eval import evaluate
    from flows.dispatch import job_for
    from flows.params import TrackAllParams
    from tasks.data import select_sequences
    from tasks.shard import track_shard_task

    monkeypatch.setattr(prefect.logging, "get_run_logger", lambda: logging.getLogger("test"))  # no run context
    data, results = tmp_path / "data", tmp_path / "results"
    generate(data / "d" / "images" / "train", SynthConfig(sequences=2, length=6, width=96, height=96, objects=2, seed=4))
    bad = data / "d" / "images" / "train" / "SYNTH-02" / "gt" / "gt.txt"
    bad_line = len(bad.read_text().splitlines()) + 1
    bad.write_text(bad.read_text() + "7,1,x,0,5,5,1,1,1\n")
    params = TrackAllParams(data_root=str(data), results_root=str(results), mode="gt", datasets=[{"name": "d"}],
                            model={"weights": "coco"})
    seqs = select_sequences.fn(str(data), params.datasets)
    jobs = {"d": job_for(params, params.datasets[0])}
    run_dir = results / "r"

    def run() -> dict[str, object]:
        items = track_shard_task.fn(seqs, str(run_dir), jobs, 0, {"d": "plain"}, True, "test")
        return {i.seq.name: i for i in items}

    first = run()
    good, failed = first["SYNTH-01"], first["SYNTH-02"]
    assert failed.status == "failed" and f"gt.txt:{bad_line}:" in (failed.error or "") and failed.attempts == 1
    assert good.status == "tracked" and good.record is not None and good.scored is not None
    want = evaluate(data / "d" / "images" / "train", run_dir / "d" / "train", ["SYNTH-01"], "plain")
    assert good.scored.score is not None and good.scored.score.raw["CLEAR"]["CLR_TP"] == want["SYNTH-01"]["TP"] > 0
    assert len(good.scored.events) == want["SYNTH-01"]["gt_dets"] + want["SYNTH-01"]["FP"]  # one row per gt / FP box
    again = run()["SYNTH-01"]
    assert again.status == "cached" and again.record == good.record and again.scored is not None
    (run_dir / "d" / "train" / "SYNTH-01.txt").unlink()
    redo = run()["SYNTH-01"]
    assert redo.status == "tracked" and (run_dir / "d" / "train" / "SYNTH-01.txt").is_file()
