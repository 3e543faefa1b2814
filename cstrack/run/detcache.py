"""Cached network outputs: a sequence's per-frame detections, computed once, replayed through the
tracker many times (tracker ablations, tuning) without running the network again.

What is stored, per sequence: every box the detector keeps at a low score floor
(:data:`DEFAULT_SCORE_FLOOR`) after NMS, in frame pixels, with its score and L2-normalised
embedding.  Replaying at a threshold ``t >= floor`` keeps the rows with ``score > t`` and gives the
detections a live run at ``conf_thres = t`` gives, bit for bit:

- the score filter (``obj > t`` and ``obj·cls > t``) keeps a subset: ``obj·cls > t`` implies
  ``obj > t`` because ``cls <= 1``;
- greedy (Cluster-DIoU, iterated to its fixed point) NMS decides a box only from the higher-scoring
  boxes, which are all above ``t`` too; the ``max_det`` cut is by score, so it cuts the same boxes
  whenever fewer than ``max_det`` boxes score above ``t``;
- box mapping and embedding gathering are per box.

One Parquet file per (weights sha256, variant, input size, inference path, NMS threshold, score
floor, sequence content hash), ``<results>/detcache/<SEQ>_<key16>.parquet``: one row per box,
``frame int32, x1 y1 x2 y2 float32 (frame px), score float32, emb fixed_size_list<float32>[D]``,
sorted by frame (descending score within a frame, as the detector returns them).  The key, the
sequence length and frame rate ride in the file's metadata (``cstrack.detcache``).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from cstrack.data.mot import MotTable, Sequence, write_results
from cstrack.detection import Detections, FrameDetector
from cstrack.errors import ConfigError, DatasetError
from cstrack.fsutil import atomic_path, sha256_file, stable_hash
from cstrack.model.ref import weights_identity
from cstrack.run.frames import FrameInput, prefetched_frames
from cstrack.run.loop import FrameLoop, detect_stage, run_stats
from cstrack.tracker import Tracker, TrackerConfig

if TYPE_CHECKING:
    from cstrack.model.inference_settings import InferenceSettings
    from cstrack.model.ref import ModelRef
    from cstrack.run.sequence import SequenceRun

# Low enough for every detection threshold worth tuning (the spec's is 0.5, §11), high enough to
# keep a PETS09 frame to a few dozen boxes.
DEFAULT_SCORE_FLOOR = 0.1
CACHE_DIR = "detcache"  # under the results root
KEY_VERSION = 1  # bump when the stored content changes meaning
_META = b"cstrack.detcache"


@dataclass(frozen=True)
class CacheSpec:
    """What a sequence's network output depends on, besides the sequence itself."""

    weights_sha256: str
    variant: str
    input_size: tuple[int, int]  # network (width, height)
    path: str  # inference path: eager, fast, onnx, int8
    score_floor: float = DEFAULT_SCORE_FLOOR
    nms_thres: float = 0.6  # spec §11
    device: str = "cpu"  # concrete torch device of the network (cstrack.model.device)

    def __post_init__(self) -> None:
        if not 0.0 <= self.score_floor < 1.0:
            raise ConfigError(f"must be in [0, 1), got {self.score_floor!r}", "score_floor")
        if not self.weights_sha256:
            raise ConfigError("cached detections need identified weights (a checkpoint or 'coco')", "weights")

    @classmethod
    def of(cls, ref: ModelRef, settings: InferenceSettings, score_floor: float = DEFAULT_SCORE_FLOOR) -> CacheSpec:
        """The spec of the concrete model ``ref`` (:meth:`ModelRef.resolve`) at ``settings``
        (input size and NMS threshold; the detection threshold is the replay's)."""
        if ref.weights is None:
            raise ConfigError("cached detections need trained weights (a checkpoint or 'coco'), not random init",
                              "weights")
        if not ref.concrete:
            ref = ref.resolve()[0]
        return cls(weights_identity(str(ref.weights)), ref.variant, settings.input_size, ref.path, score_floor,
                   float(settings.nms_thres), ref.device)

    def key_fields(self) -> dict[str, Any]:
        """What the key hashes: every field, ``device`` only off the CPU (so the keys of caches
        computed before devices existed, all on the CPU, still hit)."""
        out = asdict(self)
        if self.device == "cpu":
            del out["device"]
        return out

    def key(self, sequence_hash: str) -> str:
        """sha256 of this spec (:meth:`key_fields`), the key version and the sequence content hash."""
        return stable_hash({"v": KEY_VERSION, "spec": self.key_fields(), "sequence": sequence_hash})


