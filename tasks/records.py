"""The records that cross track-all's pipeline: one typed, frozen place for each.

::

    select_sequences ──SequenceRef──► track_sequence_task(seq, out_dir, TrackJob) ──TrackRecord──►
    dispatch ──SequenceOutcome──► recording (catalog.ingest.RunInfo per dataset/split) ──► catalog

- :class:`SequenceRef`: one selected sequence (an image folder or a video file) and where it lives.
- :class:`JobModel`: the model a job runs (a concrete :class:`~cstrack.model.ref.ModelRef`) with its
  effective :class:`~cstrack.model.inference_settings.InferenceSettings`.
- :class:`TrackJob`: what the tracking task does with a sequence (mode, model, tracker preset, threads).
- :class:`TrackRecord`: what the tracking task returns; its JSON (:meth:`TrackRecord.to_json`) is
  ``<SEQ>.timing.json``.
- :class:`SequenceOutcome`: a sequence's fate in a run (tracked, cached or failed, with its record).
- :class:`BuiltReport`: the tables regenerated from the catalog (files and ``report.md``).

Frozen dataclasses, validated at construction (a bad value raises :class:`ConfigError` naming the
field): they pickle to Dask workers, and Prefect's JSON serializer persists a :class:`TrackRecord`
(the cache record) by its fields.  Cache keys never hash a record object, only the plain values of
:meth:`JobModel.key_fields` and friends (:mod:`tasks.cachekeys`), so a key means what it meant when
these were dictionaries.  The run record of the catalog is :class:`catalog.ingest.RunInfo`.
Nothing here imports Prefect.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from cstrack.errors import ConfigError
from cstrack.model.inference_settings import InferenceSettings
from cstrack.model.ref import ModelRef
from cstrack.timing import DEFAULT_PREFETCH

TrackMode = Literal["private", "public", "gt", "cached"]  # cached: replay cstrack.run.detcache
TRACK_MODES: tuple[str, ...] = get_args(TrackMode)
SequenceKind = Literal["images", "video"]
SEQUENCE_KINDS: tuple[str, ...] = get_args(SequenceKind)
OutcomeStatus = Literal["tracked", "cached", "failed"]
OUTCOME_STATUSES: tuple[str, ...] = get_args(OutcomeStatus)


PRECISIONS = ("fp32", "fp16", "bf16")  # cstrack.infer.batch.PRECISIONS (not imported: it needs torch)


def _one_of(owner: str, name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{owner}.{name}: expected one of {allowed}, got {value!r}")


@dataclass(frozen=True)
class SequenceRef:
    """One selected sequence: ``<gt_root>/<name>`` of split ``split`` of ``dataset``.

    ``seq_dir`` holds ``seqinfo.ini`` (and ``img1/``, ``det/``, ``gt/``); a video sequence
    (``kind="video"``) reads the frames of the file ``video`` at ``fps`` and its ``seq_dir`` holds
    only its ground truth, if any.  ``frames``, ``width``, ``height``: from ``seqinfo.ini`` or the
    container (``frames`` 0 when unknown).
    """

    dataset: str
    split: str
    name: str
    seq_dir: str
    gt_root: str = ""
    frames: int = 0
    width: int | None = None
    height: int | None = None
    has_gt: bool = False
    kind: SequenceKind = "images"
    video: str | None = None
    fps: float | None = None

    def __post_init__(self) -> None:
        _one_of("SequenceRef", "kind", self.kind, SEQUENCE_KINDS)
        for name in ("dataset", "split", "name", "seq_dir"):
            if not getattr(self, name):
                raise ConfigError(f"SequenceRef.{name}: required")
        if (self.kind == "video") != (self.video is not None):
            raise ConfigError(f"SequenceRef.video: a video file goes with kind 'video' (kind {self.kind!r}, "
                              f"video {self.video!r})")

    @property
    def label(self) -> str:
        """``dataset/split/name``: how logs, errors and the run's Markdown name the sequence."""
        return f"{self.dataset}/{self.split}/{self.name}"


