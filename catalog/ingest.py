"""Record an evaluation in the catalog: the run, its metrics, events and result rows.

:func:`ingest_evaluation` writes, for one run, ``sequence_metrics`` (every sequence plus
``COMBINED``), ``events`` (motmetrics log), ``tracks`` (the result rows) and, last, the ``runs``
row.  Each table's partition of the run is replaced atomically, so ingesting the same run again
replaces it instead of adding rows; a table not given this time (e.g. no events) is emptied for
the run rather than left stale.  ``train_steps`` is left alone (training writes it).

**Every flow run is an observation** (issue 28): the flows give each run of theirs its own run id,
so a night whose results did not change still adds its ``runs`` row.  What did not change is not
stored twice: the per-sequence rows of ``sequence_metrics`` / ``sequence_stats`` are small and
*copied* under the new run id (so every join on ``run_id`` keeps working), while the big ``tracks``
and ``events`` rows are *shared by reference*: a run whose ``results_hash`` equals an earlier run's
writes none and names that run in ``results_run_id`` (:func:`results_run` resolves it).

:func:`ingest_tracking` records a run whose sequences have no ground truth: ``sequence_stats``
(counts, track lengths, fps), ``tracks`` and the ``runs`` row.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from catalog import store
from catalog.schemas import SchemaError
from cstrack.data.mot import read_results
from cstrack.data.names import canonical_dataset
from cstrack.eval.events import event_log
from cstrack.eval.prepare import PreparedSequence
from cstrack.eval.result import COMBINED, METRIC_FIELDS, EvalResult
from cstrack.fsutil import sha256_file, stable_hash
from cstrack.names import RULE as NAME_RULE
from cstrack.names import is_name
from cstrack.provenance import Provenance, collect
from cstrack.timing import RENAMED, STAGES, stage_ms

SOURCES = ("cstrack", "external")


@dataclass(frozen=True)
class RunInfo:
    """What a run was: ``source`` ``cstrack`` (ours) or ``external`` (imported results).

    ``config`` is any JSON-able mapping (model switches, tracker preset, ...): it is stored as
    canonical JSON with its sha256 and is what the ablation report labels runs by.
    """

    run_id: str
    dataset: str
    tracker: str
    source: str = "cstrack"
    label: str | None = None
    tag: str | None = None
    split: str | None = None
    variant: str | None = None
    detection_mode: str | None = None
    eval_preset: str | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    weights_sha256: str | None = None
    flow_run_id: str | None = None
    results_uri: str | None = None
    started_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    run_name: str | None = None
    run_group: str | None = None
    tracker_preset: str | None = None
    device: str | None = None
    device_name: str | None = None
    results_hash: str | None = None
    sequences_tracked: int | None = None
    sequences_cached: int | None = None

    def __post_init__(self) -> None:
        store.check_run_id(self.run_id)
        object.__setattr__(self, "dataset", canonical_dataset(self.dataset) if self.dataset else self.dataset)
        if self.source not in SOURCES:
            raise SchemaError(f"source: expected one of {SOURCES}, got {self.source!r}")
        for name in ("dataset", "tracker"):
            if not getattr(self, name):
                raise SchemaError(f"{name}: required")
        for name in ("dataset", "tag"):  # full-string names (a trailing newline is refused)
            value = getattr(self, name)
            if value is not None and not is_name(value):
                raise SchemaError(f"{name}: invalid name {value!r} ({NAME_RULE})")


def config_json(config: Mapping[str, Any]) -> str:
    """Canonical JSON of a config (sorted keys, no spaces); its sha256 is the config hash."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)


def default_label(info: RunInfo) -> str:
    """A label that tells runs apart: the given one, else (our runs) the variant, the tracker preset
    and the weights' short hash (``cstrack-n default 1a2b3c4d``), else the tracker's name."""
    if info.label:
        return info.label
    if info.source == "cstrack" and info.variant:
        parts = [info.variant, info.tracker_preset, (info.weights_sha256 or "")[:8] or None]
        return " ".join(p for p in parts if p)
    return info.tracker


