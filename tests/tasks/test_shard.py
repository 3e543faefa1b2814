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
