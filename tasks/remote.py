"""track-all on object storage: ``data_root``, ``results_root`` and ``catalog_root`` as ``s3://`` URLs.

The tracking, evaluation and catalog code read and write local files; here the tasks put a local
copy in front of them and publish what they wrote (:mod:`cstrack.storage`):

- **selection** (:func:`find_remote_selection`): the sequences of ``<data_root>/<dataset>/images/<split>/``
  listed in the bucket, each ``seqinfo.ini`` read from it;
- **tracking** (:func:`track_remote`, on the worker): the sequence folder comes through the bounded
  object cache (:class:`cstrack.storage.ObjectCache`), the unchanged task runs on that copy into a
  private temporary folder, then ``<SEQ>.txt`` and, last, ``<SEQ>.timing.json`` are uploaded (one PUT
  each: a reader never sees half a file, and a timing record is only there once its result is);
  the cache key is computed on the same copy, so it equals the key of a local run of the same bytes;
- **cache records** (:func:`cache_storage`): Prefect's key and result storage under
  ``<results_root>/.cache`` in the bucket (every worker host shares them);
- **evaluation / catalogue** (:func:`staged_results`): the sequences' ``seqinfo.ini`` and ``gt.txt``
  and the run's result and timing files are fetched into a temporary folder for the evaluation;
  the catalog itself is written straight to its URL (``catalog.store``).

Keys and endpoint come from the AWS variables of each process (docs/object_storage.md).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fnmatch
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from cstrack.data.convert import IMAGES_DIR
from cstrack.data.mot import read_seqinfo
from cstrack.errors import ConfigError
from cstrack.fsutil import sha256_bytes
from cstrack.storage import Location, ObjectCache, is_remote
from tasks.records import SequenceRef, TrackJob, TrackRecord


def find_remote_selection(data_root: str, name: str, splits: Sequence[str] | None,
                          patterns: Sequence[str] | None) -> list[SequenceRef]:
    """:func:`tasks.data.find_selection` on a bucket: MOTChallenge folders only (video files in a
    bucket are not read yet: a selection of them fails naming the file)."""
    images = Location.of(data_root).child(name, IMAGES_DIR)
    have = images.listdir()
    if not have:
        raise ConfigError(f"datasets.{name}: not prepared under {data_root} (no {IMAGES_DIR}/ folder); "
                          f"prepare it and upload it (cstrack data prepare {name} --upload {data_root})")
    wanted = list(splits or have)
    pats = list(patterns or ["*"])
    out: list[SequenceRef] = []
    for split in wanted:
        if split not in have:
            raise ConfigError(f"datasets.{name}.splits: no split {split!r} in {images}")
        split_loc = images.child(split)
        for entry in split_loc.listdir(detail=True):
            seq_name = str(entry["name"])
            if not any(fnmatch.fnmatchcase(Path(seq_name).stem if entry.get("type") != "directory" else seq_name, p)
                       for p in pats):
                continue
            if entry.get("type") != "directory":
                if seq_name.lower().endswith((".mp4", ".avi", ".mov", ".mkv", ".webm")):
                    raise ConfigError(f"{split_loc.child(seq_name)}: video sequences are read from a local data_root "
                                      f"only")
                continue
            seq = split_loc.child(seq_name)
            try:
                text = seq.child("seqinfo.ini").read_text()
            except FileNotFoundError:
                continue  # a folder without seqinfo.ini is not a sequence (as on a local disk)
            with tempfile.TemporaryDirectory() as tmp:
                (Path(tmp) / "seqinfo.ini").write_text(text, encoding="utf-8")
                info = read_seqinfo(tmp)
            out.append(SequenceRef(dataset=name, split=split, name=seq_name, seq_dir=seq.url, gt_root=split_loc.url,
                                   kind="images", frames=info.seq_length, width=info.im_width,
                                   height=info.im_height, has_gt=seq.child("gt", "gt.txt").exists()))
    if not out:
        raise ConfigError(f"datasets.{name}: no sequence matches splits={wanted} sequences={pats} in {images}")
    return out


@contextlib.contextmanager
def local_sequence(seq: SequenceRef) -> Iterator[SequenceRef]:
    """``seq`` with ``seq_dir`` (and ``gt_root``) on local disk: itself when local, else a copy from
    the object cache, valid inside the block."""
    if not is_remote(seq.seq_dir):
        yield seq
        return
    with ObjectCache().folder(seq.seq_dir) as local:
        yield dataclasses.replace(seq, seq_dir=str(local), gt_root=str(local.parent))


def track_remote(track: Callable[[SequenceRef, str, TrackJob], TrackRecord], seq: SequenceRef, out_dir: str,
                 job: TrackJob) -> TrackRecord:
    """Run ``track`` (the tracking task's function) on a local copy of ``seq`` into a temporary
    folder, then publish ``<SEQ>.txt`` and ``<SEQ>.timing.json`` (last) to ``out_dir``."""
    if job.mode == "cached":
        raise ConfigError("mode cached: the detection cache lives on a local results_root (not s3:// yet)")
    with local_sequence(seq) as local_seq, tempfile.TemporaryDirectory(prefix="cstrack-track-") as tmp:
        record = track(local_seq, tmp if is_remote(out_dir) else out_dir, job)
        if not is_remote(out_dir):
            return record
        dest = Location.of(out_dir)
        result = dest.child(f"{record.sequence}.txt")
        result.put_file(Path(tmp) / f"{record.sequence}.txt")
        published = record.with_result(result.url)
        dest.child(f"{record.sequence}.timing.json").write_json(published.to_json())
        return published


def sequence_key(seq: SequenceRef, key: Callable[[str], str | None]) -> str | None:
    """``key(seq_dir)`` computed on the local copy of a sequence in a bucket (the same bytes give
    the same key as on a local disk)."""
    with local_sequence(seq) as local_seq:
        return key(local_seq.seq_dir)


def cache_storage(location: str, save: bool = True) -> Any:
    """Prefect storage for cache keys or records at ``location``: a local path, or for a URL a
    ``RemoteFileSystem`` block (fsspec; s3fs reads the AWS variables itself, so no key is in the
    block).  Prefect takes result storage only as a block saved on its server: with ``save`` it is
    saved there under a name derived from the URL (``cstrack-cache-<sha256[:16]>``, overwritten)."""
    if not is_remote(location):
        return Path(location)
    from prefect.filesystems import RemoteFileSystem

    block = RemoteFileSystem(basepath=location)
    if save:
        block.save(f"cstrack-cache-{sha256_bytes(location.encode())[:16]}", overwrite=True)
    return block


def check_cached_remote(record: TrackRecord, out_dir: str) -> str | None:
    """:func:`tasks.results.check_cached_result` for an ``out_dir`` in a bucket: the result there
    must have the cached sha256 (else it is copied from the cached record's file); the timing record
    is published after it."""
    dest_dir = Location.of(out_dir)
    dest = dest_dir.child(f"{record.sequence}.txt")
    try:
        have = sha256_bytes(dest.read_bytes())
    except FileNotFoundError:
        have = None
    if have != record.result_sha256:
        src = Location.of(record.result_path)
        try:
            data = src.read_bytes()
        except FileNotFoundError:
            return f"result file {src} is missing"
        if sha256_bytes(data) != record.result_sha256:
            return f"result file {src} changed since it was cached"
        dest.write_bytes(data)
    timing = dest_dir.child(f"{record.sequence}.timing.json")
    if not timing.exists():
        timing.write_json(record.with_result(dest.url).to_json())
    return None


@contextlib.contextmanager
def staged_results(gt_root: str | None, results_dir: str,
                   sequences: Sequence[str] | None) -> Iterator[tuple[str, str]]:
    """``(gt_root, results_dir)`` on local disk for an evaluation: themselves when local, else a
    temporary folder holding only what evaluation reads (``<SEQ>/seqinfo.ini``, ``<SEQ>/gt/gt.txt``;
    ``<SEQ>.txt``, ``<SEQ>.timing.json``).  ``gt_root`` None: the results only (yielded as ``""``)."""
    gt_root = gt_root or ""
    if not is_remote(gt_root) and not is_remote(results_dir):
        yield gt_root, results_dir
        return
    with tempfile.TemporaryDirectory(prefix="cstrack-eval-") as tmp:
        res = Location.of(results_dir)
        names = list(sequences) if sequences is not None else sorted(
            n[:-4] for n in (res.listdir() if is_remote(results_dir) else [p.name for p in Path(results_dir).iterdir()])
            if n.endswith(".txt"))
        gt_local, res_local = gt_root, results_dir
        if gt_root and is_remote(gt_root):
            gt_local = str(Path(tmp) / "gt")
            for n in names:
                for rel in ("seqinfo.ini", "gt/gt.txt"):
                    src = Location.of(gt_root).child(n, rel)
                    if src.exists():
                        src.get_file(Path(gt_local) / n / rel)
        if is_remote(results_dir):
            res_local = str(Path(tmp) / "results")
            Path(res_local).mkdir()
            for n in names:
                for suffix in (".txt", ".timing.json"):
                    src = res.child(n + suffix)
                    if src.exists():
                        src.get_file(Path(res_local) / (n + suffix))
        yield gt_local, res_local


@contextlib.contextmanager
def local_output_dir(out_dir: str) -> Iterator[str]:
    """A local folder to write into: ``out_dir`` itself, or for a URL a temporary folder uploaded
    to it (each file one PUT) when the block ends without an error."""
    if not is_remote(out_dir):
        yield out_dir
        return
    from cstrack.storage import upload_tree

    with tempfile.TemporaryDirectory(prefix="cstrack-out-") as tmp:
        yield tmp
        upload_tree(tmp, out_dir, manifest=None)