def run_row(info: RunInfo, provenance: Provenance | None = None, results_run_id: str | None = None) -> dict[str, Any]:
    """The ``runs`` row of ``info`` with ``provenance`` (default: this process's); ``results_run_id``:
    the earlier run whose ``tracks``/``events`` this run shares (None: its own)."""
    prov = provenance if provenance is not None else collect()
    now = store.utc_now()
    return {
        "run_id": info.run_id,
        "flow_run_id": info.flow_run_id,
        "run_group": info.run_group,
        "run_name": info.run_name,
        "tag": info.tag,
        "source": info.source,
        "tracker": info.tracker,
        "label": default_label(info),
        "git_commit": prov.git_commit,
        "git_dirty": prov.git_dirty,
        "config_json": config_json(info.config),
        "config_hash": stable_hash(dict(info.config)),
        "variant": info.variant,
        "tracker_preset": info.tracker_preset,
        "weights_sha256": info.weights_sha256,
        "device": info.device,
        "device_name": info.device_name,
        "dataset": info.dataset,
        "split": info.split,
        "detection_mode": info.detection_mode,
        "eval_preset": info.eval_preset,
        "results_uri": info.results_uri,
        "results_hash": info.results_hash,
        "results_run_id": results_run_id,
        "sequences_tracked": info.sequences_tracked,
        "sequences_cached": info.sequences_cached,
        "cpu_model": prov.cpu_model or None,
        "cpu_cores": prov.cpu_cores or None,
        "gpu": prov.gpu,
        "python": prov.python or None,
        "platform": prov.platform or None,
        "packages": dict(prov.packages),
        "started_at": info.started_at or now,
        "ended_at": info.ended_at or now,
    }


@dataclass(frozen=True)
class SequenceTiming:
    """Speed of one tracked sequence: ``fps`` over the frame loop, mean ms per frame per stage."""

    frames: int | None = None
    fps: float | None = None
    ms: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def from_record(cls, rec: Mapping[str, Any]) -> SequenceTiming:
        """From a runner timing record ``{"frames", "fps", "ms": {stage: ms}}`` (``timing.json``);
        records written before the stage rename (``decode``) are read too (:func:`cstrack.timing.stage_ms`)."""
        names = [*STAGES, *RENAMED]
        ms = rec.get("ms") or {s: rec[f"{s}_ms"] for s in names if f"{s}_ms" in rec}
        return cls(rec.get("frames"), rec.get("fps"), stage_ms(ms))


def read_timings(results_dir: str | Path) -> dict[str, SequenceTiming]:
    """Timing records beside the results: ``timing.json`` (``{SEQ: record}``, written by
    ``cstrack track``) and ``SEQ.timing.json`` (one record, written by the track task)."""
    root = Path(results_dir)
    out: dict[str, SequenceTiming] = {}
    merged = root / "timing.json"
    if merged.is_file():
        for seq, rec in json.loads(merged.read_text(encoding="utf-8")).items():
            if isinstance(rec, Mapping):
                out[seq] = SequenceTiming.from_record(rec)
    for p in sorted(root.glob("*.timing.json")):
        rec = json.loads(p.read_text(encoding="utf-8"))
        if isinstance(rec, Mapping):
            out[str(rec.get("sequence") or p.name.removesuffix(".timing.json"))] = SequenceTiming.from_record(rec)
    return out


def _combined_timing(timings: Mapping[str, SequenceTiming], sequences: Sequence[str]) -> SequenceTiming | None:
    parts = [timings[s] for s in sequences if s in timings]
    if len(parts) != len(sequences) or not parts or any(not t.frames or not t.fps for t in parts):
        return None
    frames = sum(int(t.frames or 0) for t in parts)
    seconds = sum(int(t.frames or 0) / float(t.fps or 1.0) for t in parts)
    ms = {s: sum(t.ms.get(s, 0.0) * int(t.frames or 0) for t in parts) / frames
          for s in STAGES if all(s in t.ms for t in parts)}
    return SequenceTiming(frames, frames / seconds if seconds > 0 else None, ms)


