"""The CLI over a table of bad inputs (issue 20): every case must exit non-zero with ONE line on
stderr that names the culprit (file, line, parameter or source), no traceback, and leave every file
written before it exactly as it was (bytes and mode).

Cases run in-process (Typer's ``CliRunner``; ``python -m flows`` through its ``main``).  Each case
gets a fresh folder with a result file, a timing.json, a catalog and a metrics JSON already in it:
the "previously written outputs" that must survive.  docs/reliability.md lists the same cases.
"""

from __future__ import annotations

import json
import shutil
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cstrack.cli import app
from cstrack.paths import shared_data
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
         "random.pt: not a PyTorch checkpoint"),
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
         "r.pt: not a PyTorch checkpoint"),
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
                                                   "--out", str(e.root / "o.pt")], "orig.pt: not a PyTorch checkpoint"),
    Case("weights-import-bad-arch", lambda e: ["weights", "import", str(e.weights()), "--out", str(e.root / "o.pt"),
                                               "--arch", str(e.file("a.json", "{not json"))], "--arch "),
    Case("weights-export-original-missing", lambda e: ["weights", "export-original", str(e.root / "none.pt"),
                                                       "--out", str(e.root / "x.pt")], "none.pt: weights file not found"),
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
]

CASES = [*TRACK, *EVAL, *REPORT, *DATA, *EXPORT, *WEIGHTS_GROUP, *FLOWS]


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
    before = _snapshot(tmp_path)
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