@dataclass(frozen=True)
class JobModel:
    """The model of a tracking job: the concrete :class:`~cstrack.model.ref.ModelRef` (``weights``
    an absolute checkpoint path, ``"coco"`` or ``None``; ``path`` and ``device`` resolved, never
    ``auto``) and the effective :class:`~cstrack.model.inference_settings.InferenceSettings`
    (thresholds, input size, tracker preset, frame rate), each stored once (:mod:`flows.inference`)."""

    ref: ModelRef
    settings: InferenceSettings
    batch_size: int | None = None  # frames per network call on image sequences; None = the device's default
    precision: str = "fp32"  # cstrack.infer.batch.PRECISIONS

    def __post_init__(self) -> None:
        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigError(f"must be None or >= 1, got {self.batch_size}", "JobModel.batch_size")
        _one_of("JobModel", "precision", self.precision, PRECISIONS)
        if not isinstance(self.ref, ModelRef):
            raise ConfigError(f"expected a ModelRef, got {type(self.ref).__name__}", "JobModel.ref")
        if not self.ref.concrete:
            raise ConfigError(f"path and device must be resolved, got {self.ref.path!r} on {self.ref.device!r}",
                              "JobModel.ref")
        if not isinstance(self.settings, InferenceSettings):
            raise ConfigError(f"expected InferenceSettings, got {type(self.settings).__name__}", "JobModel.settings")

    @classmethod
    def of(cls, variant: str, weights: str | None, input_size: tuple[int, int], path: str, conf_thres: float,
           nms_thres: float, frame_rate: float | None = None, tracker_preset: str = "default",
           device: str = "cpu") -> JobModel:
        """The record of flat values (concrete ``path`` and ``device``)."""
        return cls(ModelRef(variant, weights, path, device),
                   InferenceSettings(input_size, conf_thres, nms_thres, tracker_preset, frame_rate))

    # The values the tasks read, from the one place each lives.
    @property
    def variant(self) -> str:
        return self.ref.variant

    @property
    def weights(self) -> str | None:
        return self.ref.weights

    @property
    def path(self) -> str:
        return self.ref.path

    @property
    def device(self) -> str:
        return self.ref.device

    @property
    def input_size(self) -> tuple[int, int]:
        return self.settings.input_size

    @property
    def conf_thres(self) -> float:
        return self.settings.conf_thres

    @property
    def nms_thres(self) -> float:
        return self.settings.nms_thres

    @property
    def frame_rate(self) -> float | None:
        return self.settings.frame_rate

    def key_fields(self) -> dict[str, Any]:
        """What a cache key hashes of the model, the same dictionary as when jobs were flat records:
        variant, input_size, path, conf_thres, nms_thres, frame_rate (``weights`` is identified by
        content instead; the tracker preset is hashed by its fields), plus ``device`` off the CPU
        (a key computed on the CPU before devices existed still hits) and ``precision`` other than
        fp32 (half precision changes the tracks; the batch size does not, so it is not hashed)."""
        out: dict[str, Any] = {"variant": self.variant, "input_size": list(self.input_size), "path": self.path,
                               "conf_thres": self.conf_thres, "nms_thres": self.nms_thres,
                               "frame_rate": self.frame_rate}
        if self.device != "cpu":
            out["device"] = self.device
        if self.precision != "fp32":
            out["precision"] = self.precision
        return out


@dataclass(frozen=True)
class TrackJob:
    """What the tracking task does with a sequence (one per dataset selection of a run).

    - ``mode``: private (detector), public (``det.txt``), gt (``gt.txt``), cached (replay
      ``<results_root>/detcache``); ``uses_model``: the detector runs (private, cached, appearance).
    - ``model``: the model and its effective settings (:class:`JobModel`; the tracker preset is
      ``model.settings.tracker_preset``, written with each record).
    - ``torch_threads``: ``None`` = the worker's share of the cores; ``prefetch``: frames read
      ahead in a thread, 0 = sequential (the result is the same, so it is not part of the cache key).
    """

    mode: TrackMode
    uses_model: bool
    model: JobModel
    torch_threads: int | None = None
    prefetch: int = DEFAULT_PREFETCH
    results_root: str = ""  # absolute; cached mode: where detcache/ lives

    def __post_init__(self) -> None:
        _one_of("TrackJob", "mode", self.mode, TRACK_MODES)
        if self.prefetch < 0:
            raise ConfigError(f"TrackJob.prefetch: must be >= 0, got {self.prefetch}")
        if self.torch_threads is not None and self.torch_threads < 1:
            raise ConfigError(f"TrackJob.torch_threads: must be None or >= 1, got {self.torch_threads}")
        if self.mode == "cached" and not self.results_root:
            raise ConfigError("TrackJob.results_root: mode cached reads and writes <results_root>/detcache")

    @property
    def settings(self) -> InferenceSettings:
        return self.model.settings

    @property
    def tracker_preset(self) -> str:
        return self.model.settings.tracker_preset


