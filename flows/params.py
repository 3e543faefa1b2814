"""Validated parameter models of the flows: the pipeline's edge, where user input becomes typed.

Every flow takes exactly one of these models.  A bad value fails here, before any work starts,
with pydantic's message naming the field (``datasets.0.mode``).  The library below keeps its own
frozen dataclasses; the tasks translate these models into them.

Paths are strings (relative ones resolve against the flow run's working directory: the repository
root for the deployments in ``flows/prefect.yaml``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from catalog.schemas import TABLES as CATALOG_TABLES
from cstrack.errors import ConfigError
from cstrack.eval.presets import PRESETS as EVAL_PRESETS
from cstrack.model.config import variant_names
from cstrack.model.device import check_device
from cstrack.names import RULE as NAME_RULE
from cstrack.names import is_name
from cstrack.paths import SHIPPED_WEIGHTS
from cstrack.timing import DEFAULT_PREFETCH
from cstrack.tracker import PRESET_NAMES as TRACKER_PRESETS
from tasks.records import TrackMode

DetectionModeName = TrackMode  # the one list: tasks.records (cached: replay cstrack.run.detcache)
ModelPathName = Literal["auto", "eager", "fast", "onnx", "int8"]
PrecisionName = Literal["fp32", "fp16", "bf16"]  # cstrack.infer.batch.PRECISIONS

# Folders of a results root that a run name must not shadow: the catalog tables, the regenerated
# report and the cache records.
RESERVED_RUN_NAMES = frozenset({*CATALOG_TABLES, "tables", "cache", ".cache"})


def _check_size(v: tuple[int, int] | None) -> tuple[int, int] | None:
    """A network input ``(width, height)``: positive multiples of 32 (``None`` passes)."""
    if v is None:
        return v
    w, h = v
    if w <= 0 or h <= 0 or w % 32 or h % 32:
        raise ValueError(f"width and height must be positive multiples of 32, got {w}x{h}")
    return v


class _Model(BaseModel):
    # strict: no coercion between types (``retries: true`` is not 1, ``"2"`` is not 2); a YAML list
    # is accepted for the (width, height) tuples only, where the field says strict=False
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _check_paths(outputs: list[tuple[str | None, str]], inputs: list[tuple[str | None, str]],
                 catalog_out: tuple[str | None, str] | None = None,
                 catalog_in: tuple[str | None, str] | None = None) -> None:
    """The output rule of :mod:`cstrack.pathrules` over a flow's parameters ((path, field) pairs;
    a catalog root counts by its table folders), as a ``ValueError`` for pydantic."""
    from pathlib import Path

    from cstrack.errors import ConfigError
    from cstrack.pathrules import Input, Output, check_paths

    outs = [Output(Path(p), f) for p, f in outputs if p]
    ins = [Input(Path(p), f) for p, f in inputs if p]
    if catalog_out is not None and catalog_out[0] and "://" not in catalog_out[0]:
        outs += [Output(Path(catalog_out[0]) / t, catalog_out[1], folder=True) for t in CATALOG_TABLES]
    if catalog_in is not None and catalog_in[0] and "://" not in catalog_in[0]:
        ins += [Input(Path(catalog_in[0]) / t, catalog_in[1]) for t in CATALOG_TABLES]
    try:
        check_paths(outs, ins)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None


def _check_name(value: str, what: str) -> str:
    if not is_name(value):
        raise ValueError(f"invalid {what} {value!r} ({NAME_RULE})")
    return value


def default_eval_preset(dataset: str) -> str:
    """The evaluation preset of a dataset when none is given: by the MOTChallenge benchmark its
    name starts with (``mot17-mini`` -> ``mot17``; PETS09 and other MOT15 data -> ``mot15``),
    else ``plain`` (synthetic data: no classes)."""
    low = dataset.lower()
    for bench in ("mot16", "mot17", "mot20", "mot15"):
        if low.startswith(bench):
            return bench
    if low.startswith(("pets09", "tud", "eth", "adl", "kitti", "venice")):
        return "mot15"
    return "plain"


class DatasetSelection(_Model):
    """Which sequences of one prepared dataset (``<data_root>/<name>/images/<split>/<SEQ>``) to run."""

    name: str = Field(description="dataset folder under data_root (a registry name, e.g. pets09-s2l1)")
    splits: list[str] | None = Field(default=None, description="splits to include; null = every split")
    sequences: list[str] | None = Field(
        default=None, description="sequence names or shell patterns (MOT17-*); null = every sequence"
    )
    mode: DetectionModeName | None = Field(default=None, description="detection mode; null = the run's mode")
    appearance: bool | None = Field(
        default=None, description="public/gt modes: embed boxes with the model; null = the run's setting"
    )
    eval_preset: str | None = Field(default=None, description="evaluation preset; null = from the dataset name")
    detector_copies: Literal["each", "once"] = Field(
        default="each", description="once: track each distinct image sequence once (MOT17's DPM/FRCNN/SDP copies "
        "hold the same images) and write its result under every copy's name, as the MOTChallenge server wants "
        "(not with public detections: each copy has its own boxes)")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _check_name(v, "dataset name")

    @field_validator("splits")
    @classmethod
    def _splits(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            if not v:
                raise ValueError("empty list: use null for every split")
            for s in v:
                _check_name(s, "split")
        return v

    @field_validator("sequences")
    @classmethod
    def _sequences(cls, v: list[str] | None) -> list[str] | None:
        if v is not None:
            if not v:
                raise ValueError("empty list: use null for every sequence")
            for s in v:
                if not s or "/" in s or "\\" in s:
                    raise ValueError(f"invalid sequence name or pattern {s!r}")
        return v

    @field_validator("eval_preset")
    @classmethod
    def _preset(cls, v: str | None) -> str | None:
        if v is not None and v.lower() not in EVAL_PRESETS:
            raise ValueError(f"unknown evaluation preset {v!r}; choose from {', '.join(EVAL_PRESETS)}")
        return None if v is None else v.lower()

    @property
    def preset(self) -> str:
        return self.eval_preset or default_eval_preset(self.name)


class ModelSpec(_Model):
    """The detector: the fields of :class:`cstrack.model.ref.ModelRef` (variant, weights, path,
    device) and the overrides of the checkpoint's
    :class:`~cstrack.model.inference_settings.InferenceSettings` (null = the checkpoint's).  The
    same model parameters in every flow that runs one (track-all, nightly, tune, demo); the defaults
    are ``cstrack track``'s."""

    variant: str = Field(default="cstrack-n", description="model variant (jde-l, cstrack-l, cstrack-s, cstrack-n)")
    weights: str | None = Field(
        default=SHIPPED_WEIGHTS,
        description="checkpoint path (with its .json sha256 record; default: the shipped CPU checkpoint), 'coco' "
        "(cstrack-n: shipped COCO YOLOv5n) or null (random init: timing only, never cached)",
    )
    # null = the checkpoint's inference settings (its record's "inference" block; 1088x608, conf 0.5,
    # nms 0.6 for checkpoints without one, e.g. 'coco'): cstrack.model.inference_settings.
    input_size: tuple[int, int] | None = Field(
        default=None, strict=False, description="network input (width, height), x32; null = the checkpoint's"
    )
    path: ModelPathName = Field(default="auto", description="inference path (auto: the fastest proven identical to "
                                "eager; eager on a GPU)")
    device: str = Field(default="auto", description="auto (CUDA when present, else the CPU), cpu, cuda or cuda:N")
    batch_size: int | None = Field(default=None, ge=1, description="frames per network call on the eager/fast paths "
                                   "(image sequences; null = the device's default: 1 on the CPU, 8 on CUDA); the "
                                   "tracks are the same")
    precision: PrecisionName = Field(default="fp32", description="fp32 (the reference), fp16 (CUDA autocast; bf16 "
                                     "on the CPU) or bf16: half precision on the eager/fast paths changes the tracks "
                                     "slightly (docs/gpu.md)")
    conf_thres: float | None = Field(
        default=None, ge=0.0, le=1.0, description="detection score threshold; null = the checkpoint's"
    )
    nms_thres: float | None = Field(default=None, ge=0.0, le=1.0, description="NMS IoU threshold; null = the checkpoint's")

    @field_validator("variant")
    @classmethod
    def _variant(cls, v: str) -> str:
        names = variant_names()
        if v not in names:
            raise ValueError(f"unknown variant {v!r}; choose from {', '.join(names)}")
        return v

    @field_validator("input_size")
    @classmethod
    def _size(cls, v: tuple[int, int] | None) -> tuple[int, int] | None:
        return _check_size(v)

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        try:
            return check_device(v)
        except ConfigError as exc:
            raise ValueError(exc.detail) from None


class ClusterSpec(_Model):
    """Where the per-sequence tasks run.  The same flow code runs on both (pipeline_notes.md)."""

    dask_address: str | None = Field(
        default=None,
        description="scheduler of an existing Dask cluster (tcp://host:8786); null = $CSTRACK_DASK_ADDRESS, "
        "else a LocalCluster started for the run",
    )
    local_workers: int | None = Field(default=None, ge=1, description="LocalCluster size; null = usable cores")
    threads_per_worker: int = Field(default=1, ge=1, description="LocalCluster threads per worker process")
    torch_threads: int | None = Field(
        default=None, ge=1, description="torch threads per task; null = the host's cores / its Dask threads"
    )
    prefetch: int = Field(
        default=DEFAULT_PREFETCH, ge=0,
        description="frames a task decodes + letterboxes ahead in a thread of its own (it runs on spare cores; "
        "0: sequential, a task then uses only its torch threads)",
    )

    @field_validator("dask_address")
    @classmethod
    def _address(cls, v: str | None) -> str | None:
        if v is not None and v != "" and not re.match(r"^(tcp|tls|inproc|ucx|ws|wss)://\S+$", v):
            raise ValueError(f"expected a Dask scheduler address such as tcp://127.0.0.1:8786, got {v!r}")
        return v or None


def check_tracker_preset(v: str) -> str:
    """A built-in preset name as it is, or a preset file (as ``cstrack track --preset FILE``) made
    absolute and checked now, so that a bad file fails the parameters naming it, before any work."""
    from cstrack.errors import ConfigError
    from cstrack.tracker.presetfile import looks_like_file, read_preset_file

    if not looks_like_file(v):
        if v not in TRACKER_PRESETS:
            raise ValueError(f"unknown tracker preset {v!r}; choose from {', '.join(TRACKER_PRESETS)} or give a "
                             "preset file (.yaml/.json)")
        return v
    path = str(Path(v).expanduser().resolve())
    try:
        read_preset_file(path)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    return path


class TrackAllParams(_Model):
    """Parameters of the ``track-all`` flow."""

    data_root: str = Field(default="data", description="root of the prepared datasets")
    datasets: list[DatasetSelection] = Field(min_length=1, description="what to track")
    results_root: str = Field(default="results", description="results, cache records, catalog and tables")
    run_name: str = Field(
        default="default", description="results go to <results_root>/<run_name>/<dataset>/<split>/<SEQ>.txt"
    )
    tag: str = Field(default="adhoc", description="catalog tag of the run ('nightly' runs are compared)")
    mode: DetectionModeName = Field(default="private", description="default detection mode")
    appearance: bool = Field(default=False, description="public/gt modes: embed boxes with the model")
    model: ModelSpec = Field(default_factory=ModelSpec)
    tracker_preset: str | None = Field(
        default=None, description="tracker preset: a built-in name (" + ", ".join(TRACKER_PRESETS) + ") or a preset "
        "file (YAML/JSON, e.g. a tune study's best_preset.yaml; its detection.conf_thres applies unless "
        "model.conf_thres is set); null = the checkpoint's, else default"
    )
    cluster: ClusterSpec = Field(default_factory=ClusterSpec)
    evaluate: bool = Field(default=True, description="evaluate sequences that have ground truth")
    catalog_root: str | None = Field(default=None, description="catalog root; null = results_root (docs/catalog.md)")
    label: str | None = Field(default=None, description="method name in the report tables; null = the variant")
    extra_datasets: list[DatasetSelection] = Field(
        default_factory=list, description="datasets tracked in addition to `datasets` (how to add one to a "
        "deployment's benchmark list without restating it, e.g. MOT17 prepared with `cstrack data prepare mot17 "
        "--from DIR`: [{name: mot17, splits: [train], detector_copies: once}]; docs/datasets.md)")

    @model_validator(mode="before")
    @classmethod
    def _extra(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("extra_datasets"):
            data = {**data, "datasets": [*(data.get("datasets") or []), *data["extra_datasets"]], "extra_datasets": []}
        return data
    retries: int = Field(default=2, ge=0, le=5, description="retries of a sequence after a transient error")
    shard_frames: int = Field(
        default=0, ge=0, le=1_000_000,
        description="sequences shorter than this many frames are tracked in shards of at least this many frames, "
                    "one task per shard (docs/scale.md: bounds the task runs of many short sequences); 0 = a task "
                    "per sequence",
    )

    @field_validator("run_name", "tag")
    @classmethod
    def _names(cls, v: str) -> str:
        return _check_name(v, "name")

    @field_validator("run_name")
    @classmethod
    def _not_reserved(cls, v: str) -> str:
        if v in RESERVED_RUN_NAMES:
            raise ValueError(f"{v!r} is a folder of the results root (catalog table, tables, cache); pick another")
        return v

    @field_validator("tracker_preset")
    @classmethod
    def _tracker(cls, v: str | None) -> str | None:
        return None if v is None else check_tracker_preset(v)

    @model_validator(mode="after")
    def _unique(self) -> TrackAllParams:
        names = [d.name for d in self.datasets]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"datasets: {dup} selected twice (merge the selections)")
        public = [d.name for d in self.datasets if d.detector_copies == "once" and self.mode_of(d) == "public"]
        if public:
            raise ValueError(f"datasets {public}: detector_copies 'once' with public detections: each copy has its "
                             "own boxes, track each")
        _check_paths([(f"{self.results_root}/{self.run_name}", "results_root/run_name")],
                     [(self.data_root, "data_root"), (self.model.weights, "model.weights")],
                     catalog_out=(self.catalog, "catalog_root"))
        return self

    def needs_model(self) -> bool:
        """True when some selection runs the detector (private mode, or appearance embeddings)."""
        return any(self.mode_of(d) in ("private", "cached") or self.appearance_of(d) for d in self.datasets)

    def mode_of(self, d: DatasetSelection) -> DetectionModeName:
        return d.mode or self.mode

    def appearance_of(self, d: DatasetSelection) -> bool:
        if self.mode_of(d) in ("private", "cached"):
            return True
        return self.appearance if d.appearance is None else d.appearance

    @property
    def catalog(self) -> str:
        return self.catalog_root or self.results_root


class PrepareDataParams(_Model):
    """Parameters of the ``prepare-data`` flow: registry datasets into ``data_root`` (idempotent)."""

    datasets: list[str] = Field(min_length=1, description="registry dataset names")
    data_root: str = Field(default="data")
    registry: str | None = Field(default=None, description="registry YAML; null = the packaged one")

    @field_validator("datasets")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        for n in v:
            _check_name(n, "dataset name")
        if len(set(v)) != len(v):
            raise ValueError("a dataset is listed twice")
        return v


class TrainParams(_Model):
    """Parameters of the ``train`` flow (the trainer's YAML config plus a few overrides)."""

    config: str = Field(description="training config YAML (cstrack train CONFIG.yaml)")
    out_dir: str | None = Field(default=None, description="output folder; null = the config's")
    device: str = Field(default="auto", description="auto (cuda when available), cpu or cuda[:N]")
    resume: bool = Field(default=True, description="continue from the newest checkpoint in out_dir")
    processes: int | None = Field(default=None, ge=1, description=(
        "training processes (DDP under torchrun); null = one per visible GPU when device is auto/cuda, else 1"))

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", v):
            raise ValueError(f"expected auto, cpu, cuda or cuda:N, got {v!r}")
        return v

    @model_validator(mode="after")
    def _paths(self) -> TrainParams:
        _check_paths([(self.out_dir, "out_dir")], [(self.config, "config")])
        return self


class EvaluateParams(_Model):
    """Parameters of the ``evaluate`` flow: any result folder, including other trackers'."""

    gt_root: str = Field(description="folder of MOTChallenge sequences (SEQ/seqinfo.ini, SEQ/gt/gt.txt)")
    results: str = Field(description="folder of SEQ.txt (or a TrackEval tracker folder with data/)")
    sequences: list[str] | None = Field(default=None, description="null = seqmap.txt or every sequence")
    preset: str = Field(default="mot17", description="evaluation preset")
    dataset: str = Field(description="dataset name recorded in the catalog (MOT17, pets09-s2l1, ...)")
    split: str | None = Field(default=None, description="split recorded in the catalog")
    tracker_name: str = Field(default="external", description="name recorded in the catalog")
    source: Literal["cstrack", "external"] = Field(default="external", description="ours or imported")
    catalog_root: str | None = Field(default=None, description="ingest into this catalog; null = do not")
    allow_missing: bool = Field(default=False, description="count a missing result file as empty")

    @field_validator("preset")
    @classmethod
    def _preset(cls, v: str) -> str:
        if v.lower() not in EVAL_PRESETS:
            raise ValueError(f"unknown evaluation preset {v!r}; choose from {', '.join(EVAL_PRESETS)}")
        return v.lower()

    @field_validator("tracker_name", "dataset")
    @classmethod
    def _tracker(cls, v: str) -> str:
        return _check_name(v, "name")

    @model_validator(mode="after")
    def _paths(self) -> EvaluateParams:
        _check_paths([], [(self.gt_root, "gt_root"), (self.results, "results")],
                     catalog_out=(self.catalog_root, "catalog_root"))
        return self


class ReportParams(_Model):
    """Parameters of the ``report`` flow: regenerate the tables from the catalog."""

    catalog_root: str = Field(default="results", description="catalog root")
    out_dir: str | None = Field(default=None, description="write the tables here; null = <catalog_root>/tables")
    publish: bool = Field(default=True, description="publish the tables as a Prefect markdown artifact")
    html: bool = Field(default=True, description="also write report.html: one self-contained page (tables, figures, "
                       "nightly history)")

    @model_validator(mode="after")
    def _paths(self) -> ReportParams:
        _check_paths([(self.out_dir, "out_dir")], [], catalog_in=(self.catalog_root, "catalog_root"))
        return self


class Thresholds(_Model):
    """When a nightly comparison warns or fails.  Drops are positive numbers (previous - current)."""

    metric_warn: float = Field(default=0.005, ge=0.0, description="warn when a ratio metric drops by more")
    metric_fail: float = Field(default=0.02, ge=0.0, description="fail when a ratio metric drops by more")
    fps_warn: float = Field(default=0.15, ge=0.0, description="warn when fps drops by more than this fraction")
    fps_fail: float = Field(default=0.40, ge=0.0, description="fail when fps drops by more than this fraction")
    metrics: list[str] = Field(default=["HOTA", "MOTA", "IDF1"], min_length=1, description="compared metrics")
    fps_modes: list[str] = Field(
        default=["private"],
        description="detection modes whose fps is compared (gt/public runs without a model are too fast to time)",
    )

    @model_validator(mode="after")
    def _order(self) -> Thresholds:
        if self.metric_fail < self.metric_warn:
            raise ValueError("metric_fail must be >= metric_warn")
        if self.fps_fail < self.fps_warn:
            raise ValueError("fps_fail must be >= fps_warn")
        return self


class NightlyParams(_Model):
    """Parameters of the ``nightly`` flow: prepare, track the benchmark list, compare with the
    previous nightly run in the catalog."""

    prepare: list[str] = Field(default=["pets09-s2l1", "mot17-mini", "synth-mini"], description="datasets to prepare")
    track: TrackAllParams
    thresholds: Thresholds = Field(default_factory=Thresholds)

    @field_validator("prepare")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        for n in v:
            _check_name(n, "dataset name")
        return v


# The demo's checkpoint: the shipped CPU checkpoint that `cstrack track` uses without --weights (its
# record: 1088x608, conf 0.4; docs/training.md), relative to the repository root.
DEMO_WEIGHTS = SHIPPED_WEIGHTS


class DemoParams(_Model):
    """Parameters of the ``demo`` flow (``make demo``): everything has a working default."""

    data_root: str = Field(default="data")
    results_root: str = Field(default="results")
    weights: str | None = Field(
        default=None, description=f"checkpoint; null = {DEMO_WEIGHTS} when it exists, else the COCO weights"
    )
    input_size: tuple[int, int] | None = Field(
        default=None, strict=False, description="network input (width, height), x32; null = the checkpoint's"
    )
    local_workers: int | None = Field(default=None, ge=1, description="LocalCluster size; null = usable cores")
    render: str = Field(default="PETS09-S2L1", description="sequence to render as an annotated MP4")
    trail: int = Field(default=30, ge=0, description="trail length in frames")

    @field_validator("input_size")
    @classmethod
    def _size(cls, v: tuple[int, int] | None) -> tuple[int, int] | None:
        return _check_size(v)

    @model_validator(mode="after")
    def _paths(self) -> DemoParams:
        _check_paths([(self.results_root, "results_root")], [(self.data_root, "data_root"), (self.weights, "weights")])
        return self


class TuneParams(_Model):
    """Parameters of the ``tune`` flow (:mod:`flows.tune`, same meaning as ``cstrack tune``)."""

    sequences: list[str] = Field(min_length=1, description="MOTChallenge sequence folders to tune on")
    val: list[str] = Field(default_factory=list, description="validation sequence folders; [] = the half protocol")
    study: str = Field(description="study name; running it again continues it")
    trials: int = Field(ge=1, description="completed trials the study should have in total")
    model: ModelSpec = Field(default_factory=ModelSpec, description="the model whose outputs are cached (as "
                             "track-all's; its conf_thres is searched, not used)")
    objective: Literal["HOTA", "MOTA", "IDF1", "DetA", "AssA"] = Field(default="HOTA")
    tracker_preset: str | None = Field(
        default=None, description="preset whose declared search space is searched and whose values are the "
        "baseline: a built-in name or a preset file; null = the checkpoint's")

    @field_validator("tracker_preset")
    @classmethod
    def _tracker(cls, v: str | None) -> str | None:
        return None if v is None else check_tracker_preset(v)
    eval_preset: str | None = Field(default=None, description="evaluation preset; null = by sequence name")
    seed: int = Field(default=0, description="TPE sampler seed")
    batch: int = Field(default=4, ge=1, description="trials proposed together and scored in parallel")
    results_root: str = Field(default="results")
    catalog_root: str | None = Field(default=None, description="catalog root; null = results_root")
    cluster: ClusterSpec = Field(default_factory=ClusterSpec)

    @field_validator("study")
    @classmethod
    def _study(cls, v: str) -> str:
        return _check_name(v, "study name")

    @model_validator(mode="after")
    def _trained(self) -> TuneParams:
        if self.model.weights is None:
            raise ValueError("model.weights: tuning replays cached detections of trained weights (a checkpoint or "
                             "'coco'), not random init")
        return self

    @model_validator(mode="after")
    def _paths(self) -> TuneParams:
        _check_paths([(self.results_root, "results_root")],
                     [*((q, "sequences") for q in self.sequences), *((q, "val") for q in self.val)])
        return self
