"""MOTChallenge files: ``seqinfo.ini``, ground truth, detections and tracker results.

File formats (comma separated, one box per line, frames numbered from 1, boxes in ``tlwh`` pixels):

- gt, MOT16/17/20 (9 columns): ``frame, id, x, y, w, h, flag, class, visibility``
- gt, MOT15 (10 columns): ``frame, id, x, y, w, h, flag, world_x, world_y, world_z``
- det (7 or 10 columns): ``frame, -1, x, y, w, h, score[, -1, -1, -1]``
- result (10 columns, 6 or more accepted): ``frame, id, x, y, w, h, conf, -1, -1, -1``

Every reader validates before returning: a malformed line, a non-finite number, a negative width or
height, a frame outside ``1..seq_length`` or a duplicate id within a frame raises
:class:`~cstrack.errors.DatasetError` naming the file and the 1-based line.  Writers are atomic.
"""

from __future__ import annotations

import configparser
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from cstrack.errors import DatasetError
from cstrack.fsutil import atomic_path, atomic_write_text

Kind = Literal["gt", "det", "result"]


# --------------------------------------------------------------------------------------------
# seqinfo.ini


@dataclass(frozen=True)
class SeqInfo:
    """The ``[Sequence]`` section of a MOTChallenge ``seqinfo.ini``."""

    name: str
    frame_rate: float
    seq_length: int
    im_width: int
    im_height: int
    im_dir: str = "img1"
    im_ext: str = ".jpg"

    def image_path(self, seq_dir: str | Path, frame: int) -> Path:
        """Path of the image of ``frame`` (1-based): ``seq_dir/img1/000001.jpg``."""
        return Path(seq_dir) / self.im_dir / f"{frame:06d}{self.im_ext}"


_SEQINFO_KEYS = {
    "name": ("name", str),
    "framerate": ("frame_rate", float),
    "seqlength": ("seq_length", int),
    "imwidth": ("im_width", int),
    "imheight": ("im_height", int),
    "imdir": ("im_dir", str),
    "imext": ("im_ext", str),
}


def read_seqinfo(path: str | Path) -> SeqInfo:
    """Read ``seqinfo.ini`` (``path`` may be the file or the sequence folder)."""
    p = Path(path)
    if p.is_dir():
        p = p / "seqinfo.ini"
    if not p.is_file():
        raise DatasetError("seqinfo.ini not found", p)
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise DatasetError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", p) from None
    except configparser.Error as exc:
        raise DatasetError(f"unreadable ini: {' '.join(str(exc).split())}", p) from None
    if not parser.has_section("Sequence"):
        raise DatasetError("missing [Sequence] section", p)
    values: dict[str, Any] = {}  # typed by the converters of _SEQINFO_KEYS
    for key, raw in parser.items("Sequence"):
        if key not in _SEQINFO_KEYS:
            continue
        attr, conv = _SEQINFO_KEYS[key]
        try:
            values[attr] = conv(raw.strip())
        except ValueError:
            raise DatasetError(f"{key}={raw!r} is not a valid {conv.__name__}", p) from None
    for req in ("name", "frame_rate", "seq_length", "im_width", "im_height"):
        if req not in values:
            raise DatasetError(f"missing key {req.replace('_', '')!r}", p)
    info = SeqInfo(**values)
    if not math.isfinite(info.frame_rate) or info.frame_rate <= 0:
        raise DatasetError(f"frameRate={info.frame_rate:g} must be a finite number of frames per second above 0", p)
    if info.seq_length < 0:
        raise DatasetError(f"seqLength={info.seq_length} must be >= 0", p)
    if info.im_width <= 0 or info.im_height <= 0:
        raise DatasetError(f"imWidth={info.im_width}, imHeight={info.im_height}: must be positive", p)
    return info


def write_seqinfo(path: str | Path, info: SeqInfo) -> Path:
    """Write ``seqinfo.ini`` atomically (``path`` may be the file or the sequence folder)."""
    p = Path(path)
    if p.suffix != ".ini":
        p = p / "seqinfo.ini"
    rate = int(info.frame_rate) if float(info.frame_rate).is_integer() else info.frame_rate
    text = (
        "[Sequence]\n"
        f"name={info.name}\n"
        f"imDir={info.im_dir}\n"
        f"frameRate={rate}\n"
        f"seqLength={info.seq_length}\n"
        f"imWidth={info.im_width}\n"
        f"imHeight={info.im_height}\n"
        f"imExt={info.im_ext}\n"
    )
    return atomic_write_text(p, text)


