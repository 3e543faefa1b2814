"""``cstrack report --html``: one self-contained page (tables, inlined figures, the nightly history
with its intervals), checked structurally always and in headless Chromium where it is installed."""

from __future__ import annotations

import base64
import datetime as dt
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

import catalog
from catalog.ingest import RunInfo, run_row
from catalog.report import build_report
from catalog.report.history import nightly_series
from tests.catalog.test_report import PROV, REFERENCE, T0, _metrics, make_catalog

CHROMIUM = Path("/usr/bin/chromium")
SEQS = ["MOT17-02", "MOT17-04", "MOT17-05", "MOT17-09"]


def add_nights(root: Path) -> None:
    """Three nightly runs of cstrack-n on MOT17 train: night 2 served from the cache (same numbers),
    night 3 with MOTA 2 points lower on every sequence."""
    for i, drop in enumerate((0.0, 0.0, 0.02)):
        rid = f"nightly-{i}"
        info = RunInfo(run_id=rid, dataset="mot17", tracker="cstrack-n", variant="cstrack-n", tag="nightly",
                       split="train", detection_mode="private", tracker_preset="default", weights_sha256="ab" * 32,
                       started_at=T0 + dt.timedelta(days=i), ended_at=T0 + dt.timedelta(days=i, minutes=4),
                       sequences_tracked=4 if i == 0 else (0 if i == 1 else 4),
                       sequences_cached=0 if i != 1 else 4)
        catalog.write("runs", [run_row(info, PROV)], root)
        rows = [_metrics(rid, "COMBINED", 0.60 - drop, 0.70, 0.55, 40, 9.0)]
        rows += [_metrics(rid, s, 0.55 + 0.03 * k - drop, 0.7, 0.55, 10, 9.0) for k, s in enumerate(SEQS)]
        catalog.write("sequence_metrics", rows, root)


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    base = tmp_path_factory.mktemp("html")
    make_catalog(base / "catalog")
    add_nights(base / "catalog")
    files = build_report(base / "catalog", base / "out", REFERENCE, html=True)
    return base / "out", files


class _Doc(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_the_nightly_series_counts_every_night_and_its_interval(tmp_path: Path) -> None:
    add_nights(tmp_path)
    (s,) = nightly_series(catalog.load("runs", root=tmp_path), catalog.load("sequence_metrics", root=tmp_path))
    assert s.key == ("MOT17", "train", "private", "cstrack-n")
    assert [n["run_id"] for n in s.nights] == ["nightly-0", "nightly-1", "nightly-2"]
    assert "MOTA_delta" not in s.nights[0]
    assert s.nights[1]["MOTA_delta"] == 0.0 and (s.nights[1]["MOTA_low"], s.nights[1]["MOTA_high"]) == (0.0, 0.0)
    # every sequence dropped by exactly 0.02: the mean and both bounds are -0.02
    assert s.nights[2]["MOTA_delta"] == pytest.approx(-0.02)
    assert s.nights[2]["MOTA_low"] == pytest.approx(-0.02) and s.nights[2]["MOTA_high"] == pytest.approx(-0.02)
    assert s.nights[2]["n"] == 4 and (s.nights[1]["tracked"], s.nights[1]["cached"]) == (0, 4)


def test_the_page_is_one_self_contained_file(page: tuple[Path, list[Path]]) -> None:
    out, files = page
    html = out / "report.html"
    assert files[-1] == html
    for name in ("summary_MOT17.txt", "summary_MOT20.txt", "compare_MOT17.png", "nightly_MOT17_train_private_cstrack-n.png"):
        assert (out / name).is_file(), name
    doc = _Doc()
    doc.feed(html.read_text(encoding="utf-8"))
    # nothing is loaded from elsewhere: every image is an inlined PNG, no script, no stylesheet link
    imgs = [a for t, a in doc.attrs if t == "img"]
    assert len(imgs) >= 5
    for a in imgs:
        src = a["src"] or ""
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
        assert a.get("alt")
    assert "script" not in doc.tags and "link" not in doc.tags and "iframe" not in doc.tags
    for _, a in doc.attrs:
        for key in ("href", "src"):
            v = a.get(key) or ""
            assert not v.startswith(("http:", "https:", "//", "file:")), v
    text = " ".join(doc.text)
    # the tables: benchmarks, the paper's tables, the nightly history with its interval
    assert doc.tags.count("table") >= 6
    for words in ("Table VI", "Tables I, II, III and V", "Table VIII", "Nightly history", "MOT17 / train / private / "
                  "cstrack-n", "-2.00 [-2.00, -2.00]", "+0.00 [+0.00, +0.00]", "in %", "CSTrack-L (ours)"):
        assert words in text, words
    assert '<td class="down">-2.00 [-2.00, -2.00]</td>' in html.read_text()


def test_summary_text_is_trackeval_like(page: tuple[Path, list[Path]]) -> None:
    out, _ = page
    lines = (out / "summary_MOT20.txt").read_text().splitlines()
    assert lines[0].startswith("# MOT20: COMBINED metrics")
    assert lines[1].split() == ["Method", "Split", "HOTA", "DetA", "AssA", "MOTA", "MOTP", "IDF1", "IDP", "IDR",
                                "IDSW", "FP", "FN", "Frag", "MT", "ML", "FPS"]
    # best HOTA first: MPNTrack (HOTA 54.68) before CSTrack-S (49.0)
    assert lines[2].split()[:3] == ["MPNTrack", "train", "54.680"] and lines[2].split()[10] == "53"
    assert lines[3].split()[:2] == ["CSTrack-S_(ours)", "train"] and lines[3].split()[-1] == "1.700"


@pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium: the headless-browser check is skipped "
                    "(apt-get install chromium to run it); the page is still checked structurally above")
def test_the_page_renders_in_headless_chromium(page: tuple[Path, list[Path]], tmp_path: Path) -> None:
    out, _ = page
    url = (out / "report.html").resolve().as_uri()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
             f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0"]
    dom = subprocess.run([str(CHROMIUM), *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120,
                         check=False)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count("<table") >= 6 and "Nightly history" in dom.stdout
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line]
    assert console == [], console
    shot = tmp_path / "page.png"
    res = subprocess.run([str(CHROMIUM), *flags, "--window-size=1280,2400", f"--screenshot={shot}", url],
                         capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0 and shot.read_bytes()[:4] == b"\x89PNG", res.stderr[-2000:]


def test_cstrack_report_html_writes_the_page(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cstrack.cli import app

    add_nights(tmp_path / "cat")
    res = CliRunner().invoke(app, ["report", "--results", str(tmp_path / "cat"), "--out", str(tmp_path / "out"),
                                   "--html"])
    assert res.exit_code == 0, res.output
    assert res.output.splitlines()[-1] == str(tmp_path / "out" / "report.html")
    assert "Nightly history" in (tmp_path / "out" / "report.html").read_text()
    plain = CliRunner().invoke(app, ["report", "--results", str(tmp_path / "cat"), "--out", str(tmp_path / "o2")])
    assert plain.exit_code == 0 and not (tmp_path / "o2" / "report.html").exists()
