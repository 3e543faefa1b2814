"""``cstrack report`` tables and figures from a small synthetic catalog: golden files, determinism,
ablation labels."""

from __future__ import annotations

import datetime as dt
import os
import struct
from pathlib import Path

import pytest

import catalog
from catalog.ingest import RunInfo, run_row
from catalog.report import build_report
from catalog.report.labels import ablation_tables, setting_label
from cstrack.eval.result import METRIC_FIELDS
from cstrack.paths import shared_dir
from cstrack.provenance import Provenance

GOLDEN = Path(__file__).parent / "golden" / "report"
REFERENCE = shared_dir() / "reference"
PROV = Provenance("0123abc", False, {"numpy": "2.4.6"}, "3.11.7", "Linux", "Test CPU", 2, None)
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
TEXT_FILES = [f"{n}.{e}" for n in ("table_vi", "ablations", "upper_bound") for e in ("md", "csv", "tex")] + ["report.md"]


def _metrics(run_id: str, seq: str, mota: float, idf1: float, hota: float, idsw: int, fps: float | None) -> dict:
    row = dict.fromkeys(METRIC_FIELDS, 0)
    row.update({k: 0.5 for k in ("DetA", "AssA", "LocA", "DetRe", "DetPr", "AssRe", "AssPr", "MOTP")})
    row.update(run_id=run_id, sequence=seq, MOTA=mota, IDF1=idf1, IDP=idf1 + 0.01, IDR=idf1 - 0.01, HOTA=hota,
               IDSW=idsw, FP=100 + idsw, FN=1000 + idsw, TP=5000, MT=30, PT=50, ML=20, gt_ids=100,
               fps=fps, read_ms=None, preprocess_ms=None, forward_ms=None, postprocess_ms=None,
               associate_ms=None)
    return row


RUNS = [
    # run id, RunInfo extras, COMBINED (MOTA, IDF1, HOTA, IDSW, fps)
    ("ours-l-private", dict(tracker="cstrack-l", label="CSTrack-L (ours)", variant="cstrack-l", dataset="MOT17",
                            split="half-val", detection_mode="private",
                            config={"model": {"ren": "ren"}, "ablation": {"tables": ["II", "III"]}}),
     (0.662, 0.705, 0.581, 540, 0.74)),
    ("ours-l-gt", dict(tracker="cstrack-l", label="CSTrack-L (ours)", variant="cstrack-l", dataset="MOT17",
                       split="half-val", detection_mode="gt", config={"model": {"ren": "ren"}}),
     (0.981, 0.955, 0.902, 160, 0.9)),
    ("ours-noren", dict(tracker="cstrack-l", label="CSTrack-L w/o REN", variant="cstrack-l", dataset="MOT17",
                        split="half-val", detection_mode="private",
                        config={"model": {"ren": "none"}, "ablation": {"table": "II"}}),
     (0.648, 0.689, 0.57, 735, 0.81)),
    ("ours-eta-a", dict(tracker="cstrack-l", label="eta 0.1 seed a", variant="cstrack-l", dataset="MOT17",
                        split="half-val", detection_mode="private", config={"loss": {"eta": 0.1}, "ablation": "V"}),
     (0.65, 0.69, 0.57, 640, None)),
    ("ours-eta-b", dict(tracker="cstrack-l", label="eta 0.1 seed b", variant="cstrack-l", dataset="MOT17",
                        split="half-val", detection_mode="private", config={"loss": {"eta": 0.1}, "ablation": "V"}),
     (0.656, 0.692, 0.575, 645, None)),
    ("ours-s-mot20", dict(tracker="cstrack-s", label="CSTrack-S (ours)", variant="cstrack-s", dataset="MOT20",
                          split="train", detection_mode="private", config={}),
     (0.601, 0.6, 0.49, 3100, 1.7)),
    ("ext-mpntrack", dict(tracker="MPNTrack", source="external", dataset="MOT20", split="train", config={}),
     (0.6587, 0.6769, 0.5468, 53, None)),
]


