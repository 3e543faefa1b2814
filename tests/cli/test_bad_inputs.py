"""The CLI over a table of bad inputs (issue 20): every case must exit non-zero with ONE line on
stderr that names the culprit (file, line, parameter or source), no traceback, and leave every file
written before it exactly as it was (bytes and mode).

Cases run in-process (Typer's ``CliRunner``; ``python -m flows`` through its ``main``).  Each case
gets a fresh folder with a result file, a timing.json, a catalog and a metrics JSON already in it:
the "previously written outputs" that must survive.  docs/reliability.md lists the same cases.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cstrack.cli import app
from cstrack.paths import shared_data, sots_parity_dir
from tests.fake_crowdhuman import write_crowdhuman_downloads

HEAD8 = shared_data() / "mot15" / "PETS09-S2L1-head8"
TUD = shared_data() / "eval-golden" / "tud"
WEIGHTS = Path(__file__).resolve().parents[2] / "weights" / "cstrack-n_pets09.pt"
SEQ = HEAD8.name


class Env:
    """The per-case folder: ``root/out`` (earlier results), ``root/catalog`` (an ingested run) and
    lazily made inputs (a copy of PETS09-S2L1-head8, a checkpoint copy, an eval gt/results pair)."""

    def __init__(self, root: Path, catalog: Path) -> None:
        self.root = root
        self.out = root / "out"
        self.out.mkdir()
        (self.out / f"{SEQ}.txt").write_text("1,1,10,10,20,40,0.9,-1,-1,-1\n")
        (self.out / "timing.json").write_text('{"OLD": {"frames": 1, "fps": 1.0, "ms": {}}}\n')
        (self.out / "metrics.json").write_text('{"COMBINED": {"MOTA": 0.5}}\n')
        self.catalog = root / "catalog"
        shutil.copytree(catalog, self.catalog)

    def seq(self) -> Path:
        dst = self.root / "seqs" / SEQ
        if not dst.exists():
            shutil.copytree(HEAD8, dst)
        return dst

    def seqinfo(self, **changes: str) -> Path:
        seq = self.seq()
        text = (seq / "seqinfo.ini").read_text()
        for key, value in changes.items():
            text = "\n".join(f"{key}={value}" if line.startswith(f"{key}=") else line for line in text.splitlines())
        (seq / "seqinfo.ini").write_text(text + "\n")
        return seq

    def weights(self) -> Path:
        dst = self.root / "w" / WEIGHTS.name
        if not dst.exists():
            dst.parent.mkdir()
            shutil.copy(WEIGHTS, dst)
            shutil.copy(WEIGHTS.with_suffix(".json"), dst.with_suffix(".json"))
        return dst

    def eval_pair(self) -> tuple[Path, Path]:
        """gt root with the head8 sequence (no images needed) and a results folder scoring it."""
        gt = self.root / "gt"
        if not gt.exists():
            (gt / SEQ / "gt").mkdir(parents=True)
            shutil.copy(HEAD8 / "seqinfo.ini", gt / SEQ / "seqinfo.ini")
            shutil.copy(HEAD8 / "gt" / "gt.txt", gt / SEQ / "gt" / "gt.txt")
            (self.root / "res").mkdir()
            shutil.copy(HEAD8 / "gt" / "gt.txt", self.root / "res" / f"{SEQ}.txt")
        return gt, self.root / "res"

    def eval_args(self, *extra: str) -> list[str]:
        gt, res = self.eval_pair()
        return ["eval", "--gt-root", str(gt), "--results-root", str(res), "--preset", "mot15", *extra]

    def track_args(self, *extra: str) -> list[str]:
        return ["track", str(self.seq()), "--out", str(self.out), "--no-progress", *extra]

    def video(self, name: str = "clips/clip.mp4", frames: int = 3) -> Path:
        """A tiny MP4 (64x48, ``frames`` frames) at ``root/name``."""
        import cv2
        import numpy as np

        p = self.root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        writer = cv2.VideoWriter(str(p), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (64, 48))
        for k in range(frames):
            writer.write(np.full((48, 64, 3), (30 * k) % 256, np.uint8))
        writer.release()
        return p

    def file(self, name: str, content: bytes | str) -> Path:
        p = self.root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content.encode() if isinstance(content, str) else content)
        return p


@dataclass(frozen=True)
class Case:
    id: str
    make: Callable[[Env], list[str]]  # prepares the bad input, returns the argv
    expect: str  # substring of the error line: names the culprit
    exit_code: int = 2
    fault: Callable[[pytest.MonkeyPatch], None] | None = None  # injected after make(): a full disk


def _cut(p: Path, fraction: float) -> None:
    data = p.read_bytes()
    p.write_bytes(data[: int(len(data) * fraction)])


def _append(p: Path, text: str) -> None:
    p.write_text(p.read_text() + text)


def _track_corrupt_frame(e: Env) -> list[str]:
    _cut(e.seq() / "img1" / "000004.jpg", 0.3)  # the reproduction
    return e.track_args("--weights", str(e.weights()), "--size", "320x192", "--path", "eager")


def _track_seqinfo_size(e: Env) -> list[str]:
    e.seqinfo(imWidth="640")
    return e.track_args("--weights", str(e.weights()), "--size", "320x192", "--path", "eager")


def _track_gt_line(e: Env) -> list[str]:
    _append(e.seq() / "gt" / "gt.txt", "5,3,1,2\n")
    return e.track_args("--detections", "gt")


def _weights_no_sha(e: Env) -> list[str]:
    w = e.weights()
    rec = json.loads(w.with_suffix(".json").read_text())
    del rec["sha256"]
    w.with_suffix(".json").write_text(json.dumps(rec))
    return e.track_args("--weights", str(w))


def _weights_no_config(e: Env) -> list[str]:
    import torch

    from cstrack.fsutil import sha256_file

    w = e.weights()
    torch.save({"format": "cstrack-weights/1", "state_dict": {}}, w)
    rec = json.loads(w.with_suffix(".json").read_text())
    rec["sha256"] = sha256_file(w)
    w.with_suffix(".json").write_text(json.dumps(rec))
    return e.track_args("--weights", str(w))


def _weights_stale_sha(e: Env) -> list[str]:
    w = e.weights()
    with open(w, "ab") as fh:
        fh.write(b"\0")
    return e.track_args("--weights", str(w))


def _eval_mot15_default_preset(e: Env) -> list[str]:
    gt, res = e.eval_pair()
    return ["eval", "--gt-root", str(gt), "--results-root", str(res)]  # default preset mot17


def _eval_missing_result(e: Env) -> list[str]:
    args = e.eval_args()
    (e.root / "res" / f"{SEQ}.txt").unlink()
    return args


def _eval_zero_width(e: Env) -> list[str]:
    args = e.eval_args()
    _append(e.root / "res" / f"{SEQ}.txt", "3,99,10,10,0,40,1,-1,-1,-1\n")
    return args


def _eval_result_line(e: Env) -> list[str]:
    args = e.eval_args()
    _append(e.root / "res" / f"{SEQ}.txt", "3,99,ten,10,20,40,1,-1,-1,-1\n")
    return args


def _eval_result_not_utf8(e: Env) -> list[str]:
    args = e.eval_args()
    (e.root / "res" / f"{SEQ}.txt").write_bytes(b"1,1,\xff\xfe,2,3,4,1,-1,-1,-1\n")
    return args


def _eval_catalog_blocked(e: Env) -> list[str]:
    # a table folder not writable mid-ingest: root is not stopped by chmod, so a file is in the way
    shutil.rmtree(e.catalog / "events")
    (e.catalog / "events").write_text("in the way")
    return e.eval_args("--catalog", str(e.catalog), "--run-id", "new-run")


def _report_corrupt(e: Env) -> list[str]:
    part = next((e.catalog / "runs").rglob("part-0.parquet"))
    part.write_bytes(b"PAR1 this is not parquet")
    return ["report", "--results", str(e.catalog), "--out", str(e.root / "report")]


def _prepare_force_broken(e: Env) -> list[str]:
    from cstrack.data.prepare import prepare

    odgt = write_crowdhuman_downloads(e.root / "data")
    prepare("crowdhuman", e.root / "data", progress=False)  # a good dataset, then a broken line
    _append(odgt, '{"ID": "x", "gtboxes": [\n')
    return ["data", "prepare", "crowdhuman", "--root", str(e.root / "data"), "--force", "--quiet"]


def _convert_bad_video(e: Env) -> list[str]:
    video = e.file("clip.mp4", b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    return ["data", "convert-video", str(video), "--out", str(e.root / "conv"), "--name", "X"]


def _labels_bad_gt(e: Env) -> list[str]:
    seq = e.root / "ds" / "images" / "train" / SEQ
    shutil.copytree(HEAD8, seq)
    _append(seq / "gt" / "gt.txt", "2,1,1\n")
    return ["data", "labels", str(e.root / "ds")]


def _export_args(e: Env, *extra: str) -> list[str]:
    return ["export", "--variant", "cstrack-n", "--size", "320x192", "--out", str(e.root / "m.onnx"), *extra]


TRACK = [
    Case("track-truncated-frame", _track_corrupt_frame, "img1/000004.jpg: truncated JPEG data"),
    Case("track-seqinfo-size", _track_seqinfo_size, "000001.jpg: image is 768x576 but seqinfo.ini says 640x576"),
    Case("track-seqinfo-not-utf8", lambda e: (e.file(f"seqs/{SEQ}/seqinfo.ini", b"[Sequence]\nname=\xe9\xff\n"),
                                              e.track_args())[1], "seqinfo.ini: not UTF-8 text"),
    Case("track-seqinfo-missing", lambda e: ((e.seq() / "seqinfo.ini").unlink(), e.track_args())[1],
         f"{SEQ}: no images"),  # without seqinfo.ini the folder is taken as an image folder
    Case("track-seqinfo-no-framerate", lambda e: (e.file(f"seqs/{SEQ}/seqinfo.ini", "[Sequence]\nname=x\n"
                                                         "seqLength=8\nimWidth=768\nimHeight=576\n"),
                                                  e.track_args())[1], "seqinfo.ini: missing key 'framerate'"),
    Case("track-seqinfo-bad-int", lambda e: (e.seqinfo(seqLength="eight"), e.track_args())[1],
         "seqinfo.ini: seqlength='eight' is not a valid int"),
    Case("track-seqinfo-no-section", lambda e: (e.file(f"seqs/{SEQ}/seqinfo.ini", "name=x\n"), e.track_args())[1],
         "seqinfo.ini: unreadable ini"),
    Case("track-folder-missing", lambda e: ["track", str(e.root / "NOPE"), "--out", str(e.out)], "NOPE"),
    Case("track-size-too-small", lambda e: e.track_args("--size", "32x32"), "--size: 32x32 is too small"),
    Case("track-size-not-multiple", lambda e: e.track_args("--size", "100x96"), "multiples of 32, got 100x96"),
    Case("track-size-garbage", lambda e: e.track_args("--size", "big"), "--size: expected WxH"),
    Case("track-detections-bogus", lambda e: e.track_args("--detections", "bogus"), "--detections: expected one of"),
    Case("track-preset-bogus", lambda e: e.track_args("--detections", "gt", "--preset", "bogus"), "'bogus'"),
    Case("track-path-bogus", lambda e: e.track_args("--path", "bogus"), "--path: expected one of"),
    Case("track-weights-missing", lambda e: e.track_args("--weights", str(e.root / "nothing.pt")),
         "--weights: no such file"),
    Case("track-weights-random-bytes", lambda e: e.track_args("--weights", str(e.file("random.pt", bytes(range(256)) * 16))),
         "random.pt: not a torch checkpoint"),
    Case("track-variant-bogus-with-weights", lambda e: e.track_args("--variant", "bogus", "--weights", str(e.weights())),
         "--variant: unknown variant 'bogus'; known: "),
    Case("track-variant-bogus", lambda e: e.track_args("--variant", "bogus", "--weights", "random"),
         "unknown variant 'bogus'; known: "),
    Case("track-record-without-sha256", _weights_no_sha, "cstrack-n_pets09.json: weights record without a 'sha256'"),
    Case("track-checkpoint-without-config", _weights_no_config, "checkpoint without 'config'"),
    Case("track-weights-sha-mismatch", _weights_stale_sha, "cstrack-n_pets09.pt: sha256 mismatch"),
    Case("track-out-is-a-file", lambda e: ["track", str(e.seq()), "--detections", "gt",
                                           "--out", str(e.out / "timing.json")], "timing.json is a file, not a folder"),
    Case("track-gt-malformed-line", _track_gt_line, "gt/gt.txt:"),
    Case("track-public-no-det", lambda e: ((e.seq() / "det" / "det.txt").unlink(),
                                           e.track_args("--detections", "public"))[1], "det/det.txt: det file not found"),
]

EVAL = [
    Case("eval-mot15-gt-mot17-preset", _eval_mot15_default_preset, "use --preset mot15"),
    Case("eval-missing-result", _eval_missing_result, "pass --allow-missing to count it as empty, or --sequences"),
    Case("eval-zero-width-box", _eval_zero_width, f"{SEQ}.txt:"),
    Case("eval-result-malformed", _eval_result_line, "non-numeric value"),
    Case("eval-result-not-utf8", _eval_result_not_utf8, f"{SEQ}.txt: not a text file"),
    Case("eval-json-is-a-folder", lambda e: e.eval_args("--json", str(e.out)), "--json: "),
    Case("eval-json-below-a-file", lambda e: e.eval_args("--json", str(e.out / "metrics.json" / "m.json")),
         "metrics.json is a file"),
    Case("eval-config-missing", lambda e: e.eval_args("--config", str(e.root / "none.yaml")), "--config: "),
    Case("eval-config-bad-yaml", lambda e: e.eval_args("--config", str(e.file("c.yaml", "a: [1\n"))),
         "c.yaml:2 is not valid YAML"),
    Case("eval-config-not-mapping", lambda e: e.eval_args("--config", str(e.file("c.json", "[1, 2]"))),
         "c.json must hold a mapping"),
    Case("eval-preset-bogus", lambda e: e.eval_pair() and ["eval", "--gt-root", str(e.root / "gt"), "--results-root",
                                                         str(e.root / "res"), "--preset", "bogus"], "bogus"),
    Case("eval-gt-root-missing", lambda e: ["eval", "--gt-root", str(e.root / "nogt"), "--results-root", str(e.out)],
         "nogt: gt root is not a folder"),
    Case("eval-weights-missing", lambda e: e.eval_args("--weights", str(e.root / "w.pt")), "--weights: "),
    Case("eval-detection-mode-bogus", lambda e: e.eval_args("--detection-mode", "bogus"), "--detection-mode"),
    Case("eval-catalog-blocked", _eval_catalog_blocked, "events"),
    Case("eval-run-id-newline", lambda e: e.eval_args("--catalog", str(e.catalog), "--run-id", "new-run\n"),
         "run_id: 'new-run\\n' must be"),
    Case("eval-tag-newline", lambda e: e.eval_args("--catalog", str(e.catalog), "--tag", "nightly\n"),
         "tag: invalid name 'nightly\\n'"),
]

REPORT = [
    Case("report-empty-catalog", lambda e: ["report", "--results", str(e.file("empty/.keep", "").parent),
                                            "--out", str(e.root / "report")], "the catalog holds no run"),
    Case("report-missing-catalog", lambda e: ["report", "--results", str(e.root / "nocat"), "--out", str(e.root / "r")],
         "nocat: catalog not found"),
    Case("report-corrupt-parquet", _report_corrupt, "unreadable catalog table 'runs'"),
    Case("report-out-is-a-file", lambda e: ["report", "--results", str(e.catalog), "--out", str(e.out / "timing.json")],
         "--out: "),
]

DATA = [
    Case("data-prepare-unknown", lambda e: ["data", "prepare", "nosuchset", "--root", str(e.root / "data")],
         "nosuchset"),
    Case("data-prepare-force-broken-annotation", _prepare_force_broken, "annotation_val.odgt:2: malformed odgt record"),
    Case("data-prepare-manual-missing", lambda e: ["data", "prepare", "crowdhuman", "--root", str(e.root / "d2"), "--quiet"],
         "cannot be fetched automatically"),
    Case("data-convert-video-missing", lambda e: ["data", "convert-video", str(e.root / "none.mp4"), "--out",
                                                  str(e.root / "conv"), "--name", "X"], "none.mp4: video not found"),
    Case("data-convert-video-corrupt", _convert_bad_video, "clip.mp4: "),
    Case("data-convert-video-exists", lambda e: ["data", "convert-video", str(shared_data() / "raw" / "PETS09-S2L1.mp4"),
                                                 "--out", str(e.root), "--name", "out"], "already exists"),
    Case("data-convert-video-bad-frames", lambda e: ["data", "convert-video", str(shared_data() / "raw" / "PETS09-S2L1.mp4"),
                                                     "--out", str(e.root / "conv"), "--name", "X", "--frames", "9:3"],
         "--frames"),
    Case("data-labels-malformed-gt", _labels_bad_gt, "gt.txt:25: malformed line: 3 columns"),
    Case("data-synth-bad-size", lambda e: ["data", "synth", "--out", str(e.root / "syn"), "--size", "0x10"], "--size"),
]

EXPORT = [
    Case("export-weights-missing", lambda e: _export_args(e, "--weights", str(e.root / "gone.pt")),
         "gone.pt: weights file not found"),
    Case("export-weights-random-bytes", lambda e: _export_args(e, "--weights", str(e.file("r.pt", b"\x01" * 999))),
         "r.pt: not a torch checkpoint"),
    Case("export-variant-bogus", lambda e: ["export", "--variant", "bogus", "--weights", str(e.weights()),
                                            "--out", str(e.root / "m.onnx")], "--variant: unknown variant 'bogus'"),
    Case("export-format-bogus", lambda e: _export_args(e, "--format", "tflite"), "--format"),
    Case("export-calib-without-int8", lambda e: _export_args(e, "--calib", str(e.out)), "--calib"),
    Case("export-out-below-a-file", lambda e: ["export", "--variant", "cstrack-n", "--out",
                                               str(e.out / "timing.json" / "m.onnx")], "timing.json is a file"),
    Case("bench-images-missing", lambda e: ["bench-speed", "--variant", "cstrack-n", "--size", "320x192",
                                            "--images", str(e.root / "noimg")], "noimg"),
    Case("model-info-bogus", lambda e: ["model-info", "bogus"], "unknown variant 'bogus'"),
]

WEIGHTS_GROUP = [
    Case("weights-import-missing", lambda e: ["weights", "import", str(e.root / "orig.pt"), "--out", str(e.root / "o.pt")],
         "orig.pt: weights file not found"),
    Case("weights-import-random-bytes", lambda e: ["weights", "import", str(e.file("orig.pt", bytes(range(256)) * 4)),
                                                   "--out", str(e.root / "o.pt")], "orig.pt: not a torch checkpoint"),
    Case("weights-import-bad-arch", lambda e: ["weights", "import", str(e.weights()), "--out", str(e.root / "o.pt"),
                                               "--arch", str(e.file("a.json", "{not json"))], "--arch "),
    Case("weights-export-original-missing", lambda e: ["weights", "export-original", str(e.root / "none.pt"),
                                                       "--out", str(e.root / "x.pt")], "none.pt: weights file not found"),
]

def _track_video_folder(e: Env) -> list[str]:
    a, b = e.video("clips/a.mp4"), e.video("clips/b.mp4")
    return ["track", str(a), str(b), "--out", str(e.out), "--weights", "random", "--save-video", str(a.parent)]


def _weights_import_arch(e: Env) -> list[str]:
    arch = e.file("A.json", "{}")
    return ["weights", "import", str(e.weights()), "--arch", str(arch), "--out", str(e.root / "A.pt")]


def _weights_nan(e: Env) -> list[str]:
    import torch

    from cstrack.model.weights import load_weights, save_weights

    model = load_weights(e.weights())
    with torch.no_grad():
        model.state_dict()["detect.m.0.bias"].view(-1)[3] = float("inf")
    save_weights(e.root / "w" / "nan.pt", model)
    return e.track_args("--weights", str(e.root / "w" / "nan.pt"))


def _report_wrong_types(e: Env) -> list[str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    part = next((e.catalog / "runs").rglob("part-0.parquet"))
    t = pq.read_table(part)
    pq.write_table(t.set_column(t.column_names.index("source"), "source", pa.array([1.5] * len(t))), part)
    return ["report", "--results", str(e.catalog), "--out", str(e.root / "report")]


def _enospc(*args: object, **kwargs: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


class _FsyncFails:
    """``os`` for cstrack.fsutil whose fsync fails as on a full disk (the first write to finish)."""

    def __getattr__(self, name: str) -> object:
        return _enospc if name == "fsync" else getattr(os, name)


def _full_disk_fsync(m: pytest.MonkeyPatch) -> None:
    import cstrack.fsutil

    m.setattr(cstrack.fsutil, "os", _FsyncFails())


def _full_disk_parquet(m: pytest.MonkeyPatch) -> None:
    import catalog.store

    m.setattr(catalog.store.pq, "write_table", _enospc)


def _full_disk_torch(m: pytest.MonkeyPatch) -> None:
    import torch

    def save(*args: object, **kwargs: object) -> None:
        raise RuntimeError("[enforce fail at inline_container.cc:603] . unexpected pos 64 vs 0")

    m.setattr(torch, "save", save)


def _original(e: Env) -> Path:
    """A copy of the tiny original checkpoint of the parity fixtures."""
    shutil.copy(sots_parity_dir() / "tiny_state_dict.pt", e.root / "orig.pt")
    return e.root / "orig.pt"


def _read_only(m: pytest.MonkeyPatch) -> None:
    """Every folder read-only (chmod does not stop the root test user): the probe file fails."""
    import cstrack.pathrules

    def mkstemp(*args: object, dir: str = "", **kwargs: object) -> None:
        raise OSError(errno.EROFS, "Read-only file system", f"{dir}/.cstrack-probe-x")

    m.setattr(cstrack.pathrules.tempfile, "mkstemp", mkstemp)


FULL_DISK = [
    Case("track-out-read-only", lambda e: e.track_args("--detections", "gt"),
         "--out: cannot write to", fault=_read_only),
    Case("eval-json-read-only", lambda e: e.eval_args("--json", str(e.out / "m.json")),
         "--json: cannot write to", fault=_read_only),
    Case("track-full-disk-results", lambda e: e.track_args("--detections", "gt"),
         f"out/{SEQ}.txt: No space left on device", fault=_full_disk_fsync),
    Case("eval-json-full-disk", lambda e: e.eval_args("--json", str(e.root / "m.json")),
         "m.json: No space left on device", fault=_full_disk_fsync),
    Case("eval-catalog-full-disk", lambda e: e.eval_args("--catalog", str(e.catalog), "--run-id", "new-run"),
         "run_id=new-run/part-0.parquet: No space left on device", fault=_full_disk_parquet),
    Case("weights-import-full-disk", lambda e: ["weights", "import", str(_original(e)), "--out", str(e.root / "o.pt"),
                                                "--arch", str(sots_parity_dir() / "tiny_config.json")],
         "o.pt: write failed (", fault=_full_disk_torch),
]

def _frames(e: Env, *sizes: tuple[int, int]) -> Path:
    """An image folder ``frames/`` of PNGs ``f1.png``... of the given (width, height) sizes."""
    import cv2
    import numpy as np

    folder = e.root / "frames"
    folder.mkdir(exist_ok=True)
    for k, (w, h) in enumerate(sizes, start=1):
        cv2.imwrite(str(folder / f"f{k}.png"), np.full((h, w, 3), 60 * k, np.uint8))
    return folder


def _with_link(e: Env, target: str) -> list[str]:
    folder = _frames(e, (64, 48), (64, 48))
    (folder / "f3.png").symlink_to(folder / target)
    return ["track", str(folder), "--out", str(e.out), "--weights", "random", "--no-progress"]


def _png_declaring(w: int, h: int) -> bytes:
    """A structurally whole PNG (valid CRCs) whose header declares ``w`` x ``h`` pixels."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _huge_header(e: Env) -> list[str]:
    folder = _frames(e, (64, 48))
    (folder / "f0.png").write_bytes(_png_declaring(60000, 60000))
    return ["track", str(folder), "--out", str(e.out), "--weights", "random", "--no-progress"]