def sequence_hash(seq_dir: str | Path) -> str:
    """sha256 over ``seqinfo.ini`` and every image ``1..seqLength`` in order (what the network reads)."""
    seq = Sequence.open(seq_dir)
    h = hashlib.sha256(sha256_file(seq.root / "seqinfo.ini").encode())
    for i in range(1, seq.info.seq_length + 1):
        p = seq.image_path(i)
        if not p.is_file():
            raise DatasetError("image missing", p)
        h.update(sha256_file(p).encode())
    return h.hexdigest()


def cache_path(results_root: str | Path, spec: CacheSpec, seq_dir: str | Path) -> Path:
    """``<results_root>/detcache/<SEQ>_<key16>.parquet`` for ``seq_dir`` under ``spec``."""
    key = spec.key(sequence_hash(seq_dir))
    return Path(results_root) / CACHE_DIR / f"{Path(seq_dir).name}_{key[:16]}.parquet"


@dataclass
class CachedDetections:
    """A sequence's cached detections as arrays (rows sorted by frame):
    ``frame int32 [N]``, ``xyxy float32 [N, 4]`` (frame px), ``scores float32 [N]``,
    ``embeddings float32 [N, D]`` (L2-normalised)."""

    frame: np.ndarray
    xyxy: np.ndarray
    scores: np.ndarray
    embeddings: np.ndarray
    seq_length: int
    frame_rate: float
    meta: dict[str, Any]

    @property
    def emb_dim(self) -> int:
        return int(self.embeddings.shape[1])

    @property
    def score_floor(self) -> float:
        return float(self.meta["spec"]["score_floor"])

    def frames(self, conf_thres: float, first: int = 1, last: int | None = None) -> Iterator[tuple[int, Detections]]:
        """``(frame, detections with score > conf_thres)`` for frames ``first..last`` (default: all),
        one per frame, empty frames included."""
        if conf_thres < self.score_floor:
            raise ConfigError(f"conf_thres: {conf_thres} is below the cache's score floor {self.score_floor}")
        last = self.seq_length if last is None else last
        bounds = np.searchsorted(self.frame, np.arange(first, last + 2))
        for k, number in enumerate(range(first, last + 1)):
            a, b = int(bounds[k]), int(bounds[k + 1])
            s = self.scores[a:b]
            keep = s > np.float32(conf_thres)
            if keep.all():
                yield number, Detections(self.xyxy[a:b], s, self.embeddings[a:b])
            else:
                yield number, Detections(self.xyxy[a:b][keep], s[keep], self.embeddings[a:b][keep])


def write_cache(path: str | Path, det: CachedDetections) -> Path:
    """Write ``det`` as Parquet atomically (see the module docstring for the layout)."""
    d = det.emb_dim
    emb = pa.FixedSizeListArray.from_arrays(pa.array(det.embeddings.reshape(-1), pa.float32()), d)
    table = pa.table({
        "frame": pa.array(det.frame, pa.int32()),
        "x1": pa.array(det.xyxy[:, 0], pa.float32()),
        "y1": pa.array(det.xyxy[:, 1], pa.float32()),
        "x2": pa.array(det.xyxy[:, 2], pa.float32()),
        "y2": pa.array(det.xyxy[:, 3], pa.float32()),
        "score": pa.array(det.scores, pa.float32()),
        "emb": emb,
    })
    meta = {**det.meta, "seq_length": det.seq_length, "frame_rate": det.frame_rate, "emb_dim": d}
    table = table.replace_schema_metadata({_META: json.dumps(meta, sort_keys=True).encode()})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return Path(path)


def read_cache(path: str | Path) -> CachedDetections:
    """Read a file written by :func:`write_cache`; :class:`DatasetError` when it is not one."""
    try:
        table = pq.read_table(path)
        meta = json.loads((table.schema.metadata or {})[_META])
    except (OSError, KeyError, ValueError, pa.ArrowException) as exc:
        raise DatasetError(f"not a detection cache file ({exc})", path) from None
    d = int(meta["emb_dim"])
    emb = table.column("emb").combine_chunks()
    values = emb.values.to_numpy(zero_copy_only=False) if len(emb) else np.zeros(0, np.float32)
    xyxy = np.stack([table.column(c).to_numpy() for c in ("x1", "y1", "x2", "y2")], axis=1).astype(np.float32)
    return CachedDetections(
        frame=table.column("frame").to_numpy().astype(np.int32),
        xyxy=np.ascontiguousarray(xyxy),
        scores=table.column("score").to_numpy().astype(np.float32),
        embeddings=np.asarray(values, np.float32).reshape(-1, d),
        seq_length=int(meta["seq_length"]),
        frame_rate=float(meta["frame_rate"]),
        meta=meta,
    )


