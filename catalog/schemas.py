"""Parquet schemas of the results catalog, declared once.

Every table is a Hive-partitioned Parquet dataset ``ROOT/<table>/run_id=<id>/part-0.parquet``;
``run_id`` lives in the directory name (the partition), every other column in the file.  One
file per (table, run) makes replacing a run a single atomic rename (:mod:`catalog.store`).

Tables (``TABLES``):

- ``runs``: one row per run: what ran (tracker, variant, tracker preset, device and its hardware
  name, config JSON + hash, weights sha256, dataset, split, detection mode, evaluation preset),
  where (git commit + dirty flag, package versions, CPU model, cores, GPU, Python, platform), when (``started_at``/
  ``ended_at``, UTC), by which flow run (``flow_run_id``, ``run_group``, ``run_name``, sequences
  tracked vs cached).  Every flow run adds its rows; ``results_run_id`` names the run whose
  ``tracks``/``events`` an unchanged run shares (:mod:`catalog.ingest`).
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

from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa

from cstrack.data.names import canonical_dataset
from cstrack.errors import CSTrackError
from cstrack.eval.result import FLOAT_FIELDS, METRIC_FIELDS
from cstrack.timing import RENAMED, STAGES

PARTITION = "run_id"
TIMESTAMP = pa.timestamp("us", tz="UTC")


class SchemaError(CSTrackError, ValueError):
    """Rows that do not fit a catalog table (missing/unknown column, wrong type, null key)."""


@dataclass(frozen=True)
class Column:
    """One column: its Arrow type, whether it may be null, what it means and its unit (``""``: none).

    The meanings and units are the schema's documentation: ``docs/catalog.md``'s column lists are
    generated from them (:func:`columns_markdown`; a test fails when the two disagree)."""

    name: str
    type: pa.DataType
    nullable: bool = True
    meaning: str = ""
    unit: str = ""

    def field(self) -> pa.Field:
        return pa.field(self.name, self.type, nullable=self.nullable)


# Every ratio in the catalog is a FRACTION (0.745, not 74.5 %); the report's tables and plots show
# percentages and say so in their headers.
FRACTION = "fraction (0-1)"
COLUMNS: dict[str, tuple[Column, ...]] = {}


def _table(name: str, columns: list[Column]) -> pa.Schema:
    COLUMNS[name] = tuple(columns)
    return pa.schema([c.field() for c in columns])


def _c(name: str, typ: pa.DataType, nullable: bool = True, meaning: str = "", unit: str = "") -> Column:
    return Column(name, typ, nullable, meaning, unit)


_RUN_ID = _c("run_id", pa.string(), False, "the catalog run (the partition folder `run_id=<id>`)")

RUNS = _table("runs", [
    _RUN_ID,
    _c("flow_run_id", pa.string(), meaning="Prefect flow run that recorded the run (null outside Prefect)"),
    _c("run_group", pa.string(), meaning="the catalog runs recorded by one flow run share it (the top-level "
       "flow run: a nightly's track-all and calibration runs have the nightly's)"),
    _c("run_name", pa.string(), meaning="the flow's `run_name` parameter (results folder name)"),
    _c("tag", pa.string(), meaning="`nightly`, `adhoc`, `demo`, ... (what the flow was run for)"),
    _c("source", pa.string(), False, "`cstrack` (our tracker) or `external` (imported results)"),
    _c("tracker", pa.string(), False, "our variant name or the external tracker's name"),
    _c("label", pa.string(), meaning="display name in reports (default: variant, tracker preset and the weights' "
       "short hash, so runs with different settings read differently)"),
    _c("git_commit", pa.string(), meaning="commit of the code that recorded the run"),
    _c("git_dirty", pa.bool_(), meaning="the work tree had uncommitted changes"),
    _c("config_json", pa.string(), False, "the run's effective configuration, canonical JSON (sorted keys)"),
    _c("config_hash", pa.string(), False, "sha256 of `config_json`", "hex"),
    _c("variant", pa.string(), meaning="model variant: jde-l, cstrack-l, cstrack-s, cstrack-n"),
    _c("tracker_preset", pa.string(), meaning="tracker preset: a built-in name (default, original, sots, ...) "
       "or a preset file's name"),
    _c("weights_sha256", pa.string(), meaning="sha256 of the checkpoint file", unit="hex"),
    _c("device", pa.string(), meaning="where the network ran (`cpu`, `cuda:0`, ...)"),
    _c("device_name", pa.string(), meaning="the GPU model or CPU model the network ran on (distinct values "
       "comma-joined when the run's workers differ); null when no model ran"),
    _c("dataset", pa.string(), False, "benchmark as the MOTChallenge server spells it (MOT16, MOT17, MOT20; "
       "other registry names as they are)"),
    _c("split", pa.string(), meaning="train, test, half-val, ..."),
    _c("detection_mode", pa.string(), meaning="private, public, gt, cached"),
    _c("eval_preset", pa.string(), meaning="evaluation preset: mot16, mot17, mot20, mot15, plain"),
    _c("results_uri", pa.string(), meaning="where the SEQ.txt files were read from"),
    _c("results_hash", pa.string(), meaning="sha256 over what the results are made of (result files, config, "
       "evaluation preset): equal hashes, equal results", unit="hex"),
    _c("results_run_id", pa.string(), meaning="the run whose `tracks` and `events` rows are this run's (a run whose "
       "results did not change refers to the first run that recorded them); null: its own"),
    _c("sequences_tracked", pa.int32(), meaning="sequences tracked by this run", unit="sequences"),
    _c("sequences_cached", pa.int32(), meaning="sequences whose result came from the cache", unit="sequences"),
    _c("cpu_model", pa.string(), meaning="CPU of the machine that recorded the run"),
    _c("cpu_cores", pa.int32(), meaning="its logical cores", unit="cores"),
    _c("gpu", pa.string(), meaning="its GPU (null: none)"),
    _c("python", pa.string(), meaning="Python version"),
    _c("platform", pa.string(), meaning="operating system"),
    _c("packages", pa.map_(pa.string(), pa.string()), meaning="versions of the packages that matter"),
    _c("started_at", TIMESTAMP, meaning="when the run started", unit="UTC"),
    _c("ended_at", TIMESTAMP, meaning="when the run ended", unit="UTC"),
])

METRIC_MEANINGS: dict[str, str] = {
    "HOTA": "higher order tracking accuracy (alpha-averaged)", "DetA": "HOTA detection accuracy",
    "AssA": "HOTA association accuracy", "LocA": "HOTA localisation accuracy", "DetRe": "HOTA detection recall",
    "DetPr": "HOTA detection precision", "AssRe": "HOTA association recall", "AssPr": "HOTA association precision",
    "MOTA": "CLEAR MOT accuracy", "MOTP": "CLEAR MOT precision (mean IoU of matches)",
    "IDF1": "identity F1", "IDP": "identity precision", "IDR": "identity recall",
    "TP": "matched boxes", "FP": "false positive boxes", "FN": "missed ground-truth boxes",
    "IDSW": "identity switches", "Frag": "fragmentations", "MT": "mostly tracked ground-truth ids",
    "PT": "partially tracked ground-truth ids", "ML": "mostly lost ground-truth ids",
    "gt_dets": "ground-truth boxes", "tracker_dets": "result boxes", "gt_ids": "ground-truth ids",
    "tracker_ids": "result ids", "frames": "frames evaluated",
}


def _stage_columns() -> list[Column]:
    return [_c(f"{s}_ms", pa.float64(), meaning=f"mean time of the `{s}` stage per frame", unit="ms")
            for s in STAGES]


SEQUENCE_METRICS = _table(
    "sequence_metrics",
    [_RUN_ID, _c("sequence", pa.string(), False, "sequence name, or `COMBINED` for the whole run")]
    + [_c(m, pa.float64() if m in FLOAT_FIELDS else pa.int64(), False, METRIC_MEANINGS[m],
          FRACTION if m in FLOAT_FIELDS else "count") for m in METRIC_FIELDS]
    + [_c("fps", pa.float64(), meaning="tracking speed over the frame loop (COMBINED: frames over total time)",
          unit="frames/s")]
    + _stage_columns()
)

EVENTS = _table("events", [
    _RUN_ID,
    _c("sequence", pa.string(), False, "sequence name"),
    _c("frame", pa.int32(), False, "frame number (1-based)"),
    _c("event", pa.string(), False, "MATCH, SWITCH, MISS or FP (motmetrics' event log)"),
    _c("gt_id", pa.int64(), meaning="ground-truth id (null for FP)"),
    _c("track_id", pa.int64(), meaning="result id (null for MISS)"),
    _c("iou", pa.float64(), meaning="IoU of the match (null for MISS and FP)", unit=FRACTION),
])

TRACKS = _table("tracks", [
    _RUN_ID,
    _c("sequence", pa.string(), False, "sequence name"),
    _c("frame", pa.int32(), False, "frame number (1-based)"),
    _c("track_id", pa.int64(), False, "track id (per sequence, from 1)"),
    _c("x", pa.float64(), False, "box left", "frame pixels"),
    _c("y", pa.float64(), False, "box top", "frame pixels"),
    _c("w", pa.float64(), False, "box width", "frame pixels"),
    _c("h", pa.float64(), False, "box height", "frame pixels"),
    _c("conf", pa.float64(), False, "detection confidence", FRACTION),
])

TRAIN_STEPS = _table("train_steps", [
    _c("run_id", pa.string(), False, "the training run (its config's `name`)"),
    _c("epoch", pa.int32(), False, "epoch (0-based)"),
    _c("step", pa.int64(), False, "optimiser step"),
    _c("loss_total", pa.float64(), meaning="total loss"),
    _c("loss_box", pa.float64(), meaning="box regression loss"),
    _c("loss_obj", pa.float64(), meaning="objectness loss"),
    _c("loss_id", pa.float64(), meaning="identity (embedding) loss"),
    _c("lr", pa.float64(), meaning="learning rate"),
    _c("images_per_s", pa.float64(), meaning="training throughput", unit="images/s"),
    _c("time", TIMESTAMP, meaning="when the step ended", unit="UTC"),
])

TUNE_TRIALS = _table("tune_trials", [
    _c("run_id", pa.string(), False, "`tune-<study>`"),
    _c("study", pa.string(), False, "study name"),
    _c("kind", pa.string(), False, "`trial`, `val_best` or `val_default` (validation of the best / of the baseline)"),
    _c("trial", pa.int32(), meaning="trial number (val_best: the best trial's; val_default: null)"),
    _c("preset", pa.string(), False, "tracker preset whose search space was searched"),
    _c("objective", pa.string(), False, "HOTA, MOTA, IDF1, DetA or AssA"),
    _c("value", pa.float64(), False, "the objective, combined over the windows", FRACTION),
    _c("params_json", pa.string(), False, "the parameters, canonical JSON"),
    _c("per_sequence_json", pa.string(), meaning="`{window: {metric: value}}`"),
    _c("windows", pa.string(), False, "comma-separated windows scored (SEQ or SEQ_fA-B)"),
    _c("HOTA", pa.float64(), meaning=METRIC_MEANINGS["HOTA"], unit=FRACTION),
    _c("MOTA", pa.float64(), meaning=METRIC_MEANINGS["MOTA"], unit=FRACTION),
    _c("IDF1", pa.float64(), meaning=METRIC_MEANINGS["IDF1"], unit=FRACTION),
    _c("IDSW", pa.int64(), meaning=METRIC_MEANINGS["IDSW"], unit="count"),
    _c("started_at", TIMESTAMP, meaning="trial start", unit="UTC"),
    _c("finished_at", TIMESTAMP, meaning="trial end", unit="UTC"),
])

SEQUENCE_STATS = _table(
    "sequence_stats",
    [
        _RUN_ID,
        _c("sequence", pa.string(), False, "sequence (or video) name"),
        _c("frames", pa.int64(), False, "frames tracked", "count"),
        _c("fps", pa.float64(), meaning="tracking speed (frames over the loop's wall time)", unit="frames/s"),
        _c("source_fps", pa.float64(), meaning="the frame rate the tracker used (container / seqinfo)",
           unit="frames/s"),
        _c("tracks", pa.int64(), False, "distinct track ids", "count"),
        _c("boxes", pa.int64(), False, "result rows", "count"),
        _c("boxes_per_frame", pa.float64(), False, "result rows per frame", "boxes/frame"),
        _c("track_len_mean", pa.float64(), meaning="mean frames per track id (null without tracks)", unit="frames"),
        _c("track_len_median", pa.float64(), meaning="median frames per track id", unit="frames"),
        _c("track_len_max", pa.int64(), meaning="longest track", unit="frames"),
        *_stage_columns(),
    ]
)

CPU_CALIBRATION = _table("cpu_calibration", [
    _c("run_id", pa.string(), False, "the catalog run the calibration goes with"),
    _c("gflops", pa.float64(), False, "best-of-N fixed float32 GEMM throughput", "GFLOP/s"),
    _c("gemm_n", pa.int32(), False, "matrix side of the GEMM"),
    _c("threads", pa.int32(), meaning="torch threads used"),
    _c("host", pa.string(), meaning="host name"),
    _c("measured_at", TIMESTAMP, meaning="when it was measured", unit="UTC"),
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

# Values spelled one way everywhere: {table: {column: function}}, applied by the store when rows are
# written and when partitions written before (e.g. ``mot17``) are read.
CANONICAL_VALUES: dict[str, dict[str, Callable[[str], str]]] = {
    "runs": {"dataset": canonical_dataset},
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


def _type_name(t: pa.DataType) -> str:
    if pa.types.is_map(t):
        return f"map<{t.key_type}, {t.item_type}>"
    if pa.types.is_timestamp(t):
        return f"timestamp[{t.unit}, {t.tz}]"
    return str(t)


def columns_markdown(table: str) -> str:
    """The column list of ``table`` as a Markdown table (name, type, null, meaning, unit): the text
    ``docs/catalog.md`` carries for it (``python -m catalog.schemadoc`` rewrites them there)."""
    lines = ["| column | type | null | meaning | unit |", "|---|---|---|---|---|"]
    schema(table)
    for c in COLUMNS[table]:
        meaning = c.meaning.replace("|", "\\|")
        lines.append(f"| `{c.name}` | {_type_name(c.type)} | {'yes' if c.nullable else 'no'} | {meaning} | {c.unit} |")
    return "\n".join(lines)


def schema_markdown() -> str:
    """Every table's column list (``docs/catalog.md``, between the ``schema`` markers)."""
    parts = []
    for table in TABLES:
        parts.append(f"### `{table}`\n\n{columns_markdown(table)}")
    return "\n\n".join(parts)
