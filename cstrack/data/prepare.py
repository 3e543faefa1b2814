"""Prepare registry datasets: fetch + verify, extract, convert, record (idempotent).

``prepare(name, root)`` turns the registry entry ``name`` into ``D = root/<name>``::

    D/downloads/<file>        verified files (``.part`` while incomplete; resumed on the next run)
    D/raw/<archive stem>/     extracted archives (atomic: a folder here is complete)
    D/images/, D/labels_with_ids/, D/<list>.txt   the converter's output (see cstrack.data.convert)
    D/prepared.json           written last: the entry fingerprint, file checksums, list sizes
    D/.prepare.lock           held (flock) while a process prepares D; others wait, then reuse
    D/.prepare-new-*/         the conversion being built (outputs + prepared.json)
    D/.prepare-old-*/         the previous outputs while the new ones are swapped in

The converter writes into ``D/.prepare-new-*``, beside the previous preparation, which stays
usable meanwhile; only a complete conversion is swapped in (renames on one file system, the
marker ``prepared.json`` moved out first and in last), and a failure at any step (a bad
annotation line, a full disk) leaves the previous dataset exactly as it was.

A dataset whose ``prepared.json`` matches the current registry entry and whose list files are
intact is not redone.  Anything less is redone from the first missing step: a verified download
is never fetched again and an extracted archive is not extracted again.  Local sources
(``shared:`` files, ``dir`` sources, the synthetic generator) need no network.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import fnmatch
import json
import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from cstrack import __version__
from cstrack.data.convert import (
    IMAGES_DIR,
    LABELS_DIR,
    crowdhuman_to_jde,
    find_sequences,
    index_jde_images,
    link_or_copy,
    parse_frame_range,
    video_to_sequence,
    write_list,
    write_mot_labels,
)
from cstrack.data.download import download
from cstrack.data.extract import archive_stem, check_archive, safe_extract
from cstrack.data.registry import DatasetEntry, Registry, load_registry, resolve_url
from cstrack.data.synthetic import SynthConfig, generate
from cstrack.errors import DatasetError, DownloadError
from cstrack.fsutil import atomic_write_json, make_temp_dir

RECORD = "prepared.json"
LOCK = ".prepare.lock"
_ARCHIVES = ("zip", "tar", "tar.gz", "tar.bz2", "tar.xz")
_STAGE, _OLD = ".prepare-new-", ".prepare-old-"


@dataclass(frozen=True)
class PrepareResult:
    name: str
    path: Path  # ROOT/<name>
    skipped: bool  # True when an intact, matching preparation was found
    lists: dict[str, Path]  # list file name (without .txt) -> path
    record: dict[str, Any]  # the content of prepared.json


def dataset_dir(root: str | Path, name: str) -> Path:
    return Path(root) / name


def read_record(path: str | Path) -> dict[str, Any] | None:
    """``prepared.json`` of a dataset folder, or None when absent/unreadable."""
    p = Path(path) / RECORD
    try:
        rec = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return rec if isinstance(rec, dict) else None


def is_prepared(entry: DatasetEntry, d: Path) -> bool:
    """True when ``d`` holds a complete preparation of ``entry`` (fingerprint and list sizes match)."""
    rec = read_record(d)
    if rec is None or rec.get("fingerprint") != entry.fingerprint():
        return False
    for list_name, count in rec.get("lists", {}).items():
        p = d / list_name
        if not p.is_file():
            return False
        with open(p, encoding="utf-8") as fh:
            if sum(1 for line in fh if line.strip()) != count:
                return False
    return True


def prepare(
    name: str,
    root: str | Path,
    *,
    registry: Registry | None = None,
    force: bool = False,
    progress: bool = True,
    retries: int = 4,
    timeout: float = 30.0,
    log: Callable[[str], None] = lambda msg: None,
    source: str | Path | None = None,
) -> PrepareResult:
    """Download/verify/extract/convert registry entry ``name`` into ``root/<name>`` (see module doc).

    ``source`` (``cstrack data prepare NAME --from PATH``): a copy the user already has instead of a
    download: the extracted folder (checked with :func:`check_benchmark_folder`: every sequence the
    server expects, images for every frame of ``seqinfo.ini``) or the archive itself (verified
    against the registry's sha256 where the registry knows it, as a download is).  It prepares the
    dataset again even when one is prepared (the copy is what the user asked for)."""
    reg = registry or load_registry()
    entry = reg.get(name)
    d = dataset_dir(root, name)
    if source is not None:
        src = Path(source).expanduser().resolve()
        if len(entry.files) != 1:
            raise DatasetError(f"{name}: --from takes a dataset of one archive; this entry has {len(entry.files)}",
                               src)
        if src.is_dir():
            for line in check_benchmark_folder(name, entry, src):
                log(f"{name}: {line}")
        elif not src.is_file():
            raise DatasetError(f"{name}: --from: no such file or folder", src)
        force = True
    if not force and is_prepared(entry, d):
        rec = read_record(d) or {}
        return PrepareResult(name, d, True, _lists(d, rec), rec)
    d.mkdir(parents=True, exist_ok=True)
    with open(d / LOCK, "a+b") as lock:  # one preparer per dataset folder at a time (processes too)
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        if not force and is_prepared(entry, d):  # done by another process while we waited
            rec = read_record(d) or {}
            return PrepareResult(name, d, True, _lists(d, rec), rec)
        return _prepare_locked(entry, d, name, progress=progress, retries=retries, timeout=timeout, log=log,
                               source=None if source is None else Path(source).expanduser().resolve())


def _prepare_locked(
    entry: DatasetEntry, d: Path, name: str, *, progress: bool, retries: int, timeout: float,
    log: Callable[[str], None], source: Path | None = None,
) -> PrepareResult:
    files: list[dict[str, Any]] = []
    sources: dict[str, Path] = {}
    for f in entry.files:
        if source is not None and source.is_dir():  # an extracted copy (checked by prepare)
            sources[f.name] = source
            files.append({"name": f.name, "archive": "dir", "path": str(source), "from": "--from"})
            continue
        urls = [source.as_uri()] if source is not None else [resolve_url(u) for u in f.urls]
        if f.archive == "dir":
            path = _local_dir(entry, f.name, f.urls)
            sources[f.name] = path
            files.append({"name": f.name, "archive": "dir", "path": str(path)})
            continue
        dest = d / "downloads" / f.name
        if f.manual and not f.urls and not dest.exists():
            raise DownloadError(
                f"{name}: {f.name} cannot be fetched automatically; download it from "
                f"{entry.homepage or 'the dataset homepage'} and place it at {dest}"
            )
        hook = partial(check_archive, fmt=f.archive) if (f.sha256 is None and f.archive in _ARCHIVES) else None
        log(f"{name}: fetching {f.name}")
        res = download(
            urls, dest, sha256=f.sha256, size=f.size, verify=hook,
            retries=retries, timeout=timeout, progress=progress,
        )
        files.append({"name": f.name, "archive": f.archive, "sha256": res.sha256, "size": res.size,
                      "sha256_from_registry": f.sha256 is not None})
        if f.archive in _ARCHIVES:
            raw = d / "raw" / archive_stem(f.name)
            if not raw.exists():
                log(f"{name}: extracting {f.name}")
                safe_extract(dest, raw, fmt=f.archive)
            sources[f.name] = raw
        else:
            sources[f.name] = dest
    for leftover in [*d.glob(f"{_STAGE}*"), *d.glob(f"{_OLD}*")]:  # of a process killed mid-way
        shutil.rmtree(leftover, ignore_errors=True)
    stage = make_temp_dir(d, _STAGE)
    try:
        log(f"{name}: converting ({entry.converter})")
        record = _convert(entry, stage, name, files, sources)
        _publish(stage, d)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return PrepareResult(name, d, False, _lists(d, record), record)


def _convert(
    entry: DatasetEntry, stage: Path, name: str, files: list[dict[str, Any]], sources: dict[str, Path]
) -> dict[str, Any]:
    """Run the converter into ``stage`` and write its ``prepared.json`` there; returns the record."""
    summary = _CONVERTERS[entry.converter](entry, stage, sources)
    lists = {p.name: _count_lines(p) for p in sorted(stage.glob("*.txt"))}
    if not lists:
        raise DatasetError(f"{name}: the {entry.converter} converter produced no list file", stage)
    record = {
        "name": name,
        "title": entry.title,
        "licence": entry.licence,
        "converter": entry.converter,
        "fingerprint": entry.fingerprint(),
        "files": files,
        "lists": lists,
        "summary": summary,
        "prepared_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "cstrack_version": __version__,
    }
    atomic_write_json(stage / RECORD, record)
    return record


def _publish(stage: Path, d: Path) -> None:
    """Swap the complete outputs in ``stage`` into ``d``: the previous outputs (marker first) are
    moved aside, the new ones moved in (marker last), then the old ones deleted.  Every step is a
    rename; on a failure the renames done are undone, so ``d`` is as it was."""
    new = sorted((p.name for p in stage.iterdir()), key=lambda n: (n == RECORD, n))
    previous = [RECORD, IMAGES_DIR, LABELS_DIR, *sorted(p.name for p in d.glob("*.txt")), *new]
    old = make_temp_dir(d, _OLD)
    moved_out: list[str] = []
    moved_in: list[str] = []
    try:
        for n in dict.fromkeys(previous):
            if os.path.lexists(d / n):
                os.replace(d / n, old / n)
                moved_out.append(n)
        for n in new:
            os.replace(stage / n, d / n)
            moved_in.append(n)
    except BaseException:
        for n in reversed(moved_in):
            os.replace(d / n, stage / n)
        for n in reversed(moved_out):
            os.replace(old / n, d / n)
        shutil.rmtree(old, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)


def prepare_many(names: Iterable[str], root: str | Path, *, registry: Registry | None = None, **kwargs: Any) -> list[PrepareResult]:
    """:func:`prepare` every dataset of ``names`` (dataset or mixture names), in order."""
    reg = registry or load_registry()
    return [prepare(n, root, registry=reg, **kwargs) for n in reg.expand(names)]


def _lists(d: Path, rec: dict[str, Any]) -> dict[str, Path]:
    return {Path(n).stem: d / n for n in rec.get("lists", {})}


def _count_lines(p: Path) -> int:
    with open(p, encoding="utf-8") as fh:
        return sum(1 for line in fh if line.strip())


def _local_dir(entry: DatasetEntry, name: str, urls: tuple[str, ...]) -> Path:
    for u in urls:
        p = Path(resolve_url(u).removeprefix("file://"))
        if p.is_dir():
            return p
    raise DatasetError(f"{entry.name}: folder source {name!r} not found at any of {list(urls)}")


def check_benchmark_folder(name: str, entry: DatasetEntry, folder: Path) -> list[str]:
    """Check an extracted MOTChallenge copy before converting it; returns notes (lines to show).

    Every sequence the server expects for the entry's splits (``cstrack/eval/benchmarks.yaml``; MOT17:
    each DPM/FRCNN/SDP copy) must be a folder with ``seqinfo.ini`` and an image for every frame it
    declares.  A sequence shorter than the benchmark's (a trimmed copy) is noted, not refused.  The
    MOTChallenge archives publish no per-file checksums (the registry's are null), so none are checked
    here; an archive given to ``--from`` is checked against the registry's sha256 when it has one.
    Anything missing raises :class:`DatasetError` listing every problem."""
    from cstrack.data.mot import read_seqinfo
    from cstrack.data.names import canonical_dataset
    from cstrack.eval.submit import benchmarks, expected_sequences

    bench = canonical_dataset(name)
    found = {p.name: p for p in find_sequences(folder)}
    notes: list[str] = []
    problems: list[str] = []
    trimmed: list[str] = []
    if bench not in benchmarks():
        if not found:
            raise DatasetError(f"{name}: --from: no sequence folder (with seqinfo.ini) in it", folder)
        return [f"{len(found)} sequences found (no server file list for {name})"]
    splits = [str(s) for s in entry.options.get("splits", ["train"])]
    for split in splits:
        want = expected_sequences(bench, split)
        missing = [s for s in want if s not in found]
        if missing:
            problems.append(f"{split}: missing {len(missing)} of {len(want)} sequences: {', '.join(missing)}")
        for seq, length in want.items():
            if seq not in found:
                continue
            d = found[seq]
            try:
                info = read_seqinfo(d)
            except DatasetError as exc:
                problems.append(str(exc))
                continue
            frames = sum(1 for p in (d / info.im_dir).glob(f"*{info.im_ext}")) if (d / info.im_dir).is_dir() else 0
            if frames < info.seq_length:
                problems.append(f"{seq}: seqinfo.ini declares {info.seq_length} frames, {d / info.im_dir} has {frames}")
            if info.seq_length != length:
                trimmed.append(f"{seq} has {info.seq_length} frames, the benchmark's has {length}")
            if split == "train" and not (d / "gt" / "gt.txt").is_file():
                problems.append(f"{seq}: no gt/gt.txt (a train sequence)")
    if problems:
        raise DatasetError(f"{name}: --from: not a complete {bench} copy ({len(problems)} problem(s)): "
                           + "; ".join(problems), folder)
    if trimmed:
        more = f" (and {len(trimmed) - 3} more)" if len(trimmed) > 3 else ""
        notes.append(f"note: a trimmed copy, {len(trimmed)} sequence(s) shorter than the benchmark's: "
                     f"{'; '.join(trimmed[:3])}{more}; the server wants results for every frame")
    n = sum(len(expected_sequences(bench, s)) for s in splits)
    return [f"--from {folder}: all {n} {bench} sequences of {', '.join(splits)} present "
            "(no per-file checksums are published for MOTChallenge data)", *notes]


# --------------------------------------------------------------------------------------------
# converters: (entry, dataset folder, {file name: local path}) -> summary dict


def _convert_mot(entry: DatasetEntry, d: Path, sources: dict[str, Path]) -> dict[str, Any]:
    splits = list(entry.options.get("splits", ["train"]))
    pattern = str(entry.options.get("sequences", "*"))
    labels = str(entry.options.get("labels", pattern))
    n = 0
    for src in sources.values():
        for seq in find_sequences(src):
            split = seq.parent.name if seq.parent.name in ("train", "test") else "train"
            if split not in splits or not fnmatch.fnmatchcase(seq.name, pattern):
                continue
            _materialise_sequence(seq, d / IMAGES_DIR / split / seq.name)
            n += 1
    if n == 0:
        raise DatasetError(f"{entry.name}: no MOT sequence matching {pattern!r} in splits {splits}", d)
    label_splits = [s for s in splits if s != "test"] or splits  # test sequences have no ground truth
    summary = write_mot_labels(d, splits=label_splits, sequences=labels,
                               visibility=float(entry.options.get("visibility", 0.0)))
    out = _summary_dict(summary)
    out["tracking_sequences"] = n
    return out


def _materialise_sequence(src: Path, dst: Path) -> None:
    """Hard-link (or copy) a MOT sequence folder into our layout."""
    for p in sorted(src.rglob("*")):
        if p.is_file():
            link_or_copy(p, dst / p.relative_to(src))


def _convert_video(entry: DatasetEntry, d: Path, sources: dict[str, Path]) -> dict[str, Any]:
    opt = entry.options

    def source(key: str) -> Path | None:
        return sources[opt[key]] if key in opt else None

    conv = video_to_sequence(
        sources[opt["video"]], d / IMAGES_DIR / "train", str(opt["sequence"]),
        gt=source("gt"), det=source("det"), seqinfo=source("seqinfo"),
        frames=parse_frame_range(opt["frames"]) if "frames" in opt else None,
        frame_rate=opt.get("frame_rate"), overwrite=True,
    )
    summary = _summary_dict(write_mot_labels(d, splits=["train"]))
    summary["video_seconds"] = round(conv.seconds, 3)
    return summary


def _convert_synthetic(entry: DatasetEntry, d: Path, sources: dict[str, Path]) -> dict[str, Any]:
    cfg = SynthConfig(**dict(entry.options))
    generate(d / IMAGES_DIR / "train", cfg)
    return _summary_dict(write_mot_labels(d, splits=["train"]))


def _convert_crowdhuman(entry: DatasetEntry, d: Path, sources: dict[str, Path]) -> dict[str, Any]:
    image_dirs = [p for p in sources.values() if p.is_dir()]
    next_id = 0
    counts = {}
    for split, odgts in entry.options["splits"].items():
        images: list[Path] = []
        for odgt in odgts:
            imgs, next_id = crowdhuman_to_jde(
                sources[odgt], image_dirs, d, split, id_start=next_id, box=str(entry.options.get("box", "fbox"))
            )
            images += imgs
        write_list(d / f"{split}.txt", images)
        counts[split] = len(images)
    return {"images": counts, "identities": next_id}


def _convert_jde(entry: DatasetEntry, d: Path, sources: dict[str, Path]) -> dict[str, Any]:
    images = [img for src in sources.values() if src.is_dir() for img in index_jde_images(src)]
    if not images:
        raise DatasetError(f"{entry.name}: no image with a label file under an 'images' folder", d)
    write_list(d / "train.txt", images)
    return {"images": len(images)}


def _summary_dict(summary: Any) -> dict[str, Any]:
    return {
        "sequences": list(summary.sequences),
        "images": summary.images,
        "boxes": summary.boxes,
        "identities": summary.identities,
    }


_CONVERTERS: dict[str, Callable[[DatasetEntry, Path, dict[str, Path]], dict[str, Any]]] = {
    "mot": _convert_mot,
    "video": _convert_video,
    "synthetic": _convert_synthetic,
    "crowdhuman": _convert_crowdhuman,
    "jde": _convert_jde,
}
