"""Safe extraction: unsafe members are refused by name, nothing is written outside or half-way."""

from __future__ import annotations

import io
import re
import stat
import tarfile
import zipfile
from functools import partial
from pathlib import Path

import pytest

from cstrack.data.download import download, part_path
from cstrack.data.extract import archive_stem, check_archive, detect_format, safe_extract
from cstrack.errors import DownloadError, ExtractionError


def _zip(members: list[tuple[str, bytes, int | None]]) -> bytes:
    """Zip with (name, data, unix mode or None) members."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data, mode in members:
            info = zipfile.ZipInfo(name)
            if mode is not None:
                info.create_system = 3
                info.external_attr = mode << 16
            zf.writestr(info, data)
    return buf.getvalue()


def _tar(members: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for m in members:
            if isinstance(m, tarfile.TarInfo):
                tf.addfile(m)
            else:
                info = tarfile.TarInfo(m[0])
                info.size = len(m[1])
                tf.addfile(info, io.BytesIO(m[1]))
    return buf.getvalue()


def _special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


def test_extracts_real_archive_atomically(head8_zip: bytes, tmp_path: Path, data_dir: Path) -> None:
    arc = tmp_path / "head8.zip"
    arc.write_bytes(head8_zip)
    out = safe_extract(arc, tmp_path / "out")
    gt = out / "PETS09-S2L1-head8" / "gt" / "gt.txt"
    assert gt.read_bytes() == (data_dir / "mot15" / "PETS09-S2L1-head8" / "gt" / "gt.txt").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["head8.zip", "out"]  # no temp folder left
    with pytest.raises(ExtractionError, match="already exists"):
        safe_extract(arc, out)
    safe_extract(arc, out, overwrite=True)
    assert gt.is_file()


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        ("../evil.txt", "path traversal"),
        ("data/../../evil.txt", "path traversal"),
        ("..\\evil.txt", "path traversal"),
        ("/etc/evil.txt", "absolute path"),
        ("C:/evil.txt", "absolute path"),
    ],
)
def test_zip_unsafe_names_refused(member: str, reason: str, tmp_path: Path) -> None:
    arc = tmp_path / "bad.zip"
    arc.write_bytes(_zip([("ok/a.txt", b"a", None), (member, b"evil", None)]))
    with pytest.raises(ExtractionError, match=reason) as err:
        safe_extract(arc, tmp_path / "out")
    assert repr(member) in str(err.value)
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "evil.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bad.zip"]
    with pytest.raises(ExtractionError, match=reason):
        check_archive(arc)


def test_zip_symlink_and_device_refused(tmp_path: Path) -> None:
    arc = tmp_path / "link.zip"
    arc.write_bytes(_zip([("link", b"/etc/passwd", stat.S_IFLNK | 0o777)]))
    with pytest.raises(ExtractionError, match="'link': symbolic link"):
        safe_extract(arc, tmp_path / "out")
    arc.write_bytes(_zip([("dev", b"", stat.S_IFCHR | 0o600)]))
    with pytest.raises(ExtractionError, match="'dev': device"):
        safe_extract(arc, tmp_path / "out")
    # an ordinary file with unix permissions is fine
    arc.write_bytes(_zip([("f.txt", b"x", stat.S_IFREG | 0o644)]))
    assert (safe_extract(arc, tmp_path / "out") / "f.txt").read_bytes() == b"x"


@pytest.mark.parametrize(
    ("info", "reason"),
    [
        (_special("sym", tarfile.SYMTYPE, "/etc/passwd"), "'sym': symbolic link"),
        (_special("hard", tarfile.LNKTYPE, "ok.txt"), "'hard': hard link"),
        (_special("chr", tarfile.CHRTYPE), "'chr': device"),
        (_special("blk", tarfile.BLKTYPE), "'blk': device"),
        (_special("fifo", tarfile.FIFOTYPE), "'fifo': device"),
        (_special("../up", tarfile.DIRTYPE), "'../up': '..' path traversal"),
        (_special("/abs", tarfile.REGTYPE), "'/abs': absolute path"),
    ],
)
def test_tar_unsafe_members_refused(info: tarfile.TarInfo, reason: str, tmp_path: Path) -> None:
    arc = tmp_path / "bad.tar.gz"
    arc.write_bytes(_tar([("ok.txt", b"ok"), info], mode="w:gz"))
    with pytest.raises(ExtractionError, match=re.escape(reason)):
        safe_extract(arc, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.tar.gz"]


def test_traversal_archive_served_over_http_rejected(file_server, data_dir: Path, tmp_path: Path) -> None:
    gt = (data_dir / "mot15" / "PETS09-S2L1-head8" / "gt" / "gt.txt").read_bytes()
    data = _tar([("PETS/gt/gt.txt", gt), ("../../outside.txt", b"pwned")], mode="w:gz")
    file_server.files["evil.tar.gz"] = data
    dest = tmp_path / "dl" / "evil.tar.gz"
    with pytest.raises(DownloadError, match=r"'\.\./\.\./outside\.txt'"):
        download(file_server.url("evil.tar.gz"), dest, progress=False, verify=partial(check_archive, fmt="tar.gz"))
    assert not dest.exists() and part_path(dest).exists()
    # the same archive accepted without the hook still cannot be extracted
    plain = download(file_server.url("evil.tar.gz"), tmp_path / "plain.tar.gz", progress=False)
    with pytest.raises(ExtractionError, match=r"outside\.txt"):
        safe_extract(plain.path, tmp_path / "raw")
    assert not (tmp_path / "raw").exists()
    assert not (tmp_path.parent / "outside.txt").exists()


def test_truncated_tar_rejected(mot17_mini_tgz: bytes, tmp_path: Path) -> None:
    arc = tmp_path / "m.tar.gz"
    arc.write_bytes(mot17_mini_tgz[: len(mot17_mini_tgz) // 2])
    with pytest.raises(ExtractionError, match="corrupt"):
        safe_extract(arc, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.tar.gz"]


def test_format_helpers() -> None:
    assert detect_format("a/MOT17.zip") == "zip"
    assert detect_format("x.TGZ") == "tar.gz"
    assert detect_format("x.tar.xz") == "tar.xz"
    assert archive_stem("CrowdHuman_train01.zip") == "CrowdHuman_train01"
    assert archive_stem("set00.tar.gz") == "set00"
    with pytest.raises(ExtractionError, match="unknown archive type"):
        detect_format("x.rar")