def metric_rows(
    run_id: str, result: EvalResult, timings: Mapping[str, SequenceTiming] | None = None
) -> list[dict[str, Any]]:
    """``sequence_metrics`` rows: every sequence and ``COMBINED`` with fps and stage timings."""
    timings = dict(timings or {})
    combined = _combined_timing(timings, list(result.per_sequence))
    if combined is not None:
        timings[COMBINED] = combined
    rows = []
    for row in result.rows():
        seq = row["sequence"]
        t = timings.get(seq)
        rec: dict[str, Any] = {"run_id": run_id, "sequence": seq, **{m: row[m] for m in METRIC_FIELDS}}
        rec["fps"] = None if t is None or t.fps is None else float(t.fps)
        for s in STAGES:
            rec[f"{s}_ms"] = None if t is None or s not in t.ms else float(t.ms[s])
        rows.append(rec)
    return rows


def event_rows(prepared: Sequence[PreparedSequence]) -> pd.DataFrame:
    """The motmetrics event log of every prepared sequence (``events`` columns minus run_id)."""
    frames = [event_log(p) for p in prepared]
    if not frames:
        return pd.DataFrame(columns=["sequence", "frame", "event", "gt_id", "track_id", "iou"])
    return pd.concat(frames, ignore_index=True)


def track_rows(results_dir: str | Path, sequences: Sequence[str]) -> dict[str, np.ndarray]:
    """The rows of each ``SEQ.txt`` (``tracks`` columns minus run_id); missing files give no rows."""
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("sequence", "frame", "track_id", "x", "y", "w", "h", "conf")}
    for seq in sequences:
        path = Path(results_dir) / f"{seq}.txt"
        if not path.is_file():
            continue
        t = read_results(path)
        cols["sequence"].append(np.full(len(t), seq, dtype=object))
        cols["frame"].append(t.frame.astype(np.int32))
        cols["track_id"].append(t.id)
        for k, j in (("x", 0), ("y", 1), ("w", 2), ("h", 3)):
            cols[k].append(t.tlwh[:, j])
        cols["conf"].append(t.conf)
    empty = {"sequence": np.zeros(0, dtype=object), "frame": np.zeros(0, np.int32), "track_id": np.zeros(0, np.int64)}
    return {k: np.concatenate(v) if v else empty.get(k, np.zeros(0)) for k, v in cols.items()}


def results_fingerprint(results_dir: str | Path, sequences: Sequence[str]) -> str:
    """sha256 over the sequence names and result-file hashes (a stable run id ingredient)."""
    parts = {}
    for seq in sorted(sequences):
        p = Path(results_dir) / f"{seq}.txt"
        parts[seq] = sha256_file(p) if p.is_file() else None
    return stable_hash(parts)


def shared_results(root: str | Path | None, info: RunInfo) -> str | None:
    """The earlier run whose ``tracks``/``events`` rows ``info``'s would repeat: one with the same
    ``results_hash`` that holds its own rows; None when there is none (or no hash)."""
    if not info.results_hash:
        return None
    runs = store.load("runs", filters={"results_hash": info.results_hash}, root=root,
                      columns=["run_id", "results_run_id", "started_at"])
    own = runs[runs["results_run_id"].isna() & (runs["run_id"] != info.run_id)]
    if own.empty:
        return None
    have = set(store.run_ids("tracks", root)) | set(store.run_ids("events", root))
    own = own[own["run_id"].isin(list(have))].sort_values(["started_at", "run_id"])
    return None if own.empty else str(own.iloc[0]["run_id"])


def results_run(runs: pd.DataFrame, run_id: str) -> str:
    """The run whose ``tracks`` and ``events`` rows are ``run_id``'s (``runs``: the ``runs`` table)."""
    row = runs[runs["run_id"] == run_id]
    if row.empty or pd.isna(row.iloc[0]["results_run_id"]):
        return run_id
    return str(row.iloc[0]["results_run_id"])