# --------------------------------------------------------------------------------------------
# box tables


@dataclass
class MotTable:
    """Rows of a MOTChallenge file as column arrays (``N`` rows).

    - ``frame`` int64 [N] (1-based), ``id`` int64 [N] (-1 for detections)
    - ``tlwh`` float64 [N, 4] in pixels
    - ``conf`` float64 [N]: gt flag (1 = counted, 0 = ignore), detection score or result confidence
    - ``cls`` int64 [N]: class (MOT16/17/20 gt), -1 when the file has none
    - ``vis`` float64 [N]: visibility (MOT16/17/20 gt), -1 when the file has none
    - ``lines`` int64 [N]: 1-based source line of each row (0 for rows built in memory)
    - ``world`` float64 [N, 3]: the 3-d columns 8-10 of MOT15 gt / 10-column det and result files
      (world x, y, z; -1 when the file has none)
    """

    frame: np.ndarray
    id: np.ndarray
    tlwh: np.ndarray
    conf: np.ndarray
    cls: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    vis: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    lines: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    world: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), np.float64))

    def __post_init__(self) -> None:
        n = len(self.frame)
        self.frame = np.asarray(self.frame, dtype=np.int64).reshape(n)
        self.id = np.asarray(self.id, dtype=np.int64).reshape(n)
        self.tlwh = np.asarray(self.tlwh, dtype=np.float64).reshape(n, 4)
        self.conf = np.asarray(self.conf, dtype=np.float64).reshape(n)
        self.cls = _fill(self.cls, n, -1, np.int64)
        self.vis = _fill(self.vis, n, -1.0, np.float64)
        self.lines = _fill(self.lines, n, 0, np.int64)
        world = np.asarray(self.world, dtype=np.float64)
        self.world = np.full((n, 3), -1.0) if world.size == 0 and n > 0 else world.reshape(n, 3)

    def __len__(self) -> int:
        return len(self.frame)

    @classmethod
    def empty(cls) -> MotTable:
        return cls(np.zeros(0), np.zeros(0), np.zeros((0, 4)), np.zeros(0))

    def select(self, mask: np.ndarray) -> MotTable:
        """Rows where ``mask`` (bool [N] or index array) holds."""
        return MotTable(
            self.frame[mask], self.id[mask], self.tlwh[mask], self.conf[mask],
            self.cls[mask], self.vis[mask], self.lines[mask], self.world[mask],
        )

    def sorted(self) -> MotTable:
        """Rows ordered by (frame, id), stable."""
        order = np.lexsort((self.id, self.frame))
        return self.select(order)

    def frame_slices(self) -> dict[int, np.ndarray]:
        """``{frame: row indices}`` for every frame that has rows."""
        out: dict[int, np.ndarray] = {}
        if len(self) == 0:
            return out
        order = np.argsort(self.frame, kind="stable")
        frames = self.frame[order]
        bounds = np.flatnonzero(np.diff(frames)) + 1
        for chunk in np.split(order, bounds):
            out[int(self.frame[chunk[0]])] = chunk
        return out

    @staticmethod
    def concat(tables: Iterable[MotTable]) -> MotTable:
        ts = list(tables)
        if not ts:
            return MotTable.empty()
        return MotTable(
            np.concatenate([t.frame for t in ts]), np.concatenate([t.id for t in ts]),
            np.concatenate([t.tlwh for t in ts]), np.concatenate([t.conf for t in ts]),
            np.concatenate([t.cls for t in ts]), np.concatenate([t.vis for t in ts]),
            np.concatenate([t.lines for t in ts]), np.concatenate([t.world for t in ts]),
        )


def _fill(arr: np.ndarray, n: int, value: float, dtype: type) -> np.ndarray:
    a: np.ndarray = np.asarray(arr, dtype=dtype)
    if a.size == 0 and n > 0:
        return np.full(n, value, dtype=dtype)
    return a.reshape(n)


_MIN_COLS: dict[str, int] = {"gt": 6, "det": 6, "result": 6}


