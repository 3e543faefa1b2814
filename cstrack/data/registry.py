"""The dataset registry: where each training/evaluation source comes from and how it is converted.

The registry is a YAML file shipped in the package (``cstrack/data/datasets.yaml``) with two
sections:

``datasets``: ``name -> entry`` where an entry has

- ``title`` (str), ``homepage`` (str or null), ``licence`` (str), ``notes`` (str, optional)
- ``converter``: one of :data:`CONVERTERS` (how ``prepare`` turns the files into our layout)
- ``options``: converter options, checked against :data:`CONVERTER_OPTIONS`
- ``files``: list of files, each with ``name`` (file name in ``downloads/``), ``urls`` (mirrors,
  tried in order: ``http(s)://``, ``file://``, an absolute path or ``shared:<path under
  shared/data>``), ``sha256`` (64 hex digits or null = unknown), ``size`` (bytes or null =
  unknown), ``archive`` (one of :data:`ARCHIVE_FORMATS`) and ``manual`` (bool: the file cannot be
  fetched by a plain GET and must be placed in ``downloads/`` by hand).

``mixtures``: ``name -> [dataset or mixture names]`` (the paper's S / M / B training sets).

Every value is validated when the registry is loaded; a bad one raises :class:`ConfigError` naming
the entry and the field (``datasets.mot17.files[0].sha256: ...``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from cstrack.errors import ConfigError
from cstrack.fsutil import load_yaml, plain, stable_hash
from cstrack.names import NAME_PATTERN
from cstrack.paths import shared_data

DEFAULT_REGISTRY = Path(__file__).with_name("datasets.yaml")

ARCHIVE_FORMATS = ("zip", "tar", "tar.gz", "tar.bz2", "tar.xz", "file", "dir")
CONVERTERS = ("mot", "jde", "crowdhuman", "video", "synthetic")

_NAME_RE = NAME_PATTERN  # cstrack.names: matched in full
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_URL_RE = re.compile(r"^(https?://\S+|file://\S+|shared:\S+|/\S*)$")


# --------------------------------------------------------------------------------------------
# converter option schemas: key -> (checker, required)


def _is_str(v: Any) -> bool:
    return isinstance(v, str) and bool(v)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_pos_int(v: Any) -> bool:
    return _is_int(v) and v > 0


def _is_nonneg_int(v: Any) -> bool:
    return _is_int(v) and v >= 0


def _is_pos_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and v > 0


def _is_fraction(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and 0.0 <= v <= 1.0


def _is_frame_range(v: Any) -> bool:
    return isinstance(v, str) and re.fullmatch(r"\d+:\d+", v) is not None and 1 <= int(v.split(":")[0]) <= int(v.split(":")[1])


def _is_mot_splits(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(s in ("train", "test") for s in v)


def _is_odgt_splits(v: Any) -> bool:
    return (
        isinstance(v, dict)
        and bool(v)
        and all(_NAME_RE.fullmatch(str(k)) for k in v)
        and all(isinstance(f, list) and f and all(_is_str(x) for x in f) for f in v.values())
    )


_Checker = Callable[[Any], bool]
CONVERTER_OPTIONS: dict[str, dict[str, tuple[_Checker, bool, str]]] = {
    "mot": {
        "splits": (_is_mot_splits, False, "a non-empty list of 'train'/'test'"),
        "sequences": (_is_str, False, "a glob pattern over sequence names"),
        "labels": (_is_str, False, "a glob over the sequences that get training labels (default: sequences)"),
        "visibility": (_is_fraction, False, "a number in [0, 1]"),
    },
    "jde": {},
    "crowdhuman": {
        "splits": (_is_odgt_splits, True, "a mapping split -> list of .odgt file names"),
        "box": (lambda v: v in ("fbox", "vbox"), False, "'fbox' or 'vbox'"),
    },
    "video": {
        "sequence": (_is_str, True, "the sequence name"),
        "video": (_is_str, True, "the name of a file of this entry"),
        "gt": (_is_str, False, "the name of a file of this entry"),
        "det": (_is_str, False, "the name of a file of this entry"),
        "seqinfo": (_is_str, False, "the name of a file of this entry"),
        "frame_rate": (_is_pos_number, False, "a positive number"),
        "frames": (_is_frame_range, False, "'A:B' (1-based, inclusive source frames)"),
    },
    "synthetic": {
        "sequences": (_is_pos_int, False, "a positive integer"),
        "length": (_is_pos_int, False, "a positive integer"),
        "width": (_is_pos_int, False, "a positive integer"),
        "height": (_is_pos_int, False, "a positive integer"),
        "objects": (_is_nonneg_int, False, "a non-negative integer"),
        "seed": (_is_nonneg_int, False, "a non-negative integer"),
        "frame_rate": (_is_pos_number, False, "a positive number"),
    },
}
# options whose value names a file of the entry
_FILE_OPTIONS = {"video": ("video", "gt", "det", "seqinfo")}


# --------------------------------------------------------------------------------------------
# typed entries


@dataclass(frozen=True)
class SourceFile:
    """One file of a dataset: where to get it and how to check it."""

    name: str
    urls: tuple[str, ...]
    sha256: str | None
    size: int | None
    archive: str
    manual: bool = False

    @property
    def is_local(self) -> bool:
        """True when every URL is on this machine (prepares offline)."""
        return bool(self.urls) and all(not u.startswith(("http://", "https://")) for u in self.urls)


@dataclass(frozen=True)
class DatasetEntry:
    """A registry entry (see the module docstring for the meaning of each field)."""

    name: str
    title: str
    homepage: str | None
    licence: str
    converter: str
    files: tuple[SourceFile, ...]
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    notes: str = ""

    @property
    def is_local(self) -> bool:
        """True when the entry prepares without a network (local files or generated data)."""
        return all(f.is_local for f in self.files)

    def file(self, name: str) -> SourceFile:
        for f in self.files:
            if f.name == name:
                return f
        raise ConfigError(f"datasets.{self.name}: no file named {name!r}")

    def fingerprint(self) -> str:
        """Hash of everything that determines the prepared output (recorded in prepared.json)."""
        return stable_hash(
            {
                "converter": self.converter,
                "options": plain(self.options),
                "files": [(f.name, f.sha256, f.size, f.archive) for f in self.files],
            }
        )


@dataclass(frozen=True)
class Registry:
    datasets: Mapping[str, DatasetEntry]
    mixtures: Mapping[str, tuple[str, ...]]

    def get(self, name: str) -> DatasetEntry:
        if name not in self.datasets:
            known = ", ".join(sorted(self.datasets))
            raise ConfigError(f"unknown dataset {name!r} (known: {known})")
        return self.datasets[name]

    def expand(self, names: Iterable[str]) -> list[str]:
        """Dataset names for ``names`` (datasets or mixtures), mixtures expanded in order, no repeats."""
        out: list[str] = []
        for n in names:
            if n in self.mixtures:
                members = self.mixture(n)
            elif n in self.datasets:
                members = [n]
            else:
                known = ", ".join(sorted(self.datasets) + sorted(self.mixtures))
                raise ConfigError(f"unknown dataset or mixture {n!r} (known: {known})")
            for m in members:
                if m not in out:
                    out.append(m)
        return out

    def mixture(self, name: str) -> list[str]:
        """The datasets of mixture ``name`` in order (nested mixtures expanded)."""
        if name not in self.mixtures:
            raise ConfigError(f"unknown mixture {name!r} (known: {', '.join(sorted(self.mixtures))})")
        return _expand_mixture(name, self.mixtures, self.datasets, ())


def resolve_url(url: str) -> str:
    """``shared:<path>`` -> absolute path under ``shared/data``; other URLs unchanged."""
    if url.startswith("shared:"):
        return str(shared_data() / url[len("shared:") :])
    return url


# --------------------------------------------------------------------------------------------
# loading and validation


def load_registry(path: str | Path | None = None) -> Registry:
    """Load and validate a registry YAML (the packaged one by default)."""
    p = Path(path) if path is not None else DEFAULT_REGISTRY
    try:
        raw = load_yaml(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the dataset registry ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: invalid YAML: {exc}") from None
    return parse_registry(raw, source=str(p))


def parse_registry(raw: Any, source: str = "<registry>") -> Registry:
    """Validate a registry already parsed from YAML (a mapping) and return typed entries."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the registry must be a mapping with 'datasets' and 'mixtures'")
    unknown = set(raw) - {"version", "datasets", "mixtures"}
    if unknown:
        raise ConfigError(f"{source}: unknown top-level key(s) {sorted(unknown)}")
    if raw.get("version", 1) != 1:
        raise ConfigError(f"version: unsupported registry version {raw.get('version')!r}")
    ds_raw = raw.get("datasets")
    if not isinstance(ds_raw, dict) or not ds_raw:
        raise ConfigError("datasets: must be a non-empty mapping")
    datasets = {str(name): _parse_entry(str(name), body) for name, body in ds_raw.items()}
    mix_raw = raw.get("mixtures") or {}
    if not isinstance(mix_raw, dict):
        raise ConfigError("mixtures: must be a mapping name -> list of names")
    mixtures: dict[str, tuple[str, ...]] = {}
    for name, members in mix_raw.items():
        where = f"mixtures.{name}"
        if not _NAME_RE.fullmatch(str(name)):
            raise ConfigError(f"{where}: invalid name")
        if str(name) in datasets:
            raise ConfigError(f"{where}: name clashes with a dataset")
        if not isinstance(members, list) or not members or not all(isinstance(m, str) for m in members):
            raise ConfigError(f"{where}: must be a non-empty list of dataset or mixture names")
        mixtures[str(name)] = tuple(members)
    for name in mixtures:
        _expand_mixture(name, mixtures, datasets, ())  # unknown members and cycles fail here
    return Registry(MappingProxyType(datasets), MappingProxyType(mixtures))


