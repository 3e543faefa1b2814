"""Downloader against a loopback HTTP server serving archives built from shared/data."""

from __future__ import annotations

import hashlib
import io
import zipfile
from functools import partial
from pathlib import Path

import pytest

from cstrack.data.download import download, part_path
from cstrack.data.extract import check_archive, safe_extract
from cstrack.errors import DownloadError


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_full_download_verifies_and_finalises(file_server, head8_zip: bytes, tmp_path: Path, data_dir: Path) -> None:
    file_server.files["head8.zip"] = head8_zip
    dest = tmp_path / "dl" / "head8.zip"
    res = download(file_server.url("head8.zip"), dest, sha256=_sha(head8_zip), size=len(head8_zip), progress=False)
    assert dest.read_bytes() == head8_zip
    assert not part_path(dest).exists()
    assert (res.sha256, res.size, res.transferred, res.cached) == (_sha(head8_zip), len(head8_zip), len(head8_zip), False)
    assert file_server.log == [("head8.zip", None, 200)]
    # the archive is intact and extracts to the shipped files byte for byte
    assert check_archive(dest) == 11  # seqinfo.ini, gt.txt, det.txt and 8 images
    out = safe_extract(dest, tmp_path / "raw")
    src = data_dir / "mot15" / "PETS09-S2L1-head8"
    for f in src.rglob("*"):
        if f.is_file():
            assert (out / "PETS09-S2L1-head8" / f.relative_to(src)).read_bytes() == f.read_bytes()
    # a second call finds the verified file and transfers nothing
    again = download(file_server.url("head8.zip"), dest, sha256=_sha(head8_zip), progress=False)
    assert again.cached and again.transferred == 0
    assert len(file_server.log) == 1


def test_interrupted_transfer_resumes_with_range(file_server, head8_zip: bytes, tmp_path: Path) -> None:
    cut = len(head8_zip) * 2 // 5
    file_server.files["a.zip"] = head8_zip
    file_server.drop_after["a.zip"] = [cut]
    sleeps: list[float] = []
    dest = tmp_path / "a.zip"
    res = download(file_server.url("a.zip"), dest, sha256=_sha(head8_zip), progress=False, sleep=sleeps.append)
    assert dest.read_bytes() == head8_zip
    # first request dropped after `cut` bytes, the retry asked for the rest only
    assert file_server.log == [("a.zip", None, 200), ("a.zip", f"bytes={cut}-", 206)]
    assert res.transferred == len(head8_zip)
    assert sleeps == [1.0]


def test_resume_across_calls_keeps_partial_file(file_server, mot17_mini_tgz: bytes, tmp_path: Path) -> None:
    data = mot17_mini_tgz
    cut = len(data) // 3
    file_server.files["m.tar.gz"] = data
    file_server.drop_after["m.tar.gz"] = [cut]
    dest = tmp_path / "m.tar.gz"
    with pytest.raises(DownloadError, match="partial file kept"):
        download(file_server.url("m.tar.gz"), dest, sha256=_sha(data), retries=0, progress=False)
    assert not dest.exists()
    assert part_path(dest).read_bytes() == data[:cut]
    verify = partial(check_archive, fmt="tar.gz")  # the hook sees the .part file: name the format
    res = download(file_server.url("m.tar.gz"), dest, sha256=_sha(data), progress=False, verify=verify)
    assert res.resumed_from == cut and res.transferred == len(data) - cut
    assert dest.read_bytes() == data
    assert file_server.log[-1] == ("m.tar.gz", f"bytes={cut}-", 206)


def test_server_without_range_support_restarts_from_zero(file_server, head8_zip: bytes, tmp_path: Path) -> None:
    file_server.files["a.zip"] = head8_zip
    file_server.drop_after["a.zip"] = [1000]
    file_server.ignore_range = True
    dest = tmp_path / "a.zip"
    download(file_server.url("a.zip"), dest, sha256=_sha(head8_zip), progress=False, sleep=lambda s: None)
    assert dest.read_bytes() == head8_zip  # not 1000 stale bytes + the whole file
    assert [c for _, _, c in file_server.log] == [200, 200]


def test_checksum_mismatch_keeps_part_and_never_completes(file_server, head8_zip: bytes, tmp_path: Path) -> None:
    file_server.files["a.zip"] = head8_zip
    dest = tmp_path / "a.zip"
    wrong = "0" * 64
    with pytest.raises(DownloadError, match="sha256 mismatch") as err:
        download(file_server.url("a.zip"), dest, sha256=wrong, progress=False)
    assert str(part_path(dest)) in str(err.value)
    assert not dest.exists()
    assert part_path(dest).read_bytes() == head8_zip
    # with the right checksum the kept bytes are used: the server answers 416 (nothing missing)
    res = download(file_server.url("a.zip"), dest, sha256=_sha(head8_zip), progress=False)
    assert res.transferred == 0 and dest.read_bytes() == head8_zip
    assert file_server.log[-1] == ("a.zip", f"bytes={len(head8_zip)}-", 416)