def _gt_huge_id(e: Env) -> list[str]:
    _append(e.seq() / "gt" / "gt.txt", "2,9223372036854775808,1,1,10,10,1,-1,-1,-1\n")
    return e.track_args("--detections", "gt")


# issue 24: silent inputs, messages
SILENT = [
    Case("track-images-of-two-sizes", lambda e: ["track", str(_frames(e, (64, 48), (64, 48), (32, 24))), "--out",
                                                 str(e.out), "--weights", "random", "--no-progress"],
         "f3.png: image is 32x24 but the first frame f1.png is 64x48"),
    Case("track-images-dangling-link", lambda e: _with_link(e, "gone.png"),
         "f3.png: symbolic link that does not resolve"),
    Case("track-images-looping-link", lambda e: _with_link(e, "f3.png"), "f3.png: symbolic link that does not resolve"),
    Case("track-image-huge-header", _huge_header, "f0.png: the header declares 60000x60000 pixels"),
    Case("track-seqinfo-framerate-nan", lambda e: (e.seqinfo(frameRate="nan"), e.track_args("--detections", "gt"))[1],
         "seqinfo.ini: frameRate=nan must be a finite number"),
    Case("track-seqinfo-framerate-inf", lambda e: (e.seqinfo(frameRate="inf"), e.track_args("--detections", "gt"))[1],
         "seqinfo.ini: frameRate=inf must be a finite number"),
    Case("track-seqinfo-seqlength-zero", lambda e: (e.seqinfo(seqLength="0"), e.track_args("--detections", "gt"))[1],
         "seqLength=0 in seqinfo.ini, yet this file has rows"),
    Case("track-gt-id-beyond-int64", _gt_huge_id, "gt.txt:25: id 9223372036854775808 is too large (at most 2**53)"),
    Case("track-fps-inf", lambda e: e.track_args("--detections", "gt", "--fps", "inf"),
         "--fps: expected a finite number, got inf"),
    Case("track-prefetch-negative", lambda e: e.track_args("--prefetch", "-1"),
         "--prefetch: got -1; input should be greater than or equal to 0"),
    Case("eval-workers-zero", lambda e: e.eval_args("--workers", "0"), "--workers: got 0; input should be greater"),
    Case("track-weights-inf", _weights_nan, "nan.pt: tensor 'detect.m.0.bias' holds 1 NaN/inf value(s)"),
    Case("report-wrong-column-types", _report_wrong_types,
         "part-0.parquet: catalog table 'runs': column 'source' is double, expected string"),
]

