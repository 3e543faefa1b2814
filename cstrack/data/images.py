"""Checked image reading: a frame whose JPEG or PNG data is truncated or corrupt is an error
naming the file, never a half-grey picture that passes silently.

OpenCV's decoders accept a JPEG cut short (libjpeg pads the missing rows with grey and prints
"Premature end of JPEG file" without the file name), so :func:`read_image` reads the bytes, checks
the container structure first and decodes only what is whole:

- **JPEG**: the marker segments are walked from the start-of-image marker to the end-of-image
  marker; a segment whose length runs past the end, a missing end-of-image marker (truncation),
  a byte that should be a marker and is not, or an invalid marker inside the entropy-coded data
  is an error.  Bytes after the end-of-image marker are ignored (some cameras pad files).
- **PNG**: the signature and every chunk's length and CRC-32 are checked up to ``IEND``.
- Any format: ``cv2.imdecode`` must return a picture.

Not detectable from the structure: bit errors inside JPEG entropy-coded data that keep every
marker valid (the decoder cannot tell them from picture content).
"""

from __future__ import annotations

import zlib
from pathlib import Path

import cv2
import numpy as np

from cstrack.errors import DatasetError

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SOI, _EOI, _SOS, _TEM = 0xD8, 0xD9, 0xDA, 0x01
_RST0, _RST7 = 0xD0, 0xD7


class CorruptImageError(DatasetError):
    """An image file that is truncated, structurally corrupt or not decodable."""


def jpeg_problem(buf: np.ndarray) -> str | None:
    """What is wrong with the JPEG bytes ``buf`` (uint8 [N]), or None when its structure is whole."""
    n = len(buf)
    if n < 4 or buf[0] != 0xFF or buf[1] != _SOI:
        return "not a JPEG (no start-of-image marker)"
    i = 2
    while True:
        if i >= n:
            return "truncated JPEG data (no end-of-image marker)"
        if buf[i] != 0xFF:
            return f"corrupt JPEG data (byte {i} should start a marker)"
        while i < n and buf[i] == 0xFF:  # fill bytes
            i += 1
        if i >= n:
            return "truncated JPEG data (no end-of-image marker)"
        marker = int(buf[i])
        i += 1
        if marker == _EOI:
            return None
        if marker == 0x00 or marker == _SOI:
            return f"corrupt JPEG data (invalid marker 0xFF{marker:02X} at byte {i - 2})"
        if _RST0 <= marker <= _RST7 or marker == _TEM:  # stand-alone markers
            continue
        if i + 2 > n:
            return "truncated JPEG data (segment header cut short)"
        length = (int(buf[i]) << 8) | int(buf[i + 1])
        if length < 2:
            return f"corrupt JPEG data (segment length {length} at byte {i})"
        if i + length > n:
            return "truncated JPEG data (a segment runs past the end of the file)"
        i += length
        if marker == _SOS:  # entropy-coded data up to the next marker that is not a restart / stuffed byte
            rest = buf[i:]
            ff = np.flatnonzero(rest[:-1] == 0xFF)
            following = rest[ff + 1]
            data = (following == 0x00) | (following == 0xFF) | ((following >= _RST0) & (following <= _RST7))
            ends = ff[~data]
            if len(ends) == 0:
                return "truncated JPEG data (no end-of-image marker)"
            i += int(ends[0])


def png_problem(buf: np.ndarray) -> str | None:
    """What is wrong with the PNG bytes ``buf`` (uint8 [N]), or None when every chunk is whole."""
    data = buf.tobytes()
    if not data.startswith(_PNG_SIGNATURE):
        return "not a PNG (bad signature)"
    i, n = len(_PNG_SIGNATURE), len(data)
    while True:
        if i + 8 > n:
            return "truncated PNG data (no IEND chunk)"
        length = int.from_bytes(data[i : i + 4], "big")
        kind = data[i + 4 : i + 8]
        end = i + 8 + length
        if end + 4 > n:
            return f"truncated PNG data (chunk {kind!r} runs past the end of the file)"
        crc = int.from_bytes(data[end : end + 4], "big")
        if zlib.crc32(data[i + 4 : end]) != crc:
            return f"corrupt PNG data (CRC mismatch in chunk {kind.decode('latin-1')!r} at byte {i})"
        if kind == b"IEND":
            return None
        i = end + 4


def image_problem(buf: np.ndarray) -> str | None:
    """Structural problem of encoded image bytes (JPEG and PNG are checked; other formats pass)."""
    head = buf[:8].tobytes()
    if head.startswith(b"\xff\xd8"):
        return jpeg_problem(buf)
    if head.startswith(_PNG_SIGNATURE[:4]):
        return png_problem(buf)
    return None


# The most pixels a frame may declare: 16384 x 16384.  A header claiming more (60000 x 60000) is
# refused before decoding; OpenCV would fail with its own error after trying to allocate it.
MAX_PIXELS = 1 << 28
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # start-of-frame markers (not DHT, JPG, DAC)


def declared_size(buf: np.ndarray) -> tuple[int, int] | None:
    """``(width, height)`` a JPEG's start-of-frame or a PNG's IHDR declares, read from the header
    without decoding; None for other formats or when not found."""
    data = buf[: 1 << 16].tobytes()
    if data.startswith(_PNG_SIGNATURE) and len(data) >= 24 and data[12:16] == b"IHDR":
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if not data.startswith(b"\xff\xd8"):
        return None
    i = 2
    while i + 9 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        if marker in _SOF:
            return int.from_bytes(data[i + 7 : i + 9], "big"), int.from_bytes(data[i + 5 : i + 7], "big")
        if marker == _SOS:
            return None
        i += 2 + int.from_bytes(data[i + 2 : i + 4], "big")
    return None


def read_image(path: str | Path, expect_size: tuple[int, int] | None = None) -> np.ndarray:
    """Decode ``path`` as a BGR uint8 ``[H, W, 3]`` picture, after the structural checks above.

    ``expect_size`` ``(width, height)`` (e.g. seqinfo's imWidth/imHeight) must match the picture.
    Raises :class:`CorruptImageError` naming the file: missing, empty, truncated, corrupt,
    declaring more than :data:`MAX_PIXELS` pixels, undecodable or of the wrong size.
    """
    p = Path(path)
    try:
        buf = np.fromfile(p, dtype=np.uint8)
    except FileNotFoundError:
        raise CorruptImageError("image not found", p) from None
    except OSError as exc:
        raise CorruptImageError(f"image unreadable ({exc.strerror or exc})", p) from None
    if len(buf) == 0:
        raise CorruptImageError("empty image file", p)
    problem = image_problem(buf)
    if problem is not None:
        raise CorruptImageError(problem, p)
    size = declared_size(buf)
    if size is not None and size[0] * size[1] > MAX_PIXELS:
        raise CorruptImageError(f"the header declares {size[0]}x{size[1]} pixels, more than the {MAX_PIXELS} "
                                "a frame may have (corrupt header?)", p)
    try:
        img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    except cv2.error as exc:  # OpenCV's own limits and decoder failures: one line naming the file
        raise CorruptImageError(f"not a decodable image ({str(exc).strip().splitlines()[-1]})", p) from None
    if img is None:
        raise CorruptImageError("not a decodable image", p)
    if expect_size is not None and (img.shape[1], img.shape[0]) != tuple(expect_size):
        raise CorruptImageError(
            f"image is {img.shape[1]}x{img.shape[0]} but seqinfo.ini says {expect_size[0]}x{expect_size[1]}", p
        )
    return img