def make_catalog(root: Path) -> None:
    for run_id, extra, (mota, idf1, hota, idsw, fps) in RUNS:
        info = RunInfo(run_id=run_id, started_at=T0, ended_at=T0 + dt.timedelta(hours=1), **extra)
        catalog.write("runs", [run_row(info, PROV)], root)
        seqs = ["SEQ-A", "SEQ-B"] if extra["dataset"] == "MOT17" else ["MOT20-01"]
        rows = [_metrics(run_id, "COMBINED", mota, idf1, hota, idsw, fps)]
        rows += [_metrics(run_id, s, mota - 0.01 * k, idf1 + 0.01 * k, hota, idsw // 2, fps)
                 for k, s in enumerate(seqs)]
        catalog.write("sequence_metrics", rows, root)


@pytest.fixture(scope="module")
def report_dirs(tmp_path_factory):
    base = tmp_path_factory.mktemp("report")
    make_catalog(base / "catalog")
    outs = [base / "out1", base / "out2"]
    files = [build_report(base / "catalog", o, REFERENCE) for o in outs]
    return outs, files


def test_report_files_match_golden(report_dirs):
    (out, _), _ = report_dirs
    if os.environ.get("CSTRACK_UPDATE_GOLDEN"):
        GOLDEN.mkdir(parents=True, exist_ok=True)
        for name in TEXT_FILES:
            (GOLDEN / name).write_bytes((out / name).read_bytes())
    for name in TEXT_FILES:
        assert (out / name).read_text() == (GOLDEN / name).read_text(), name


def test_report_is_deterministic_including_pngs(report_dirs):
    (out1, out2), (files1, files2) = report_dirs
    names = sorted(p.name for p in files1)
    assert names == sorted(p.name for p in files2)
    assert {"mota_vs_fps.png", "per_sequence_MOT17.png", "per_sequence_MOT20.png"} <= set(names)
    for name in names:
        assert (out1 / name).read_bytes() == (out2 / name).read_bytes(), name


def _png_chunks(data: bytes) -> list[bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, kinds = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kinds.append(data[pos + 4:pos + 8])
        pos += 12 + length
    return kinds


def test_pngs_carry_no_timestamp_or_software_text(report_dirs):
    (out, _), _ = report_dirs
    for png in out.glob("*.png"):
        chunks = _png_chunks(png.read_bytes())
        assert b"IHDR" in chunks and b"IDAT" in chunks
        assert b"tIME" not in chunks and b"tEXt" not in chunks and b"iTXt" not in chunks, png.name


def test_table_vi_rows(report_dirs):
    (out, _), _ = report_dirs
    lines = (out / "table_vi.csv").read_text().splitlines()
    ours = [ln for ln in lines if ",ours," in ln]
    # MT 30 / (30 + 50 + 20) gt tracks = 30.0 %; gt-mode runs are not in Table VI
    assert ours[0] == "MOT17,half-val,CSTrack-L (ours),ours,66.2,70.5,58.1,30.0,20.0,640,1540,540,0.7"
    assert not any("ours-l-gt" in ln for ln in lines) and len(ours) == 5
    assert "MOT20,train,MPNTrack,external,65.9,67.7,54.7,30.0,20.0,153,1053,53," in lines
    assert "MOT16,test,SORT_POI,paper,59.8,53.8,,25.4,22.7,8698,63245,1423,<8.6" in lines
    # datasets in order, paper rows before imported and our runs within each
    order = [(ln.split(",")[0], ln.split(",")[3]) for ln in lines[1:]]
    assert order == sorted(order, key=lambda x: ({"MOT16": 0, "MOT17": 1, "MOT20": 2}[x[0]],
                                                 {"paper": 0, "external": 1, "ours": 2}[x[1]]))


def test_ablation_and_upper_bound_rows(report_dirs):
    (out, _), _ = report_dirs
    ab = (out / "ablations.csv").read_text().splitlines()
    assert "II,,REN SR+CR learned lambda,MOT17-half-val,ours,1,66.2,70.5,540" in ab
    assert "II,,without REN,MOT17-half-val,ours,1,64.8,68.9,735" in ab
    assert "III,,SAAN SAM per resolution + CAM after concat,MOT17-half-val,ours,1,66.2,70.5,540" in ab
    assert "V,,eta=0.1,MOT17-half-val,ours,2,65.3,69.1,642" in ab  # mean of the two seeds
    assert "V,8,eta=0.02 (CSTrack),MOT17-half-val,paper,,66.0,70.7,535" in ab
    ub = (out / "upper_bound.csv").read_text().splitlines()
    assert ub[1:] == [
        "JDE with ground-truth boxes (trained on MOT17),MOT16-train,paper,gt,,97.6,87.6,88.3,86.9,871",
        "DeepSORT-2 with ground-truth boxes,MOT16-train,paper,gt,,98.9,95.6,95.9,95.3,93",
        "CSTrack with ground-truth boxes,MOT16-train,paper,gt,,98.9,96.6,97.1,96.1,162",
        # the ablation runs (other configs) are not averaged into the private row
        "cstrack-l,MOT17-half-val,ours,private,1,66.2,70.5,71.5,69.5,540",
        "cstrack-l,MOT17-half-val,ours,gt,1,98.1,95.5,96.5,94.5,160",
    ]


def test_report_without_paper_rows(tmp_path):
    make_catalog(tmp_path / "c")
    build_report(tmp_path / "c", tmp_path / "o", tmp_path / "no-reference")
    assert ",paper," not in (tmp_path / "o" / "table_vi.csv").read_text()


@pytest.mark.parametrize(
    ("config", "table", "label"),
    [
        ({}, "I", "JDE yolov5 + REN + SAAN"),
        ({"model": {"ren": "none", "emb_head": "jde"}}, "I", "JDE yolov5 (no REN no SAAN)"),
        ({"model": {"ren": "conv"}}, "II", "REN replaced by plain CNN"),
        ({"model": {"ren_cross": False}}, "II", "REN self-relation only"),
        ({"model": {"ren_self": False}}, "II", "REN cross-relation only"),
        ({"model": {"ren_lambda": 0.5}}, "II", "REN SR+CR fixed lambda 0.5"),
        ({"model": {"saan_level_sam": [False] * 3, "saan_fused": "none"}}, "III", "SAAN no attention"),
        ({"model": {"saan_level_cam": [True] * 3, "saan_fused": "both"}}, "III",
         "SAAN SAM+CAM per resolution + SAM+CAM after concat"),
        ({"model": {"emb_head": "jde"}}, "III", "basic ReID head (no SAAN)"),
        ({"loss": {"eta": 0.005}}, "V", "eta=0.005"),
        ({"ablation": {"table": "V", "setting": "custom words"}}, "V", "custom words"),
    ],
)
def test_setting_labels(config, table, label):
    assert setting_label(config, table) == label


def test_ablation_table_membership():
    assert ablation_tables({}) == ()
    assert ablation_tables({"ablation": "ii"}) == ("II",)
    assert ablation_tables({"ablation": {"tables": ["I", "III", "VIII"]}}) == ("I", "III")