# issue 24: an output that names an input (or another output) is refused before any work
OVERWRITE = [
    Case("eval-json-onto-gt", lambda e: e.eval_args("--json", str(e.root / "gt" / SEQ / "gt" / "gt.txt")),
         "--json: ", ),
    Case("eval-json-onto-result", lambda e: e.eval_args("--json", str(e.root / "res" / f"{SEQ}.txt")),
         "lies inside the input --results-root"),
    Case("eval-json-onto-config", lambda e: e.eval_args("--config", str(e.file("c.json", "{}")),
                                                        "--json", str(e.root / "c.json")), "is the input --config"),
    Case("track-save-video-onto-video", lambda e: ["track", str(e.video()), "--out", str(e.out), "--weights", "random",
                                                   "--save-video", str(e.root / "clips" / "clip.mp4")],
         "--save-video: "),
    Case("track-save-video-folder-of-sources", _track_video_folder, "is the input SOURCE"),
    Case("track-out-inside-sequence", lambda e: ["track", str(e.seq()), "--detections", "gt",
                                                 "--out", str(e.seq() / "res")], "lies inside the input SOURCE"),
    Case("weights-import-out-src", lambda e: ["weights", "import", str(e.weights()), "--out", str(e.weights())],
         "is the input SRC"),
    Case("weights-import-out-json", lambda e: ["weights", "import", str(e.weights()), "--out", str(e.root / "w.json")],
         "are the same file"),
    Case("weights-import-arch-record", _weights_import_arch, "is the input --arch"),
    Case("weights-export-original-onto-weights", lambda e: ["weights", "export-original", str(e.weights()),
                                                            "--out", str(e.weights())], "is the input WEIGHTS"),
    Case("export-out-onto-weights", lambda e: ["export", "--weights", str(e.weights()), "--out", str(e.weights())],
         "is the input --weights"),
    Case("report-out-into-a-table", lambda e: ["report", "--results", str(e.catalog), "--out", str(e.catalog / "runs")],
         "is the input --results"),
    Case("data-convert-video-out-holds-video", lambda e: ["data", "convert-video", str(e.video()), "--out",
                                                         str(e.root), "--name", "clips"], "holds the input VIDEO"),
]

