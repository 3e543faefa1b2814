"""Frame ranges: ``A:B`` options and the "half" train/val protocol."""

from __future__ import annotations

import re

from cstrack.errors import ConfigError


def parse_frame_range(text: str, param: str = "--frames") -> tuple[int, int | None]:
    """Parse ``A:B`` (1-based, inclusive), ``A:`` (to the end) or ``:B`` into ``(A, B or None)``."""
    m = re.fullmatch(r"\s*(\d*)\s*:\s*(\d*)\s*", text)
    if not m or not (m.group(1) or m.group(2)):
        raise ConfigError(f"{param}: expected A:B with 1-based inclusive frame numbers, got {text!r}")
    first = int(m.group(1)) if m.group(1) else 1
    last = int(m.group(2)) if m.group(2) else None
    if first < 1 or (last is not None and last < first):
        raise ConfigError(f"{param}: need 1 <= A <= B, got {text!r}")
    return first, last


def half_split(seq_length: int) -> tuple[range, range]:
    """The "half" protocol: frames ``1..n//2`` train, ``n//2+1..n`` val (PETS09: 1-397 / 398-795)."""
    if seq_length < 2:
        raise ConfigError(f"half split: a sequence needs at least 2 frames, got {seq_length}")
    mid = seq_length // 2
    return range(1, mid + 1), range(mid + 1, seq_length + 1)