def _expand_mixture(
    name: str, mixtures: Mapping[str, tuple[str, ...]], datasets: Mapping[str, DatasetEntry], stack: tuple[str, ...]
) -> list[str]:
    if name in stack:
        raise ConfigError(f"mixtures.{name}: cycle {' -> '.join((*stack, name))}")
    out: list[str] = []
    for m in mixtures[name]:
        if m in mixtures:
            members = _expand_mixture(m, mixtures, datasets, (*stack, name))
        elif m in datasets:
            members = [m]
        else:
            raise ConfigError(f"mixtures.{name}: unknown dataset or mixture {m!r}")
        out.extend(x for x in members if x not in out)
    return out


_ENTRY_KEYS = {"title", "homepage", "licence", "converter", "options", "files", "notes"}
_FILE_KEYS = {"name", "urls", "sha256", "size", "archive", "manual"}


def _parse_entry(name: str, body: Any) -> DatasetEntry:
    where = f"datasets.{name}"
    if not _NAME_RE.fullmatch(name):
        raise ConfigError(f"{where}: invalid dataset name (letters, digits, '.', '_', '-')")
    if not isinstance(body, dict):
        raise ConfigError(f"{where}: must be a mapping")
    unknown = set(body) - _ENTRY_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {sorted(unknown)}")
    for key in ("title", "licence"):
        if not _is_str(body.get(key)):
            raise ConfigError(f"{where}.{key}: required, a non-empty string")
    homepage = body.get("homepage")
    if homepage is not None and not (isinstance(homepage, str) and homepage.startswith(("http://", "https://"))):
        raise ConfigError(f"{where}.homepage: must be an http(s) URL or null, got {homepage!r}")
    converter = body.get("converter")
    if converter not in CONVERTERS:
        raise ConfigError(f"{where}.converter: must be one of {', '.join(CONVERTERS)}, got {converter!r}")
    notes = body.get("notes", "")
    if not isinstance(notes, str):
        raise ConfigError(f"{where}.notes: must be a string")
    files_raw = body.get("files")
    if not isinstance(files_raw, list):
        raise ConfigError(f"{where}.files: required, a list (may be empty)")
    files = tuple(_parse_file(f"{where}.files[{i}]", f) for i, f in enumerate(files_raw))
    names = [f.name for f in files]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ConfigError(f"{where}.files: duplicate file name(s) {sorted(dup)}")
    if converter != "synthetic" and not files:
        raise ConfigError(f"{where}.files: converter {converter!r} needs at least one file")
    options = body.get("options") or {}
    if not isinstance(options, dict):
        raise ConfigError(f"{where}.options: must be a mapping")
    _check_options(where, converter, options, set(names))
    return DatasetEntry(
        name=name,
        title=body["title"],
        homepage=homepage,
        licence=body["licence"],
        converter=converter,
        files=files,
        options=MappingProxyType(dict(options)),
        notes=notes,
    )