FLOWS = [
    Case("flows-params-missing", lambda e: ["track-all", str(e.root / "p.yaml")], "p.yaml: parameter file not found"),
    Case("flows-params-bad-yaml", lambda e: ["track-all", str(e.file("p.yaml", "a: [1\n"))], "p.yaml:2: not valid YAML"),
    Case("flows-params-not-utf8", lambda e: ["track-all", str(e.file("p.yaml", b"a: \xff\n"))], "p.yaml: not UTF-8"),
    Case("flows-params-not-mapping", lambda e: ["track-all", str(e.file("p.yaml", "- 1\n"))], "expected a mapping"),
    Case("flows-set-no-equals", lambda e: ["track-all", "--set", "model"], "--set 'model': expected KEY=VALUE"),
    Case("flows-set-bad-yaml", lambda e: ["track-all", "--set", "datasets=[a"], "--set datasets"),
    Case("flows-invalid-field", lambda e: ["evaluate", "--set", "preset=bogus"], "invalid evaluate parameters: "),
    Case("flows-unknown-flow", lambda e: ["bogus"], "invalid choice: 'bogus'"),
    # issue 24
    Case("flows-params-duplicate-key", lambda e: ["track-all", str(e.file("p.yaml", "run_name: a\ntag: t\nrun_name: b\n"))],
         "p.yaml:3: not valid YAML (duplicate key 'run_name' (first on line 1))"),
    Case("flows-retries-bool", lambda e: ["track-all", "--set", "datasets=[{name: pets09-s2l1}]", "--set", "retries=true"],
         "retries: Input should be a valid integer"),
    Case("flows-run-name-newline", lambda e: ["track-all", str(e.file("p.yaml", "datasets: [{name: x}]\nrun_name: |\n  abc\n"))],
         "invalid name 'abc\\n'"),
    Case("flows-results-inside-data", lambda e: ["track-all", "--set", "datasets=[{name: x}]", "--set",
                                                 f"data_root={e.root}", "--set", f"results_root={e.root}/res"],
         "lies inside the input data_root"),
    Case("flows-report-out-is-a-table", lambda e: ["report", "--set", f"catalog_root={e.catalog}", "--set",
                                                   f"out_dir={e.catalog}/runs"], "is the input catalog_root"),
]

