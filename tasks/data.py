"""Data tasks: prepare a registry dataset (one :func:`cstrack.data.prepare.prepare` call) and select
the sequences of a track-all run from prepared datasets.

Prepared layout (``cstrack.data.convert``): ``<data_root>/<dataset>/images/<split>/<SEQ>/``; a
split may also hold video files ``<SEQ>.mp4`` (a team's own camera clips, with or without gt).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from prefect import task

from cstrack.data.convert import IMAGES_DIR
from cstrack.data.mot import read_seqinfo
from cstrack.errors import ConfigError
from cstrack.storage import is_remote
from tasks.records import SequenceRef

# Files of a dataset split tracked as video sequences (whatever OpenCV's FFmpeg decodes; these
# are the usual containers of camera clips).
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".ts")


@task(name="prepare-dataset", task_run_name="prepare {name}")
def prepare_dataset(name: str, data_root: str, registry: str | None = None) -> dict[str, Any]:
    """Fetch, verify and convert ``name`` into ``data_root/<name>`` (a no-op when already done)."""
    from prefect.logging import get_run_logger

    from cstrack.data.prepare import prepare
    from cstrack.data.registry import load_registry

    logger = get_run_logger()
    local_root = data_root
    if is_remote(data_root):  # prepared on this host ($CSTRACK_CACHE/prepared), then uploaded
        from cstrack.storage import default_cache_dir

        local_root = str(default_cache_dir().parent / "prepared")
    res = prepare(name, local_root, registry=load_registry(registry), progress=False, log=logger.info)
    logger.info("%s: %s (%s)", name, "already prepared" if res.skipped else "prepared", res.path)
    out: dict[str, Any] = {"name": res.name, "path": str(res.path), "skipped": res.skipped,
                           "lists": {k: str(v) for k, v in res.lists.items()}}
    if is_remote(data_root):
        from cstrack.storage import Location, sync_tree

        target = Location.of(data_root).child(name)
        sync = sync_tree(res.path, target)
        logger.info("%s: uploaded %d file(s) to %s (%d unchanged)", name, sync.uploaded, target, sync.unchanged)
        out.update(path=target.url, uploaded=sync.uploaded)
    return out


class DatasetQuery(Protocol):
    """Which sequences of one prepared dataset to select (:class:`flows.params.DatasetSelection`
    is one): ``splits``/``sequences`` ``None`` or empty = all; ``sequences`` are shell patterns."""

    @property
    def name(self) -> str: ...
    @property
    def splits(self) -> Sequence[str] | None: ...
    @property
    def sequences(self) -> Sequence[str] | None: ...


def video_sequence(dataset: str, split_dir: Path, video: Path) -> SequenceRef:
    """The selection record of the video file ``split_dir/<SEQ>.<ext>`` (frames, size and frame
    rate from the container).  Its ground truth, if any, is ``split_dir/<SEQ>/gt/gt.txt`` beside a
    ``seqinfo.ini`` (the MOTChallenge layout the evaluation reads, without ``img1/``)."""
    from cstrack.sources import VideoFileSource, source_name

    src = VideoFileSource(str(video), source_name(str(video), "video"), path=video)
    src.open()  # a file OpenCV cannot open fails here, naming it, before any tracking starts
    try:
        cap_size = src.size()
    finally:
        src.close()
    gt_dir = split_dir / video.stem
    return SequenceRef(
        dataset=dataset, split=split_dir.name, name=video.stem, seq_dir=str(gt_dir.resolve()),
        gt_root=str(split_dir.resolve()), kind="video", video=str(video.resolve()), frames=src.total or 0,
        width=cap_size[0], height=cap_size[1], fps=src.fps,
        has_gt=(gt_dir / "gt" / "gt.txt").is_file() and (gt_dir / "seqinfo.ini").is_file(),
    )


def find_selection(data_root: str | Path, selection: DatasetQuery) -> list[SequenceRef]:
    """The sequences of one dataset selection (see :class:`flows.params.DatasetSelection`).

    A sequence is a MOTChallenge folder ``<split>/<SEQ>/`` (``seqinfo.ini`` + images) or a video
    file ``<split>/<SEQ>.<ext>`` (:data:`VIDEO_EXTENSIONS`, see :func:`video_sequence`; a folder
    of the same name then only holds its ground truth).  Returns one :class:`SequenceRef` per
    sequence, sorted by split and name.  A selection that matches nothing
    raises :class:`ConfigError` naming it (a typo must not silently track nothing).
    """
    name = selection.name
    if is_remote(data_root):  # s3://bucket/prefix (tasks/remote.py)
        from tasks.remote import find_remote_selection

        return find_remote_selection(str(data_root), name, selection.splits, selection.sequences)
    images = Path(data_root) / name / IMAGES_DIR
    if not images.is_dir():
        raise ConfigError(f"datasets.{name}: not prepared under {Path(data_root).resolve()} (no {images.name}/ folder); "
                          f"run the prepare-data flow first")
    splits = list(selection.splits or sorted(p.name for p in images.iterdir() if p.is_dir()))
    patterns = list(selection.sequences or ["*"])
    out: list[SequenceRef] = []
    for split in splits:
        split_dir = images / split
        if not split_dir.is_dir():
            raise ConfigError(f"datasets.{name}.splits: no split {split!r} in {images}")
        videos = {p.stem: p for p in split_dir.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS}
        folders = {p.name: p for p in split_dir.iterdir() if (p / "seqinfo.ini").is_file() and p.name not in videos}
        for seq_name in sorted({*videos, *folders}):
            if not any(fnmatch.fnmatchcase(seq_name, pat) for pat in patterns):
                continue
            if seq_name in videos:
                out.append(video_sequence(name, split_dir, videos[seq_name]))
                continue
            seq_dir = folders[seq_name]
            info = read_seqinfo(seq_dir)
            out.append(SequenceRef(
                dataset=name, split=split, name=seq_name, seq_dir=str(seq_dir.resolve()),
                gt_root=str(split_dir.resolve()), kind="images", frames=info.seq_length, width=info.im_width,
                height=info.im_height, has_gt=(seq_dir / "gt" / "gt.txt").is_file(),
            ))
    if not out:
        raise ConfigError(f"datasets.{name}: no sequence matches splits={splits} sequences={patterns} in {images}")
    return out


@task(name="select-sequences")
def select_sequences(data_root: str, selections: Sequence[DatasetQuery]) -> list[SequenceRef]:
    """Every selected sequence, longest first (ties by dataset, split, name), so that the longest
    tasks start first and the shards finish together."""
    seqs = [s for sel in selections for s in find_selection(data_root, sel)]
    return sorted(seqs, key=lambda s: (-s.frames, s.dataset, s.split, s.name))
