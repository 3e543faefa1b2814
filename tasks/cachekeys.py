"""Content-hash cache keys for the per-sequence tracking task.

A sequence result is reused when, and only when, the same bytes would go in: the files the run
reads (``seqinfo.ini``, the det or gt table of the mode, the images when a model reads them), the
weights file's sha256, the job configuration (mode, model, tracker thresholds) and the tracking
code.  Paths never enter a key (pipeline_notes.md: ``INPUTS`` hashes the path string, so a changed
file with the same name would return a stale result); a copy of a sequence elsewhere hits the
same key.

Nothing here imports Prefect: :func:`track_cache_key` has the ``cache_key_fn(context,
parameters)`` signature and ignores the context.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cstrack.data.mot import Sequence
from cstrack.fsutil import code_fingerprint, sha256_file, stable_hash
from cstrack.storage import is_remote
from tasks.records import SequenceRef, TrackJob

KEY_VERSION = 1  # bump when the meaning of a key changes

# The code whose behaviour decides a tracking result (hashed by cstrack.fsutil.code_fingerprint): a change here invalidates cached results
# (the nightly must measure today's tracker, not yesterday's cache).  The model code counts only
# when a model runs, the optimised inference paths only when one of them is used.
TRACKING_CODE: tuple[str, ...] = ("run/loop.py", "run/frames.py", "run/sequence.py", "detection.py", "boxes.py",
                                  "data/mot.py", "tracker")
MODEL_CODE: tuple[str, ...] = ("model", "data/letterbox.py")
INFER_CODE: tuple[str, ...] = ("infer",)
VIDEO_CODE: tuple[str, ...] = ("sources", "run/source.py", "run/sinks.py")  # video sequences only


def _file_digest(path: Path) -> str:
    return sha256_file(path) if path.is_file() else "missing"


def sequence_fingerprint(seq_dir: str | Path, mode: str, reads_images: bool) -> str:
    """sha256 over the content of what tracking ``seq_dir`` in ``mode`` reads.

    - always ``seqinfo.ini`` (length, frame rate, image size)
    - ``det/det.txt`` for ``public``, ``gt/gt.txt`` for ``gt``
    - with ``reads_images``, every image ``1..seqLength`` in order (a missing one hashes as
      ``missing``: the task itself then fails with the file name)
    """
    seq = Sequence.open(seq_dir)
    parts: dict[str, Any] = {"seqinfo": _file_digest(seq.root / "seqinfo.ini")}
    if mode == "public":
        parts["det"] = _file_digest(seq.det_path)
    elif mode == "gt":
        parts["gt"] = _file_digest(seq.gt_path)
    if reads_images:
        parts["images"] = [_file_digest(seq.image_path(i)) for i in range(1, seq.info.seq_length + 1)]
    return stable_hash(parts)


def weights_fingerprint(weights: str | None) -> str | None:
    """sha256 identifying the weights (:func:`cstrack.model.ref.weights_identity`: the record's,
    the file's, the shipped COCO file's for ``"coco"``); ``None`` for random weights (never cached)."""
    if weights is None:
        return None
    from cstrack.model.ref import weights_identity

    return weights_identity(weights)


def tracker_fingerprint(preset_name: str) -> str:
    """sha256 of every field of the tracker preset (not just its name: presets can change)."""
    from cstrack.model.inference_settings import DEFAULTS, tracker_config

    return stable_hash(dataclasses.asdict(tracker_config(DEFAULTS.override(tracker_preset=preset_name))))


def code_parts(uses_model: bool, model_path: str, video: bool = False) -> tuple[str, ...]:
    """The parts of the package a tracking job runs (see :data:`TRACKING_CODE`)."""
    parts = TRACKING_CODE
    if uses_model:
        parts += MODEL_CODE
        if model_path != "eager":
            parts += INFER_CODE
    if video:
        parts += VIDEO_CODE
    return parts


def track_key(seq_dir: str | Path, job: TrackJob, video: str | Path | None = None) -> str | None:
    """The cache key of tracking ``seq_dir`` (or the ``video`` file, whose bytes are hashed) with
    ``job`` (see :mod:`tasks.track`), or ``None`` when the result is not reproducible (random weights).

    Only plain values are hashed (the model's :meth:`~tasks.records.JobModel.key_fields`, names and
    digests), never a record object: the key of a job is the one it had as a dictionary."""
    uses_model = job.uses_model
    weights = weights_fingerprint(job.model.weights) if uses_model else "none"
    if weights is None:
        return None
    model = job.model.key_fields() if uses_model else None
    inputs = (_file_digest(Path(video)) if video is not None
              else sequence_fingerprint(seq_dir, job.mode, reads_images=uses_model))
    return stable_hash(
        {
            "v": KEY_VERSION,
            "inputs": inputs,
            "weights": weights,
            "model": model,
            "mode": job.mode,
            "tracker": tracker_fingerprint(job.tracker_preset),
            "code": code_fingerprint(parts=code_parts(uses_model, job.model.path, video is not None)),
        }
    )


def track_cache_key(context: Any, parameters: Mapping[str, Any]) -> str | None:
    """``cache_key_fn`` of the tracking task: :func:`track_key` of its ``seq``
    (:class:`~tasks.records.SequenceRef`) and ``job`` (:class:`~tasks.records.TrackJob`)."""
    seq: SequenceRef = parameters["seq"]
    if is_remote(seq.seq_dir):  # hashed on the worker's local copy: the key of the same bytes on a local disk
        from tasks.remote import sequence_key

        return sequence_key(seq, lambda local: track_key(local, parameters["job"], seq.video))
    return track_key(seq.seq_dir, parameters["job"], seq.video)