def read_mot(
    path: str | Path,
    kind: Kind,
    seq_length: int | None = None,
) -> MotTable:
    """Read and validate a gt / det / result file (see the module docstring for formats).

    ``seq_length`` (from ``seqinfo.ini``) bounds the frame numbers; ``None`` only requires >= 1.
    Blank lines are skipped.  Raises :class:`DatasetError` naming file and line.
    """
    return read_mot_columns(path, kind, seq_length)[0]


def read_mot_columns(
    path: str | Path,
    kind: Kind,
    seq_length: int | None = None,
) -> tuple[MotTable, np.ndarray]:
    """Like :func:`read_mot`, also returning every column of the file.

    The second value is the raw float64 array ``[N, ncols]`` in file order (blank lines skipped),
    row ``k`` being row ``k`` of the table: columns the table does not keep (a result's class
    column, world coordinates) stay available to callers that must check them (evaluation).
    """
    p = Path(path)
    if not p.is_file():
        raise DatasetError(f"{kind} file not found", p)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"not a text file ({exc.reason})", p) from None
    return parse_mot_columns(text, kind, seq_length, source=p)


def parse_mot(text: str, kind: Kind, seq_length: int | None = None, source: str | Path = "<text>") -> MotTable:
    """Parse the content of a MOT file; see :func:`read_mot`."""
    return parse_mot_columns(text, kind, seq_length, source)[0]


def _parse_rows_fast(text: str, kind: Kind) -> tuple[np.ndarray, np.ndarray] | None:
    """Rows of a well-formed file via a C reader, or ``None`` when anything looks unusual.

    Both readers convert with a correctly rounded string-to-double routine (CPython's for
    ``np.loadtxt``, fast_float for pandas >= 3.1; older pandas is asked for its round-trip
    converter), so the values are bit-identical to ``float()``.  Whatever they reject or turn
    into NaN (ragged rows, bad tokens, too few columns) goes through :func:`_parse_rows_checked`,
    which names the offending line.
    """
    raw_lines = text.splitlines()
    if not raw_lines:
        return None
    if len(raw_lines) >= _PANDAS_MIN_ROWS and all(raw_lines):
        arr = _read_csv_pandas(text)
        if arr is not None and arr.shape[0] == len(raw_lines) and arr.shape[1] >= _MIN_COLS[kind]:
            return arr, np.arange(1, len(raw_lines) + 1, dtype=np.int64)
    stripped = [ln.strip() for ln in raw_lines]
    kept = [ln for ln in stripped if ln]
    if not kept:
        return None
    try:
        arr = np.loadtxt(kept, delimiter=",", dtype=np.float64, ndmin=2, comments=None)
    except ValueError:
        return None
    if arr.shape[0] != len(kept) or arr.shape[1] < _MIN_COLS[kind]:
        return None
    if len(kept) == len(stripped):
        lines = np.arange(1, len(kept) + 1, dtype=np.int64)
    else:
        lines = np.flatnonzero(np.fromiter((bool(ln) for ln in stripped), bool, len(stripped))) + 1
    return arr, lines.astype(np.int64)


# Below this many rows np.loadtxt is as fast as pandas' reader and avoids importing pandas.
_PANDAS_MIN_ROWS = 2000


def _read_csv_pandas(text: str) -> np.ndarray | None:
    """All-float ``[N, ncols]`` array from pandas' C reader, ``None`` on any irregularity (NaN)."""
    try:
        import csv
        import io

        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is a project dependency
        return None
    kwargs: dict[str, object] = {}
    major, minor = (int(x) for x in pd.__version__.split(".")[:2])
    if (major, minor) < (3, 1):
        kwargs["float_precision"] = "round_trip"
    try:
        df = pd.read_csv(
            io.StringIO(text), sep=",", header=None, dtype=np.float64, engine="c",
            skip_blank_lines=False, quoting=csv.QUOTE_NONE, comment=None, **kwargs,
        )
    except (ValueError, pd.errors.ParserError):
        return None
    arr = df.to_numpy(dtype=np.float64)
    if np.isnan(arr).any():
        return None
    return arr