def test_truncated_archive_rejected_without_checksum(file_server, head8_zip: bytes, mot17_mini_tgz: bytes, tmp_path: Path) -> None:
    for name, fmt, data in (("t.zip", "zip", head8_zip), ("t.tar.gz", "tar.gz", mot17_mini_tgz)):
        truncated = data[: int(len(data) * 0.6)]
        file_server.files[name] = truncated  # the server itself has a short file
        dest = tmp_path / name
        with pytest.raises(DownloadError, match=r"corrupt or truncated|corrupt data"):
            download(file_server.url(name), dest, progress=False, verify=partial(check_archive, fmt=fmt))
        assert not dest.exists()
        assert part_path(dest).read_bytes() == truncated


def test_size_mismatch_rejected(file_server, head8_zip: bytes, tmp_path: Path) -> None:
    file_server.files["a.zip"] = head8_zip
    with pytest.raises(DownloadError, match=f"expects {len(head8_zip) + 1}"):
        download(file_server.url("a.zip"), tmp_path / "a.zip", size=len(head8_zip) + 1, progress=False)
    assert not (tmp_path / "a.zip").exists()


def test_corrupted_byte_in_archive_rejected(file_server, head8_zip: bytes, tmp_path: Path) -> None:
    with zipfile.ZipFile(io.BytesIO(head8_zip)) as zf:
        info = zf.getinfo("PETS09-S2L1-head8/img1/000004.jpg")
    bad = bytearray(head8_zip)
    bad[info.header_offset + 200] ^= 0xFF  # inside the member's compressed data
    file_server.files["bad.zip"] = bytes(bad)
    with pytest.raises(DownloadError, match=r"000004\.jpg"):
        download(
            file_server.url("bad.zip"), tmp_path / "bad.zip", progress=False, verify=partial(check_archive, fmt="zip")
        )
    assert not (tmp_path / "bad.zip").exists()


def test_mirror_fallback_and_backoff(file_server, head8_zip: bytes, tmp_path: Path) -> None:
    file_server.files["b.zip"] = head8_zip
    file_server.fail_status["b.zip"] = [503, 503]
    sleeps: list[float] = []
    dest = tmp_path / "b.zip"
    res = download(
        [file_server.url("missing.zip"), file_server.url("b.zip")], dest,
        sha256=_sha(head8_zip), progress=False, sleep=sleeps.append, backoff=0.5,
    )
    assert res.source == file_server.url("b.zip")
    assert sleeps == [0.5, 1.0]  # exponential backoff on the 503s; the 404 mirror is not retried
    assert [c for _, _, c in file_server.log] == [404, 503, 503, 200]


def test_every_mirror_failing_names_each(file_server, tmp_path: Path) -> None:
    file_server.fail_status["x.zip"] = [500] * 10
    with pytest.raises(DownloadError) as err:
        download(
            [file_server.url("nope.zip"), file_server.url("x.zip")], tmp_path / "x.zip",
            retries=2, progress=False, sleep=lambda s: None,
        )
    msg = str(err.value)
    assert "nope.zip: HTTP 404" in msg and "x.zip: HTTP 500 (gave up after 2 retries)" in msg
    # issue 20 case 6: an offline user learns that placing the file by hand works ...
    assert f"place it at {tmp_path / 'x.zip'}" in msg
    placed = tmp_path / "x.zip"  # ... and it does: the placed file is verified and used, nothing fetched
    placed.write_bytes(b"by hand")
    res = download([file_server.url("x.zip")], placed, sha256=_sha(b"by hand"), progress=False)
    assert res.transferred == 0 and placed.read_bytes() == b"by hand"


def test_local_sources(data_dir: Path, tmp_path: Path) -> None:
    video = data_dir / "raw" / "PETS09-S2L1.mp4"
    sha = "4408610ee7eea8452c840ae350d02f4cb77539185ff01380af27ffb197a662a9"  # shared/data/SHA256SUMS
    for i, src in enumerate((str(video), video.as_uri(), "shared:raw/PETS09-S2L1.mp4")):
        res = download(src, tmp_path / f"{i}.mp4", sha256=sha, size=3543336, progress=False)
        assert res.sha256 == sha and res.transferred == 3543336
    with pytest.raises(DownloadError, match="no such file"):
        download(str(tmp_path / "absent.bin"), tmp_path / "absent.bin.out", progress=False)


def test_local_partial_copy_resumes(data_dir: Path, tmp_path: Path) -> None:
    gt = data_dir / "mot15" / "PETS09-S2L1" / "gt" / "gt.txt"
    data = gt.read_bytes()
    dest = tmp_path / "gt.txt"
    part_path(dest).write_bytes(data[:5000])
    res = download(gt, dest, sha256=_sha(data), progress=False)
    assert res.resumed_from == 5000 and res.transferred == len(data) - 5000
    assert dest.read_bytes() == data