CASES = [*TRACK, *EVAL, *REPORT, *DATA, *EXPORT, *WEIGHTS_GROUP, *OVERWRITE, *SILENT, *FULL_DISK, *FLOWS]


def _snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    return {p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mode)
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def catalog_seed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("seed") / "catalog"
    res = CliRunner().invoke(app, ["eval", "--gt-root", str(TUD / "gt"), "--results-root",
                                   str(TUD / "trackers/motmetrics-test/data"), "--preset", "mot15",
                                   "--catalog", str(root), "--run-id", "seed-run"])
    assert res.exit_code == 0, res.output
    return root


def _run(case: Case, argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    if case.id.startswith("flows-"):
        from flows.__main__ import main as flows_main

        capsys.readouterr()
        try:
            code = flows_main(argv)
        except SystemExit as exc:  # argparse
            code = int(exc.code or 0)
        cap = capsys.readouterr()
        return code, cap.err, ""
    res = CliRunner().invoke(app, argv)
    bug = ""
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        bug = "".join(traceback.format_exception(res.exception))
    return res.exit_code, res.stderr, bug


def test_the_table_covers_every_command_group() -> None:
    assert len(CASES) >= 40 and len({c.id for c in CASES}) == len(CASES)
    groups = {c.id.split("-")[0] for c in CASES}
    assert {"track", "eval", "report", "data", "export", "weights", "flows"} <= groups
    assert any("weights" in c.id or "checkpoint" in c.id or "record" in c.id for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path: Path, catalog_seed: Path, capsys: pytest.CaptureFixture[str],
                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CSTRACK_DEBUG", raising=False)
    env = Env(tmp_path, catalog_seed)
    argv = case.make(env)
    if case.fault is not None:
        case.fault(monkeypatch)
    before = _snapshot(tmp_path)
    folders = sorted(p for p in tmp_path.rglob("*") if p.is_dir())
    code, err, bug = _run(case, argv, capsys)
    assert not bug, f"uncaught exception (a traceback):\n{bug}"
    # informational lines (the effective settings, warnings, notes) may come before the error line
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith(("settings: ", "warning: ", "note: "))]
    assert code == case.exit_code, (code, err)
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert case.expect in lines[0], lines[0]
    assert "Traceback" not in err
    after = _snapshot(tmp_path)
    changed = [k for k in before if after.get(k) != before[k]]
    assert not changed, f"previously written files changed: {changed}"
    new = [k for k in after if k not in before and not k.endswith(".prepare.lock")]
    assert not new, f"files left behind by a failed command: {new}"
    if case.fault is not None:  # not even an empty folder (e.g. a catalog partition)
        assert sorted(p for p in tmp_path.rglob("*") if p.is_dir()) == folders


class _FillsUp:
    """A text file that fails like a full disk at its ``limit``-th write."""

    def __init__(self, fh: object, limit: int) -> None:
        self.fh, self.limit, self.writes = fh, limit, 0

    def write(self, text: str) -> int:
        self.writes += 1
        if self.writes >= self.limit:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self.fh.write(text)  # type: ignore[attr-defined, no-any-return]

    def __getattr__(self, name: str) -> object:
        return getattr(self.fh, name)


def test_a_full_disk_while_tracking_keeps_the_frames_so_far(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """--jsonl fails at frame 4 (disk full): the error names the file, the 4 frames tracked are written
    to the result file and timing.json (earlier entries kept), no hidden temporary file is left."""
    import builtins

    import cstrack.model.detector
    import cstrack.run.sinks
    from tests.fake_detector import FakeDetector

    monkeypatch.setattr(cstrack.model.detector, "build_detector", lambda *a, **k: FakeDetector(a[2]))
    env = Env(tmp_path, _empty_catalog(tmp_path))
    clip = env.video("clips/clip.mp4", frames=8)
    monkeypatch.setattr(cstrack.run.sinks, "open", lambda *a, **k: _FillsUp(builtins.open(*a, **k), 4), raising=False)  # noqa: SIM115
    res = CliRunner().invoke(app, ["track", str(clip), "--weights", "random", "--size", "64x64", "--path", "eager",
                                   "--out", str(env.out), "--jsonl", str(tmp_path / "clip.jsonl"), "--no-progress"])
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("error: ")]
    assert res.exit_code == 2 and len(lines) == 1, res.output
    assert lines[0] == f"error: {tmp_path / 'clip.jsonl'}: No space left on device"
    timing = json.loads((env.out / "timing.json").read_text())
    assert timing["OLD"] == {"frames": 1, "fps": 1.0, "ms": {}} and timing["clip"]["frames"] == 4
    assert (env.out / "clip.txt").is_file() and not (tmp_path / "clip.jsonl").exists()
    assert not [p for p in tmp_path.rglob(".*") if p.is_file()]


def _empty_catalog(tmp_path: Path) -> Path:
    (tmp_path / "seed-catalog").mkdir()
    return tmp_path / "seed-catalog"
