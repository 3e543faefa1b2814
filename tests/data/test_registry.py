"""Dataset registry: the packaged entries are valid and honest; bad entries fail naming the field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from cstrack.data.registry import DEFAULT_REGISTRY, load_registry, parse_registry, resolve_url
from cstrack.errors import ConfigError
from cstrack.fsutil import sha256_file

REQUIRED = {"mot15", "mot16", "mot17", "mot20", "crowdhuman", "citypersons", "eth", "cuhk-sysu", "prw", "caltech"}


def test_packaged_registry_has_every_source_and_the_paper_mixtures() -> None:
    reg = load_registry()
    assert set(reg.datasets) >= REQUIRED
    assert {"pets09-s2l1", "mot17-mini", "synth-mini"} <= set(reg.datasets)
    assert reg.mixture("S") == ["mot17"]
    assert reg.mixture("M") == ["eth", "citypersons", "caltech", "cuhk-sysu", "prw", "mot17"]
    assert reg.mixture("B") == [*reg.mixture("M"), "crowdhuman"]
    for name in REQUIRED:
        e = reg.get(name)
        assert e.licence and e.homepage and e.homepage.startswith(("http://", "https://"))
        assert e.files and not e.is_local
        for f in e.files:
            assert f.manual or any(u.startswith("https://") or u.startswith("http://") for u in f.urls)


def test_recorded_checksums_and_sizes_match_the_real_files() -> None:
    """Every sha256/size in the registry was computed from the real file: re-check the local ones;
    remote files have no checksum recorded (none could be computed here)."""
    reg = load_registry()
    checked = 0
    for e in reg.datasets.values():
        for f in e.files:
            if not f.is_local:
                assert f.sha256 is None and f.size is None, f"{e.name}/{f.name}: unverifiable checksum recorded"
                continue
            path = Path(resolve_url(f.urls[0]))
            if f.archive == "dir":
                assert path.is_dir()
                continue
            assert sha256_file(path) == f.sha256 and path.stat().st_size == f.size
            checked += 1
    assert checked == 4  # the PETS09-S2L1 video, gt, det and seqinfo


def test_expand_names_and_mixtures() -> None:
    reg = load_registry()
    assert reg.expand(["pets09-s2l1", "S", "mot17", "B"]) == ["pets09-s2l1", "mot17", "eth", "citypersons", "caltech",
                                                              "cuhk-sysu", "prw", "crowdhuman"]
    with pytest.raises(ConfigError, match="unknown dataset or mixture 'nope'"):
        reg.expand(["nope"])


def _raw() -> dict[str, Any]:
    return yaml.safe_load(DEFAULT_REGISTRY.read_text())


def _set(d: dict[str, Any], path: str, value: Any) -> None:
    *head, last = path.split(".")
    for key in head:
        d = d[int(key)] if isinstance(d, list) else d[key]
    if isinstance(d, list):
        d[int(last)] = value
    elif value is _DELETE:
        del d[last]
    else:
        d[last] = value


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("datasets.mot17.files.0.sha256", "abc", r"datasets\.mot17\.files\[0\]\.sha256: must be 64"),
        ("datasets.mot17.files.0.sha256", _DELETE, r"datasets\.mot17\.files\[0\]\.sha256: required"),
        ("datasets.mot17.files.0.size", -5, r"datasets\.mot17\.files\[0\]\.size: must be a positive"),
        ("datasets.mot17.files.0.archive", "rar", r"datasets\.mot17\.files\[0\]\.archive: must be one of"),
        ("datasets.mot17.files.0.urls", ["ftp://x/y.zip"], r"datasets\.mot17\.files\[0\]\.urls\[0\]"),
        ("datasets.mot17.files.0.urls", [], r"datasets\.mot17\.files\[0\]\.urls: empty"),
        ("datasets.mot17.converter", "magic", r"datasets\.mot17\.converter: must be one of"),
        ("datasets.mot17.licence", "", r"datasets\.mot17\.licence: required"),
        ("datasets.mot17.homepage", "motchallenge.net", r"datasets\.mot17\.homepage"),
        ("datasets.mot17.options", {"splits": ["val"]}, r"datasets\.mot17\.options\.splits: must be"),
        ("datasets.mot17.options", {"speed": 1}, r"datasets\.mot17\.options\.speed: unknown option"),
        ("datasets.mot17.colour", "red", r"datasets\.mot17: unknown field"),
        ("datasets.pets09-s2l1.options.gt", "nope.txt", r"datasets\.pets09-s2l1\.options\.gt: 'nope\.txt' is not"),
        ("datasets.pets09-s2l1.options.frames", "9:3", r"datasets\.pets09-s2l1\.options\.frames: must be"),
        ("datasets.pets09-s2l1.options.sequence", _DELETE, r"datasets\.pets09-s2l1\.options\.sequence: required"),
        ("datasets.mot17-mini.files.0.sha256", "0" * 64, r"datasets\.mot17-mini\.files\[0\]: a 'dir' source"),
        ("datasets.crowdhuman.options.splits", {"train": ["x.odgt"]}, r"options\.splits\.train: 'x\.odgt'"),
        ("datasets.synth-mini.options.objects", -1, r"datasets\.synth-mini\.options\.objects"),
        ("mixtures.M", ["eth", "nope"], r"mixtures\.M: unknown dataset or mixture 'nope'"),
        ("mixtures.S", ["B"], r"mixtures\.(S|B|M): cycle"),
        ("mixtures.mot17", ["eth"], r"mixtures\.mot17: name clashes"),
    ],
)
def test_invalid_entries_name_the_field(path: str, value: Any, message: str) -> None:
    raw = copy.deepcopy(_raw())
    if path == "mixtures.S" and value == ["B"]:
        raw["mixtures"]["M"] = ["S", "eth"]  # S -> B -> M -> S
    _set(raw, path, value)
    with pytest.raises(ConfigError, match=message):
        parse_registry(raw)


def test_unreadable_registry_file(tmp_path: Path) -> None:
    p = tmp_path / "r.yaml"
    p.write_text("datasets: [unclosed")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_registry(p)
    with pytest.raises(ConfigError, match="cannot read"):
        load_registry(tmp_path / "missing.yaml")


def test_fingerprint_tracks_what_determines_the_output() -> None:
    raw = _raw()
    a = parse_registry(raw).get("pets09-s2l1").fingerprint()
    raw2 = copy.deepcopy(raw)
    raw2["datasets"]["pets09-s2l1"]["options"]["frames"] = "1:10"
    raw3 = copy.deepcopy(raw)
    raw3["datasets"]["pets09-s2l1"]["title"] = "another title"
    assert parse_registry(raw2).get("pets09-s2l1").fingerprint() != a
    assert parse_registry(raw3).get("pets09-s2l1").fingerprint() == a