def _parse_file(where: str, body: Any) -> SourceFile:
    if not isinstance(body, dict):
        raise ConfigError(f"{where}: must be a mapping")
    unknown = set(body) - _FILE_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {sorted(unknown)}")
    name = body.get("name")
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise ConfigError(f"{where}.name: required, a plain file name, got {name!r}")
    urls = body.get("urls")
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise ConfigError(f"{where}.urls: required, a list of URLs")
    for k, u in enumerate(urls):
        if not _URL_RE.match(u):
            raise ConfigError(f"{where}.urls[{k}]: not an http(s)://, file://, shared: or absolute URL: {u!r}")
    manual = body.get("manual", False)
    if not isinstance(manual, bool):
        raise ConfigError(f"{where}.manual: must be true or false")
    if not urls and not manual:
        raise ConfigError(f"{where}.urls: empty; list at least one URL or mark the file manual: true")
    if "sha256" not in body:
        raise ConfigError(f"{where}.sha256: required (null when unknown)")
    sha = body["sha256"]
    if sha is not None and not (isinstance(sha, str) and _SHA_RE.match(sha)):
        raise ConfigError(f"{where}.sha256: must be 64 lower-case hex digits or null, got {sha!r}")
    if "size" not in body:
        raise ConfigError(f"{where}.size: required (null when unknown)")
    size = body["size"]
    if size is not None and not _is_pos_int(size):
        raise ConfigError(f"{where}.size: must be a positive integer (bytes) or null, got {size!r}")
    archive = body.get("archive")
    if archive not in ARCHIVE_FORMATS:
        raise ConfigError(f"{where}.archive: must be one of {', '.join(ARCHIVE_FORMATS)}, got {archive!r}")
    if archive == "dir" and (sha is not None or size is not None):
        raise ConfigError(f"{where}: a 'dir' source has no sha256/size (set both to null)")
    return SourceFile(name, tuple(urls), sha, size, archive, manual)


def _check_options(where: str, converter: str, options: dict[str, Any], file_names: set[str]) -> None:
    schema = CONVERTER_OPTIONS[converter]
    for key, value in options.items():
        if key not in schema:
            allowed = ", ".join(sorted(schema)) or "none"
            raise ConfigError(f"{where}.options.{key}: unknown option for converter {converter!r} (allowed: {allowed})")
        check, _, expected = schema[key]
        if not check(value):
            raise ConfigError(f"{where}.options.{key}: must be {expected}, got {value!r}")
    for key, (_, required, expected) in schema.items():
        if required and key not in options:
            raise ConfigError(f"{where}.options.{key}: required ({expected})")
    for key in _FILE_OPTIONS.get(converter, ()):
        if key in options and options[key] not in file_names:
            raise ConfigError(f"{where}.options.{key}: {options[key]!r} is not one of the entry's files")
    if converter == "crowdhuman":
        for split, odgts in options["splits"].items():
            for f in odgts:
                if f not in file_names:
                    raise ConfigError(f"{where}.options.splits.{split}: {f!r} is not one of the entry's files")