def ingest_evaluation(
    root: str | Path | None,
    info: RunInfo,
    result: EvalResult,
    *,
    prepared: Sequence[PreparedSequence] | None = None,
    events: pd.DataFrame | None = None,
    results_dir: str | Path | None = None,
    timings: Mapping[str, SequenceTiming] | None = None,
    provenance: Provenance | None = None,
) -> dict[str, int]:
    """Write one evaluated run into the catalog at ``root``; returns rows written per table.

    ``prepared`` (from :func:`cstrack.eval.prepare`) gives the event log, or ``events`` gives it
    already computed (:func:`event_rows` of sequences scored elsewhere), ``results_dir`` the
    track rows and, unless ``timings`` is given, the timing records found there.  The tables are
    written as one :func:`catalog.store.transaction`: all of them or none.  A run whose
    ``results_hash`` an earlier run already recorded writes no ``tracks``/``events`` of its own
    (:func:`shared_results`; the counts say 0 for them).
    """
    rid = info.run_id
    if timings is None and results_dir is not None:
        timings = read_timings(results_dir)
    metrics = metric_rows(rid, result, timings)
    shared = shared_results(root, info)
    if shared is not None:
        events = event_rows([])
    elif events is None:
        events = event_rows(prepared or [])
    tracks = track_rows(results_dir, list(result.per_sequence)) if results_dir is not None and shared is None else {}
    with store.transaction(root) as tx:  # all four tables or none (issue 20)
        tx.write("sequence_metrics", metrics, run_id=rid)
        if shared is None:
            tx.write("events", events, run_id=rid)
        else:
            tx.delete("events", rid)
        if tracks:
            tx.write("tracks", tracks, run_id=rid)
        else:
            tx.delete("tracks", rid)
        tx.write("runs", [run_row(info, provenance, shared)], run_id=rid)
    return {"runs": 1, "sequence_metrics": len(metrics), "events": len(events),
            "tracks": len(tracks.get("frame", []))}


def stats_rows(run_id: str, results_dir: str | Path, sequences: Sequence[str],
               timings: Mapping[str, SequenceTiming] | None = None,
               frame_rates: Mapping[str, float | None] | None = None) -> list[dict[str, Any]]:
    """``sequence_stats`` rows of the result files ``results_dir/SEQ.txt`` (a missing file counts
    as no boxes; ``frames`` comes from the timing record, else the last frame with a box)."""
    timings, frame_rates = dict(timings or {}), dict(frame_rates or {})
    rows = []
    for seq in sequences:
        path = Path(results_dir) / f"{seq}.txt"
        t = read_results(path) if path.is_file() else None
        ids = t.id if t is not None else np.zeros(0, np.int64)
        timing = timings.get(seq)
        frames = int(timing.frames) if timing is not None and timing.frames else (
            int(t.frame.max()) if t is not None and len(t) else 0)
        lengths = np.unique(ids, return_counts=True)[1]
        row: dict[str, Any] = {
            "run_id": run_id, "sequence": seq, "frames": frames,
            "fps": None if timing is None or timing.fps is None else float(timing.fps),
            "source_fps": frame_rates.get(seq), "tracks": len(lengths), "boxes": len(ids),
            "boxes_per_frame": len(ids) / frames if frames else 0.0,
            "track_len_mean": float(lengths.mean()) if len(lengths) else None,
            "track_len_median": float(np.median(lengths)) if len(lengths) else None,
            "track_len_max": int(lengths.max()) if len(lengths) else None,
        }
        for s in STAGES:
            row[f"{s}_ms"] = None if timing is None or s not in timing.ms else float(timing.ms[s])
        rows.append(row)
    return rows


def ingest_tracking(
    root: str | Path | None,
    info: RunInfo,
    results_dir: str | Path,
    sequences: Sequence[str],
    *,
    timings: Mapping[str, SequenceTiming] | None = None,
    frame_rates: Mapping[str, float | None] | None = None,
    provenance: Provenance | None = None,
) -> dict[str, int]:
    """Write one run of sequences without ground truth into the catalog at ``root``:
    ``sequence_stats`` (:func:`stats_rows`), ``tracks`` and the ``runs`` row, as one transaction.
    Returns rows written per table."""
    rid = info.run_id
    if timings is None:
        timings = read_timings(results_dir)
    stats = stats_rows(rid, results_dir, sequences, timings, frame_rates)
    shared = shared_results(root, info)
    tracks = track_rows(results_dir, sequences) if shared is None else {"frame": np.zeros(0, np.int32)}
    with store.transaction(root) as tx:
        tx.write("sequence_stats", stats, run_id=rid)
        if shared is None:
            tx.write("tracks", tracks, run_id=rid)
        else:
            tx.delete("tracks", rid)
        tx.delete("sequence_metrics", rid)
        tx.delete("events", rid)
        tx.write("runs", [run_row(info, provenance, shared)], run_id=rid)
    return {"sequence_stats": len(stats), "tracks": len(tracks["frame"]), "runs": 1}
