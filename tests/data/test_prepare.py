"""prepare: offline local sources, an HTTP-served archive, idempotency and failure modes."""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from cstrack.data.convert import read_list
from cstrack.data.prepare import is_prepared, prepare, prepare_many, read_record
from cstrack.data.registry import DEFAULT_REGISTRY, Registry, load_registry, parse_registry
from cstrack.errors import DatasetError, DownloadError


def _registry(**entries: dict[str, Any]) -> Registry:
    raw = yaml.safe_load(DEFAULT_REGISTRY.read_text())
    for name, body in entries.items():
        raw["datasets"][name] = body
    return parse_registry(raw)


def _pets_head(frames: str) -> dict[str, Any]:
    """The packaged pets09-s2l1 entry restricted to a few frames (fast)."""
    body = copy.deepcopy(yaml.safe_load(DEFAULT_REGISTRY.read_text())["datasets"]["pets09-s2l1"])
    body["options"]["frames"] = frames
    return body


def _mtimes(root: Path) -> dict[str, float]:
    return {p.relative_to(root).as_posix(): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def test_local_video_source_prepares_offline_and_is_idempotent(tmp_path: Path) -> None:
    reg = _registry(**{"pets-head": _pets_head("1:12")})  # frames 1-12 hold gt ids 9, 15 and 19
    res = prepare("pets-head", tmp_path, registry=reg, progress=False)
    d = tmp_path / "pets-head"
    assert not res.skipped and res.path == d
    assert set(res.lists) == {"train", "train_half", "val_half"}
    imgs = read_list(res.lists["train"])
    assert len(imgs) == 12 and all(p.is_file() for p in imgs)
    assert [p.name for p in read_list(res.lists["val_half"])] == [f"{k:06d}.jpg" for k in range(7, 13)]
    rec = read_record(d)
    assert rec is not None and rec["lists"] == {"train.txt": 12, "train_half.txt": 6, "val_half.txt": 6}
    video = next(f for f in rec["files"] if f["name"] == "PETS09-S2L1.mp4")
    assert video["sha256"] == "4408610ee7eea8452c840ae350d02f4cb77539185ff01380af27ffb197a662a9"
    assert rec["summary"]["identities"] == 3 and (d / "downloads" / "gt.txt").is_file()

    before = _mtimes(d)
    t0 = time.perf_counter()
    again = prepare("pets-head", tmp_path, registry=reg, progress=False)
    assert again.skipped and time.perf_counter() - t0 < 1.0
    assert _mtimes(d) == before  # nothing rewritten

    # a damaged preparation (a list file lost) is redone, without fetching the downloads again
    (d / "val_half.txt").unlink()
    downloads = {k: v for k, v in before.items() if k.startswith("downloads/")}
    redo = prepare("pets-head", tmp_path, registry=reg, progress=False)
    assert not redo.skipped and (d / "val_half.txt").is_file()
    assert {k: v for k, v in _mtimes(d).items() if k.startswith("downloads/")} == downloads

    # a changed entry (another frame range) is redone; force redoes an intact one
    reg2 = _registry(**{"pets-head": _pets_head("1:8")})
    assert not is_prepared(reg2.get("pets-head"), d)
    assert len(read_list(prepare("pets-head", tmp_path, registry=reg2, progress=False).lists["train"])) == 8
    assert not prepare("pets-head", tmp_path, registry=reg2, progress=False, force=True).skipped


def test_packaged_local_sources(tmp_path: Path) -> None:
    res = {r.name: r for r in prepare_many(["mot17-mini", "synth-mini"], tmp_path, progress=False)}
    mini = res["mot17-mini"].record
    assert mini["summary"]["sequences"] == ["train/MOT17-02-FRCNN", "train/MOT17-05-FRCNN"]
    assert mini["lists"] == {"train.txt": 10, "train_half.txt": 5, "val_half.txt": 5}
    # counted boxes = gt rows with flag 1 and class 1 (checked independently of counted_gt)
    shared = Path(mini["files"][0]["path"])
    counted = sum(
        1 for seq in ("MOT17-02-FRCNN", "MOT17-05-FRCNN")
        for ln in (shared / "train" / seq / "gt" / "gt.txt").read_text().splitlines()
        if ln.split(",")[6] == "1" and ln.split(",")[7] == "1"
    )
    assert mini["summary"]["boxes"] == counted
    synth = res["synth-mini"].record
    assert synth["lists"]["train.txt"] == 120 and synth["summary"]["identities"] == 12


def test_http_archive_source(file_server, mot17_mini_tgz: bytes, tmp_path: Path) -> None:
    file_server.files["mot17-mini.tar.gz"] = mot17_mini_tgz
    entry = {
        "title": "mot17-mini over HTTP", "homepage": None, "licence": "CC BY-NC-SA 3.0", "converter": "mot",
        "files": [{"name": "mot17-mini.tar.gz", "urls": [file_server.url("mot17-mini.tar.gz")],
                   "sha256": None, "size": None, "archive": "tar.gz"}],
    }
    reg = _registry(web=entry)
    res = prepare("web", tmp_path, registry=reg, progress=False)
    assert res.record["lists"]["train.txt"] == 10
    assert (tmp_path / "web" / "raw" / "mot17-mini" / "mot17-mini" / "train" / "MOT17-05-FRCNN").is_dir()
    n = len(file_server.log)
    assert prepare("web", tmp_path, registry=reg, progress=False).skipped
    assert len(file_server.log) == n  # nothing fetched again


def test_corrupt_archive_never_prepared(file_server, mot17_mini_tgz: bytes, tmp_path: Path) -> None:
    file_server.files["m.tar.gz"] = mot17_mini_tgz[:-5000]
    entry = {
        "title": "truncated", "homepage": None, "licence": "x", "converter": "mot",
        "files": [{"name": "m.tar.gz", "urls": [file_server.url("m.tar.gz")], "sha256": None, "size": None,
                   "archive": "tar.gz"}],
    }
    with pytest.raises(DownloadError, match="corrupt"):
        prepare("bad", tmp_path, registry=_registry(bad=entry), progress=False)
    d = tmp_path / "bad"
    assert read_record(d) is None and not (d / "raw").exists() and not (d / "downloads" / "m.tar.gz").exists()


def test_manual_file_missing_says_where_to_put_it(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match=r"CrowdHuman_train01\.zip cannot be fetched automatically.*crowdhuman\.org"):
        prepare("crowdhuman", tmp_path, registry=load_registry(), progress=False)


@pytest.mark.slow
def test_full_pets_prepare(tmp_path: Path) -> None:
    """The whole 795-frame video (slow: the fast suite converts 12-40 frame ranges)."""
    t0 = time.perf_counter()
    res = prepare("pets09-s2l1", tmp_path, progress=False)
    seconds = time.perf_counter() - t0
    rec = res.record
    assert rec["lists"] == {"train.txt": 795, "train_half.txt": 397, "val_half.txt": 398}
    assert rec["summary"]["boxes"] == 4650 - 174  # 174 zero-marked rows (shared/data/README.md)
    assert rec["summary"]["identities"] == 19
    seq = tmp_path / "pets09-s2l1" / "images" / "train" / "PETS09-S2L1"
    assert len(list((seq / "img1").iterdir())) == 795
    assert (seq / "gt" / "gt.txt").read_bytes() == (tmp_path / "pets09-s2l1" / "downloads" / "gt.txt").read_bytes()
    assert seconds < 60, f"full PETS09-S2L1 preparation took {seconds:.1f} s"


def _prepare_synth(root: str) -> bool:
    return prepare("synth-mini", root, progress=False).skipped


@pytest.mark.slow
def test_concurrent_preparers_do_the_work_once(tmp_path: Path) -> None:
    """Two processes (spawned: a few seconds) prepare one dataset: the file lock makes one wait."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        skipped = list(pool.map(_prepare_synth, [str(tmp_path)] * 2))
    assert sorted(skipped) == [False, True]
    rec = read_record(tmp_path / "synth-mini")
    assert rec is not None and rec["lists"]["train.txt"] == 120
    assert len(read_list(tmp_path / "synth-mini" / "train.txt")) == 120


def _tree(root: Path) -> dict[str, bytes]:
    """Every file of a prepared dataset but the downloads (which the tests edit)."""
    files = (p for p in sorted(root.rglob("*")) if p.is_file() and p.relative_to(root).parts[0] != "downloads")
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in files}


def test_failed_force_reprepare_leaves_the_previous_dataset(tmp_path: Path) -> None:
    """Issue 20 case 2: a broken annotation line + ``--force`` used to delete the prepared lists,
    marker and val images; the conversion now happens beside the old dataset."""
    from tests.fake_crowdhuman import write_crowdhuman_downloads

    odgt = write_crowdhuman_downloads(tmp_path)
    reg = load_registry()
    res = prepare("crowdhuman", tmp_path, registry=reg, progress=False)
    d = res.path
    assert res.record["lists"] == {"train.txt": 3, "val.txt": 1} and is_prepared(reg.get("crowdhuman"), d)
    before = _tree(d)
    odgt.write_text(odgt.read_text() + '{"ID": "broken", "gtboxes": [\n')
    with pytest.raises(DatasetError, match=r"annotation_val\.odgt:2: "):
        prepare("crowdhuman", tmp_path, registry=reg, progress=False, force=True)
    after = _tree(d)
    assert after.keys() == before.keys() and after == before  # byte for byte, nothing staged left
    assert not list(d.glob(".prepare-*")) and is_prepared(reg.get("crowdhuman"), d)
    assert len(read_list(d / "val.txt")) == 1 and all(p.is_file() for p in read_list(d / "train.txt"))


def test_force_reprepare_swaps_in_the_new_outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from tests.fake_crowdhuman import write_crowdhuman_downloads

    odgt = write_crowdhuman_downloads(tmp_path)
    reg = load_registry()
    d = prepare("crowdhuman", tmp_path, registry=reg, progress=False).path
    before = _tree(d)
    (d / "stale.txt").write_text("a list of an older preparation\n")
    odgt.write_text(odgt.read_text().replace('"fbox": [400, 300, 30, 90]', '"fbox": [300, 200, 30, 90]'))
    # a failure in the middle of the swap (after the old outputs moved aside) is undone too
    real_replace = os.replace

    def flaky_replace(src: Any, dst: Any) -> None:
        if ".prepare-new-" in str(src) and Path(dst).name == "labels_with_ids":
            raise OSError(28, "No space left on device", str(dst))
        real_replace(src, dst)

    monkeypatch.setattr("cstrack.data.prepare.os.replace", flaky_replace)
    with pytest.raises(OSError, match="No space left"):
        prepare("crowdhuman", tmp_path, registry=reg, progress=False, force=True)
    assert _tree(d) == {**before, "stale.txt": b"a list of an older preparation\n"}
    monkeypatch.setattr("cstrack.data.prepare.os.replace", real_replace)
    res = prepare("crowdhuman", tmp_path, registry=reg, progress=False, force=True)
    after = _tree(d)
    assert "stale.txt" not in after and after["prepared.json"] != before["prepared.json"]
    val_label = next(k for k in after if k.startswith("labels_with_ids/val/"))
    assert after[val_label] != before[val_label] and res.record["lists"] == {"train.txt": 3, "val.txt": 1}
    assert not list(d.glob(".prepare-*"))
