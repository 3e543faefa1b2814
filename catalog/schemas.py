"""Parquet schemas of the results catalog, declared once.

Every table is a Hive-partitioned Parquet dataset ``ROOT/<table>/run_id=<id>/part-0.parquet``;
``run_id`` lives in the directory name (the partition), every other column in the file.  One
file per (table, run) makes replacing a run a single atomic rename (:mod:`catalog.store`).

Tables (``TABLES``):

- ``runs``: one row per run: what ran (tracker, variant, config JSON + hash, weights sha256,
  dataset, split, detection mode, evaluation preset), where (git commit + dirty flag, package
  versions, CPU model, cores, GPU, Python, platform), when (``started_at``/``ended_at``, UTC).
- ``sequence_metrics``: one row per evaluated sequence plus the ``COMBINED`` row: every metric of
  :data:`cstrack.eval.result.METRIC_FIELDS` (server vocabulary: HOTA, MOTA, IDF1, ...; ratios as
  fractions), ``fps`` and the mean per-frame milliseconds of each tracking stage.
- ``events``: the motmetrics event log (``MATCH``/``SWITCH``/``MISS``/``FP`` per frame).
- ``tracks``: the result rows themselves (frame, track id, tlwh box, confidence).
- ``train_steps``: training progress (epoch, step, losses, learning rate, throughput, time).
- ``tune_trials``: tuning studies (``run_id`` = ``tune-<study>``): one row per completed trial
  (parameters, objective, per-window and combined metrics) plus the leakage-guarded validation of
  the best and of the default parameters (``kind`` = ``val_best`` / ``val_default``).
- ``sequence_stats``: tracked sequences that have no ground truth (e.g. a team's own video clips):
  frames, tracking fps and stage timings, the source's frame rate, track and box counts and track
  lengths (frames per track id).
- ``cpu_calibration``: a fixed GEMM's GFLOP/s measured in the same run as the tracking, so that
  fps from different machines compare (nightly).
"""

from __future__ import annotations

import pyarrow as pa

from cstrack.errors import CSTrackError
from cstrack.eval.result import FLOAT_FIELDS, METRIC_FIELDS
from cstrack.timing import RENAMED, STAGES

PARTITION = "run_id"
TIMESTAMP = pa.timestamp("us", tz="UTC")


class SchemaError(CSTrackError, ValueError):
    """Rows that do not fit a catalog table (missing/unknown column, wrong type, null key)."""


def _f(name: str, typ: pa.DataType, nullable: bool = True) -> pa.Field:
    return pa.field(name, typ, nullable=nullable)


RUNS = pa.schema([
    _f("run_id", pa.string(), False),
    _f("flow_run_id", pa.string()),
    _f("tag", pa.string()),                       # e.g. "nightly", "adhoc"
    _f("source", pa.string(), False),             # "cstrack" (our tracker) or "external" (imported)
    _f("tracker", pa.string(), False),            # our variant name or the external tracker's name
    _f("label", pa.string()),                     # display name in reports
    _f("git_commit", pa.string()),
    _f("git_dirty", pa.bool_()),
    _f("config_json", pa.string(), False),        # canonical JSON (sorted keys)
    _f("config_hash", pa.string(), False),        # sha256 of config_json
    _f("variant", pa.string()),                   # jde-l, cstrack-l, cstrack-s, cstrack-n
    _f("weights_sha256", pa.string()),
    _f("dataset", pa.string(), False),            # MOT16, MOT17, MOT20, ...
    _f("split", pa.string()),                     # train, test, half-val, ...
    _f("detection_mode", pa.string()),            # private, public, gt
    _f("eval_preset", pa.string()),               # mot16, mot17, mot20, mot15, plain
    _f("results_uri", pa.string()),               # where the SEQ.txt files were read from
    _f("cpu_model", pa.string()),
    _f("cpu_cores", pa.int32()),
    _f("gpu", pa.string()),
    _f("python", pa.string()),
    _f("platform", pa.string()),
    _f("packages", pa.map_(pa.string(), pa.string())),
    _f("started_at", TIMESTAMP),
    _f("ended_at", TIMESTAMP),
])

SEQUENCE_METRICS = pa.schema(
    [_f("run_id", pa.string(), False), _f("sequence", pa.string(), False)]
    + [_f(m, pa.float64() if m in FLOAT_FIELDS else pa.int64(), False) for m in METRIC_FIELDS]
    + [_f("fps", pa.float64())]
    + [_f(f"{s}_ms", pa.float64()) for s in STAGES]
)

EVENTS = pa.schema([
    _f("run_id", pa.string(), False),
    _f("sequence", pa.string(), False),
    _f("frame", pa.int32(), False),
    _f("event", pa.string(), False),              # MATCH, SWITCH, MISS, FP
    _f("gt_id", pa.int64()),                      # null for FP
    _f("track_id", pa.int64()),                   # null for MISS
    _f("iou", pa.float64()),                      # null for MISS and FP
])

