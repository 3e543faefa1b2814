"""MOT17's detector copies: track each distinct image sequence once, write every name the server wants.

MOT17 lists every sequence three times (``MOT17-02-DPM``, ``-FRCNN``, ``-SDP``): the same images
with another detector's public boxes.  With private (or gt) detections the three runs would be
identical, so a dataset selection with ``detector_copies: once`` tracks one copy (SDP first) and,
after tracking, copies its result file to the other names (``cstrack submit --benchmark MOT17``
needs all 21 train or test files).  Copies are collapsed only when their images really are the same
(frame count and the first and last images' sha256); public mode reads each copy's own boxes and is
refused by the parameters.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from pathlib import Path

from cstrack.data.mot import read_seqinfo
from cstrack.fsutil import atomic_path, sha256_file
from cstrack.storage import Location
from flows.params import DatasetSelection
from tasks.records import SequenceOutcome, SequenceRef

DETECTORS: tuple[str, ...] = ("SDP", "FRCNN", "DPM")  # the copy tracked first: SDP (its boxes train the model)
_COPY = re.compile(r"^(?P<stem>.+)-(?P<det>DPM|FRCNN|SDP)$")

Copies = dict[tuple[str, str, str], list[str]]
"""``{(dataset, split, tracked sequence): [the other copies' names]}``"""


def image_key(ref: SequenceRef) -> tuple[int, str, str] | None:
    """What makes two copies the same images: frame count and the first and last images' sha256."""
    try:
        info = read_seqinfo(ref.seq_dir)
        first, last = info.image_path(ref.seq_dir, 1), info.image_path(ref.seq_dir, info.seq_length)
        return info.seq_length, sha256_file(first), sha256_file(last)
    except (OSError, ValueError):
        return None


def collapse(seqs: Sequence[SequenceRef], selections: Sequence[DatasetSelection]) -> tuple[list[SequenceRef], Copies]:
    """``seqs`` with one copy per distinct image sequence of the ``detector_copies: once`` selections,
    and the names each kept copy stands for.  Order is kept (longest first)."""
    once = {d.name for d in selections if d.detector_copies == "once"}
    groups: dict[tuple[str, str, str], list[SequenceRef]] = {}
    for s in seqs:
        m = _COPY.match(s.name)
        if s.dataset in once and s.kind == "images" and m:
            groups.setdefault((s.dataset, s.split, m["stem"]), []).append(s)
    drop: set[tuple[str, str, str]] = set()
    copies: Copies = {}
    for members in groups.values():
        members = sorted(members, key=lambda r: DETECTORS.index(r.name.rsplit("-", 1)[1]))
        keep, key = members[0], image_key(members[0])
        same = [r for r in members[1:] if key is not None and image_key(r) == key]
        if same:
            copies[(keep.dataset, keep.split, keep.name)] = [r.name for r in same]
            drop |= {(r.dataset, r.split, r.name) for r in same}
    return [s for s in seqs if (s.dataset, s.split, s.name) not in drop], copies


def write_copies(outcomes: Sequence[SequenceOutcome], run_dir: Path | Location, copies: Copies) -> list[str]:
    """Copy each tracked (or cached) result ``<run_dir>/<dataset>/<split>/<SEQ>.txt`` to the names
    it stands for (atomically); returns the files written, as ``dataset/split/NAME``."""
    written = []
    for o in outcomes:
        others = copies.get((o.seq.dataset, o.seq.split, o.seq.name), [])
        if o.record is None or not others:
            continue
        folder = run_dir / o.seq.dataset / o.seq.split
        src = folder / f"{o.seq.name}.txt"
        for name in others:
            if isinstance(folder, Location):  # s3:// results: one PUT of the same bytes
                (folder / f"{name}.txt").write_bytes(Location.of(src).read_bytes())
                written.append(f"{o.seq.dataset}/{o.seq.split}/{name}")
                continue
            with atomic_path(folder / f"{name}.txt") as tmp:
                shutil.copyfile(str(src), tmp)
            written.append(f"{o.seq.dataset}/{o.seq.split}/{name}")
    return written