@dataclass(frozen=True)
class WorkerIdentity:
    """Where a task ran: the Dask worker's name (its address when unnamed; ``local`` outside Dask),
    its address, the host and the process id (:func:`tasks.runtime.worker_identity`)."""

    worker: str
    worker_address: str | None
    host: str
    pid: int


@dataclass(frozen=True)
class TrackRecord:
    """What tracking one sequence did: the task's return value, the cache's persisted record and,
    as :meth:`to_json`, ``<SEQ>.timing.json`` beside the result (``catalog.ingest.read_timings``).

    ``ms``: mean milliseconds per frame by stage; ``result_sha256``: the result file's bytes;
    ``started``/``finished``: ISO 8601 UTC; ``first_frame_unix``: when the first frame was done;
    ``worker``..``pid``: the task's :class:`WorkerIdentity`; ``device``, ``device_name``: where the
    model ran (``None`` without a model).
    """

    dataset: str
    split: str
    sequence: str
    mode: str
    frames: int
    fps: float
    result_path: str
    result_sha256: str
    started: str
    finished: str
    worker: str
    kind: str = "images"
    frame_rate: float | None = None
    settings: Mapping[str, Any] | None = None
    ms: Mapping[str, float] = field(default_factory=dict)
    num_tracks: int = 0
    num_boxes: int = 0
    torch_threads: int | None = None
    prefetch: int = DEFAULT_PREFETCH
    setup_s: float = 0.0
    first_frame_unix: float | None = None
    wall_s: float = 0.0
    worker_address: str | None = None
    host: str | None = None
    pid: int | None = None
    device: str | None = None  # the model's concrete torch device (None: no model ran)
    device_name: str | None = None  # its hardware: the CPU model or the GPU's name

    def __post_init__(self) -> None:
        for name in ("sequence", "result_sha256"):
            if not getattr(self, name):
                raise ConfigError(f"TrackRecord.{name}: required")

    def to_json(self) -> dict[str, Any]:
        """The JSON form (``<SEQ>.timing.json``): every field, ``ms`` and ``settings`` as objects."""
        out = dataclasses.asdict(self)
        out["ms"] = dict(self.ms)
        out["settings"] = None if self.settings is None else dict(self.settings)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TrackRecord:
        """The record of its JSON form (a timing file, a cache record persisted as a plain object);
        an unknown key is ignored (older or newer writers), a missing required one raises
        :class:`ConfigError` naming it."""
        names = {f.name for f in dataclasses.fields(cls)}
        required = [f.name for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        missing = [n for n in required if data.get(n) in (None, "")]
        if missing:
            raise ConfigError(f"tracking record: missing {', '.join(missing)}")
        return cls(**{k: v for k, v in data.items() if k in names})

    def with_result(self, result_path: str) -> TrackRecord:
        """The same record pointing at a copy of its result file."""
        return dataclasses.replace(self, result_path=result_path)


@dataclass(frozen=True)
class SequenceOutcome:
    """A sequence's fate in a track-all run: ``record`` unless ``status`` is ``failed``, then
    ``error`` (``Type: first line``); ``scheduler_lost``: it failed because the Dask scheduler went
    away (the run then fails as a whole, :func:`flows.cluster.scheduler_lost`); ``stale``: a cache
    hit whose record could not be read (:func:`flows.dispatch.run_sequences` tracks it again)."""

    seq: SequenceRef
    status: OutcomeStatus
    record: TrackRecord | None = None
    error: str | None = None
    scheduler_lost: bool = False
    stale: bool = False

    def __post_init__(self) -> None:
        _one_of("SequenceOutcome", "status", self.status, OUTCOME_STATUSES)
        if (self.status == "failed") != (self.record is None):
            raise ConfigError(f"SequenceOutcome.record: a {self.status} sequence "
                              f"{'has no record' if self.status == 'failed' else 'needs its record'}")


@dataclass(frozen=True)
class BuiltReport:
    """The regenerated tables (:func:`tasks.report.build_report_task`): the files written and the
    Markdown of ``report.md`` (empty when the catalog had nothing to report)."""

    files: tuple[str, ...]
    report_md: str