TRACKS = pa.schema([
    _f("run_id", pa.string(), False),
    _f("sequence", pa.string(), False),
    _f("frame", pa.int32(), False),
    _f("track_id", pa.int64(), False),
    _f("x", pa.float64(), False),                 # tlwh, frame pixels
    _f("y", pa.float64(), False),
    _f("w", pa.float64(), False),
    _f("h", pa.float64(), False),
    _f("conf", pa.float64(), False),
])

TRAIN_STEPS = pa.schema([
    _f("run_id", pa.string(), False),
    _f("epoch", pa.int32(), False),
    _f("step", pa.int64(), False),
    _f("loss_total", pa.float64()),
    _f("loss_box", pa.float64()),
    _f("loss_obj", pa.float64()),
    _f("loss_id", pa.float64()),
    _f("lr", pa.float64()),
    _f("images_per_s", pa.float64()),
    _f("time", TIMESTAMP),
])

TUNE_TRIALS = pa.schema([
    _f("run_id", pa.string(), False),             # tune-<study>
    _f("study", pa.string(), False),
    _f("kind", pa.string(), False),               # trial, val_best, val_default
    _f("trial", pa.int32()),                      # trial number (val_best: the best trial's; val_default: null)
    _f("preset", pa.string(), False),             # tracker preset whose search space was searched
    _f("objective", pa.string(), False),          # HOTA, MOTA, IDF1, DetA, AssA
    _f("value", pa.float64(), False),             # the objective (combined over the windows)
    _f("params_json", pa.string(), False),        # canonical JSON of the parameters
    _f("per_sequence_json", pa.string()),         # {window: {metric: value}}
    _f("windows", pa.string(), False),            # comma-separated windows scored (SEQ or SEQ_fA-B)
    _f("HOTA", pa.float64()),
    _f("MOTA", pa.float64()),
    _f("IDF1", pa.float64()),
    _f("IDSW", pa.int64()),
    _f("started_at", TIMESTAMP),
    _f("finished_at", TIMESTAMP),
])

SEQUENCE_STATS = pa.schema(
    [
        _f("run_id", pa.string(), False),
        _f("sequence", pa.string(), False),
        _f("frames", pa.int64(), False),
        _f("fps", pa.float64()),                  # tracking speed (frames over the loop's wall time)
        _f("source_fps", pa.float64()),           # the frame rate the tracker used (container / seqinfo)
        _f("tracks", pa.int64(), False),          # distinct track ids
        _f("boxes", pa.int64(), False),           # result rows
        _f("boxes_per_frame", pa.float64(), False),
        _f("track_len_mean", pa.float64()),       # frames per track id; null without tracks
        _f("track_len_median", pa.float64()),
        _f("track_len_max", pa.int64()),
    ]
    + [_f(f"{s}_ms", pa.float64()) for s in STAGES]
)

CPU_CALIBRATION = pa.schema([
    _f("run_id", pa.string(), False),             # the catalog run the calibration goes with
    _f("gflops", pa.float64(), False),            # best-of-N fixed float32 GEMM throughput
    _f("gemm_n", pa.int32(), False),              # matrix side of the GEMM
    _f("threads", pa.int32()),                    # torch threads used
    _f("host", pa.string()),
    _f("measured_at", TIMESTAMP),
])

TABLES: dict[str, pa.Schema] = {
    "runs": RUNS,
    "sequence_metrics": SEQUENCE_METRICS,
    "events": EVENTS,
    "tracks": TRACKS,
    "train_steps": TRAIN_STEPS,
    "tune_trials": TUNE_TRIALS,
    "cpu_calibration": CPU_CALIBRATION,
    "sequence_stats": SEQUENCE_STATS,
}

# Row order of ``catalog.store.load`` (stable sort; events keep motmetrics' order within a frame).
SORT_KEYS: dict[str, tuple[str, ...]] = {
    "runs": ("run_id",),
    "sequence_metrics": ("run_id", "sequence"),
    "events": ("run_id", "sequence", "frame"),
    "tracks": ("run_id", "sequence", "frame", "track_id"),
    "train_steps": ("run_id", "epoch", "step"),
    "tune_trials": ("run_id", "kind", "trial"),
    "cpu_calibration": ("run_id",),
    "sequence_stats": ("run_id", "sequence"),
}

# Columns renamed since partitions were first written: {table: {old name: name now}}.  The store
# reads an old partition's column under its name now (the frame-reading stage was ``decode``).
RENAMED_COLUMNS: dict[str, dict[str, str]] = {
    table: {f"{old}_ms": f"{new}_ms" for old, new in RENAMED.items()}
    for table in ("sequence_metrics", "sequence_stats")
}


def schema(table: str) -> pa.Schema:
    """The schema of ``table``; :class:`SchemaError` naming the known tables otherwise."""
    if table not in TABLES:
        raise SchemaError(f"unknown catalog table {table!r}; tables: {', '.join(TABLES)}")
    return TABLES[table]


def file_schema(table: str) -> pa.Schema:
    """What a partition file holds: the table schema without the partition column."""
    s = schema(table)
    return s.remove(s.get_field_index(PARTITION))