def _parse_rows_checked(text: str, kind: Kind, source: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Line-by-line parse that raises :class:`DatasetError` at the first malformed line."""
    rows: list[list[float]] = []
    line_nos: list[int] = []
    ncols_seen: int | None = None
    for line_no, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        parts = line.split(",")
        if len(parts) < _MIN_COLS[kind]:
            raise DatasetError(
                f"malformed line: {len(parts)} columns, need at least {_MIN_COLS[kind]}: {line[:80]!r}",
                source, line_no,
            )
        try:
            vals = [float(x) for x in parts]
        except ValueError:
            raise DatasetError(f"malformed line: non-numeric value in {line[:80]!r}", source, line_no) from None
        if ncols_seen is None:
            ncols_seen = len(vals)
        elif len(vals) != ncols_seen:
            raise DatasetError(
                f"malformed line: {len(vals)} columns where earlier lines have {ncols_seen}", source, line_no
            )
        rows.append(vals)
        line_nos.append(line_no)
    if not rows:
        return np.zeros((0, 0)), np.zeros(0, np.int64)
    return np.asarray(rows, dtype=np.float64), np.asarray(line_nos, dtype=np.int64)


MAX_INDEX = 2**53  # frames and ids: integers a float64 holds exactly


def parse_mot_columns(
    text: str, kind: Kind, seq_length: int | None = None, source: str | Path = "<text>"
) -> tuple[MotTable, np.ndarray]:
    """Parse the content of a MOT file; see :func:`read_mot_columns`."""
    fast = _parse_rows_fast(text, kind)
    arr, lines = fast if fast is not None else _parse_rows_checked(text, kind, source)
    if len(lines) == 0:
        return MotTable.empty(), np.zeros((0, 0))
    ncols = arr.shape[1]

    # Values used as numbers must be finite; trailing unused columns (world coordinates) may be anything.
    used = arr[:, : min(ncols, 9)]
    bad = ~np.isfinite(used).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DatasetError("non-finite value (NaN or inf)", source, int(lines[i]))
    frame_f, id_f = arr[:, 0], arr[:, 1]
    for col, name in ((frame_f, "frame"), (id_f, "id")):
        huge = np.abs(col) > MAX_INDEX  # beyond what a float holds exactly (and int64 wraps at 2**63)
        if huge.any():
            i = int(np.flatnonzero(huge)[0])
            raise DatasetError(f"{name} {float(col[i]):.0f} is too large (at most 2**53)", source, int(lines[i]))
        nonint = col != np.round(col)
        if nonint.any():
            i = int(np.flatnonzero(nonint)[0])
            raise DatasetError(f"{name} {float(col[i]):g} is not an integer", source, int(lines[i]))
    tlwh = arr[:, 2:6]
    neg = (tlwh[:, 2] < 0) | (tlwh[:, 3] < 0)
    if neg.any():
        i = int(np.flatnonzero(neg)[0])
        raise DatasetError(f"negative box size w={float(tlwh[i, 2]):g} h={float(tlwh[i, 3]):g}", source, int(lines[i]))
    frame = frame_f.astype(np.int64)
    low = frame < 1
    high = frame > seq_length if seq_length is not None else np.zeros_like(low)
    if seq_length == 0 and len(frame):  # the sequence is what is wrong, not the rows
        raise DatasetError(f"seqLength=0 in seqinfo.ini, yet this file has rows (from frame {frame[0]}): "
                           "fix seqLength in seqinfo.ini", source, int(lines[0]))
    if (low | high).any():
        i = int(np.flatnonzero(low | high)[0])
        limit = f"1..{seq_length}" if seq_length is not None else ">= 1"
        raise DatasetError(f"frame {frame[i]} outside the sequence ({limit})", source, int(lines[i]))
    ids = id_f.astype(np.int64)
    conf = arr[:, 6] if ncols > 6 else np.ones(len(arr))
    cls = np.full(len(arr), -1, np.int64)
    vis = np.full(len(arr), -1.0)
    world = np.full((len(arr), 3), -1.0)
    if kind == "gt" and ncols == 9:
        cls = arr[:, 7].astype(np.int64)
        vis = arr[:, 8]
    elif ncols >= 10:
        world = arr[:, 7:10]
    if kind != "det":
        _check_unique_ids(frame, ids, lines, source)
    return MotTable(frame, ids, tlwh, conf, cls, vis, lines, world), arr


def _check_unique_ids(frame: np.ndarray, ids: np.ndarray, lines: np.ndarray, source: str | Path) -> None:
    order = np.lexsort((lines, ids, frame))
    f, i = frame[order], ids[order]
    dup = (f[1:] == f[:-1]) & (i[1:] == i[:-1])
    if dup.any():
        k = int(np.flatnonzero(dup)[0])
        first, second = int(lines[order[k]]), int(lines[order[k + 1]])
        raise DatasetError(
            f"duplicate id {int(i[k + 1])} in frame {int(f[k + 1])} (first seen on line {first})",
            source, second,
        )


def _fmt(x: float) -> str:
    """Shortest text that reads back as the same float64 (``31.0`` -> ``31``)."""
    if float(x).is_integer() and abs(x) < 1e15:
        return str(int(x))
    return np.format_float_positional(float(x), trim="-")


def format_mot(table: MotTable, kind: Kind) -> str:
    """MOTChallenge text for ``table`` (rows in the table's order)."""
    out: list[str] = []
    t = table
    for k in range(len(t)):
        x, y, w, h = (_fmt(v) for v in t.tlwh[k])
        head = f"{int(t.frame[k])},{int(t.id[k])},{x},{y},{w},{h},{_fmt(t.conf[k])}"
        if kind == "gt" and int(t.cls[k]) >= 0:
            out.append(f"{head},{int(t.cls[k])},{_fmt(t.vis[k])}")
        else:
            wx, wy, wz = (_fmt(v) for v in t.world[k])
            out.append(f"{head},{wx},{wy},{wz}")
    return "\n".join(out) + ("\n" if out else "")


def write_mot(path: str | Path, table: MotTable, kind: Kind) -> Path:
    """Write ``table`` atomically in the MOTChallenge layout of ``kind``.

    gt rows with a class are written in the 9-column MOT16/17/20 layout, the others with 10 columns
    (the last three are ``world``, -1 unless read from a file that has them).
    """
    for k in range(len(table)):
        if not all(math.isfinite(v) for v in table.tlwh[k]):
            raise DatasetError(f"refusing to write a non-finite box in row {k}", path)
    with atomic_path(path) as tmp:
        tmp.write_text(format_mot(table, kind), encoding="utf-8")
    return Path(path)


def read_gt(path: str | Path, seq_length: int | None = None) -> MotTable:
    return read_mot(path, "gt", seq_length)


def read_det(path: str | Path, seq_length: int | None = None) -> MotTable:
    return read_mot(path, "det", seq_length)


def read_results(path: str | Path, seq_length: int | None = None) -> MotTable:
    return read_mot(path, "result", seq_length)


def write_results(path: str | Path, table: MotTable) -> Path:
    return write_mot(path, table, "result")


def counted_gt(table: MotTable, visibility: float = 0.0) -> MotTable:
    """The gt boxes MOTChallenge counts: flag 1 and, where classes exist, pedestrians (class 1).

    ``visibility`` drops boxes whose visibility is known and below it.
    """
    keep = table.conf > 0
    has_cls = table.cls >= 0
    keep &= ~has_cls | (table.cls == 1)
    if visibility > 0:
        keep &= (table.vis < 0) | (table.vis >= visibility)
    return table.select(keep)


@dataclass(frozen=True)
class Sequence:
    """A MOTChallenge sequence folder: ``seqinfo.ini``, ``img1/``, ``gt/gt.txt``, ``det/det.txt``."""

    root: Path
    info: SeqInfo

    @classmethod
    def open(cls, root: str | Path) -> Sequence:
        r = Path(root)
        if not r.is_dir():
            raise DatasetError("sequence folder not found", r)
        return cls(r, read_seqinfo(r))

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def gt_path(self) -> Path:
        return self.root / "gt" / "gt.txt"

    @property
    def det_path(self) -> Path:
        return self.root / "det" / "det.txt"

    def image_path(self, frame: int) -> Path:
        return self.info.image_path(self.root, frame)

    def has_images(self) -> bool:
        return self.image_path(1).is_file()

    def gt(self) -> MotTable:
        return read_gt(self.gt_path, self.info.seq_length)

    def det(self) -> MotTable:
        return read_det(self.det_path, self.info.seq_length)