def compute_cache(seq_dir: str | Path, detector: FrameDetector, spec: CacheSpec, path: str | Path,
                  progress: Callable[[int], None] | None = None) -> CachedDetections:
    """Run ``detector`` (built with ``conf_thres = spec.score_floor``) over every frame of
    ``seq_dir`` and write the cache file ``path``."""
    seq = Sequence.open(seq_dir)
    frames, xyxy, scores, embs = [], [], [], []
    t0 = time.perf_counter()
    for fr in prefetched_frames()(seq, detector):
        assert fr.prep is not None
        out = fr.out if fr.out is not None else detector.forward(fr.prep)  # a frame worker may have run it
        dets = detector.postprocess(out, fr.prep)
        emb = dets.embeddings if dets.embeddings is not None else np.zeros((len(dets), detector.emb_dim), np.float32)
        frames.append(np.full(len(dets), fr.number, np.int32))
        xyxy.append(dets.xyxy)
        scores.append(dets.scores)
        embs.append(emb)
        if progress is not None:
            progress(1)
    wall = time.perf_counter() - t0
    d = detector.emb_dim
    det = CachedDetections(
        frame=np.concatenate(frames) if frames else np.zeros(0, np.int32),
        xyxy=np.concatenate(xyxy) if xyxy else np.zeros((0, 4), np.float32),
        scores=np.concatenate(scores) if scores else np.zeros(0, np.float32),
        embeddings=np.concatenate(embs) if embs else np.zeros((0, d), np.float32),
        seq_length=seq.info.seq_length,
        frame_rate=seq.info.frame_rate,
        meta={"spec": spec.key_fields(), "sequence": seq.root.name, "network_fps": seq.info.seq_length / wall if wall else 0},
    )
    write_cache(path, det)
    return det


def ensure_cache(seq_dir: str | Path, results_root: str | Path, spec: CacheSpec,
                 detector: Callable[[], FrameDetector], progress: Callable[[int], None] | None = None) -> Path:
    """The cache file of ``seq_dir`` under ``results_root``, computed first (with the detector
    ``detector()`` returns) when it is missing or unreadable."""
    path = cache_path(results_root, spec, seq_dir)
    if path.is_file():
        try:
            read_cache(path)
            return path
        except DatasetError:
            pass  # a damaged file is recomputed
    compute_cache(seq_dir, detector(), spec, path, progress)
    return path


@dataclass(frozen=True)
class Replay:
    """What :func:`replay` produced: the result table and the tracker-only timing."""

    table: MotTable
    frames: int
    seconds: float

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def replay(det: CachedDetections, config: TrackerConfig | None, conf_thres: float, first: int = 1,
           last: int | None = None) -> Replay:
    """Track frames ``first..last`` of the cached sequence with a fresh tracker (the one loop,
    :class:`~cstrack.run.loop.FrameLoop`, fed the cached detections).  Result frames are
    renumbered from 1 (``frame - first + 1``), so a window is a sequence of its own."""
    frames = (FrameInput(number, dets=dets) for number, dets in det.frames(conf_thres, first, last))
    loop = FrameLoop(Tracker(config, frame_rate=det.frame_rate), detect_stage(None)).run(frames)
    return Replay(loop.table(renumber=True), loop.frames, loop.wall)


def track_cached(seq_dir: str | Path, out_dir: str | Path, cache_file: str | Path, config: TrackerConfig | None,
                 conf_thres: float) -> SequenceRun:
    """Replay ``cache_file`` for the whole sequence and write ``<out_dir>/<SEQ>.txt`` like
    :func:`cstrack.run.sequence.track_sequence`; returns its :class:`~cstrack.run.sequence.SequenceRun`
    (stage ``associate`` holds the tracker time; the network stages are 0)."""
    from cstrack.run.sequence import SequenceRun
    from cstrack.timing import STAGES

    det = read_cache(cache_file)
    seq = Sequence.open(seq_dir)
    if det.seq_length != seq.info.seq_length:
        raise DatasetError(f"cache has {det.seq_length} frames, the sequence {seq.info.seq_length}", cache_file)
    run = replay(det, config, conf_thres)
    name = Path(seq_dir).name
    path = write_results(Path(out_dir) / f"{name}.txt", run.table)
    ms = dict.fromkeys(STAGES, 0.0)
    ms["associate"] = 1000.0 * run.seconds / run.frames if run.frames else 0.0
    num_tracks, num_boxes = run_stats(run.table)
    return SequenceRun(sequence=name, frames=run.frames, fps=run.fps, ms=ms, result_path=path, mode="cached",
                       num_tracks=num_tracks, num_boxes=num_boxes)
