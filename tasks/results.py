"""Checks on a cached tracking record before it is trusted.

A cache hit only says "this input + config was tracked before".  The result it points to must still
be there with the same bytes; when the run writes to another folder than the cached one, the
result (and its timing record) are copied into place.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from cstrack.fsutil import atomic_path, atomic_write_json, sha256_file
from cstrack.storage import is_remote
from tasks.records import TrackRecord
from tasks.track import timing_path


def check_cached_result(record: TrackRecord, out_dir: str) -> str | None:
    """Make ``out_dir/<SEQ>.txt`` hold the cached result; ``None`` on success, else the problem
    (the caller then tracks the sequence again)."""
    if is_remote(out_dir):
        from tasks.remote import check_cached_remote

        return check_cached_remote(record, out_dir)
    name, want = record.sequence, record.result_sha256
    dest = Path(out_dir) / f"{name}.txt"
    if not (dest.is_file() and sha256_file(dest) == want):
        src = Path(record.result_path)
        if not src.is_file():
            return f"result file {src} is missing"
        if sha256_file(src) != want:
            return f"result file {src} changed since it was cached"
        with atomic_path(dest) as tmp:
            shutil.copyfile(src, tmp)
    timing = timing_path(out_dir, name)
    if not timing.is_file():
        atomic_write_json(timing, record.with_result(str(dest)).to_json())
    return None
