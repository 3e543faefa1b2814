"""Weights as tensor-only checkpoints with a sha256 record, and the COCO YOLOv5n mapping.

A checkpoint ``X.pt`` holds only tensors and plain values (loadable with
``torch.load(..., weights_only=True)``)::

    {"format": "cstrack-weights/1", "variant": str, "config": ModelConfig.to_dict(),
     "state_dict": {name: Tensor}}

Its record ``X.json`` holds the file's sha256, the variant, the config and its hash, and the
training provenance.  Loading is strict: missing or unexpected keys fail with their names.
"""

from __future__ import annotations

import datetime as _dt
import json
import pickle
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from cstrack.errors import WeightsError
from cstrack.fsutil import atomic_paths, read_mapping, recover_together, sha256_file, stable_hash
from cstrack.model.config import ModelConfig
from cstrack.model.network import CSTrackModel

FORMAT = "cstrack-weights/1"

# sha256 of ../shared/weights/yolov5n_coco_v6.pt (shared/weights/SHA256SUMS).
COCO_YOLOV5N_SHA256 = "d50512149331a4abd8ee52d64eb63e0ce29c51e9c1f382c00eb12a376f7479d8"
COCO_PERSON = 0  # COCO class index of "person"
COCO_CLASSES = 80


def record_path(path: str | Path) -> Path:
    return Path(path).with_suffix(".json")


def save_weights(
    path: str | Path, model: CSTrackModel, provenance: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write ``path`` (tensor-only checkpoint) and its record ``path.json`` atomically.

    Returns the record: file name, sha256, bytes, variant, config, config_hash, provenance, created,
    and the ``extra`` keys (e.g. ``inference`` settings, ``import`` details of an original checkpoint).
    """
    p = Path(path)
    if p.suffix.lower() == ".json":
        raise WeightsError(f"{p}: a checkpoint cannot end in .json: its record {record_path(p).name} is written beside it")
    cfg = model.config.to_dict()
    payload = {
        "format": FORMAT,
        "variant": model.config.variant,
        "config": cfg,
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
    }
    # the checkpoint and its record are staged completely, then published together (issue 24): a
    # reader finds the old pair or the new one, never a new .pt beside the old record
    with atomic_paths(p, record_path(p)) as (pt_tmp, record_tmp):
        torch.save(payload, pt_tmp)
        record = {
            "file": p.name,
            "sha256": sha256_file(pt_tmp),
            "bytes": pt_tmp.stat().st_size,
            "variant": model.config.variant,
            "config": cfg,
            "config_hash": stable_hash(cfg),
            "provenance": dict(provenance or {}),
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            **dict(extra or {}),
        }
        record_tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return record


# the first bytes of torch's legacy (pre-1.6, non-zip) format: a pickled magic number
LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"
NOT_A_CHECKPOINT = "not a torch checkpoint (neither torch's zip format nor its legacy format)"


def is_legacy_torch_file(path: str | Path) -> bool:
    """True when ``path`` starts with torch's legacy-format magic number."""
    with open(path, "rb") as fh:
        return fh.read(len(LEGACY_MAGIC)) == LEGACY_MAGIC


def check_checkpoint_file(path: str | Path) -> None:
    """Raise :class:`WeightsError` unless ``path`` exists and looks like a torch checkpoint (torch's
    zip format, or its legacy format), before any record or hash is looked at."""
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"{p}: weights file not found")
    if not (zipfile.is_zipfile(p) or is_legacy_torch_file(p)):
        raise WeightsError(f"{p}: {NOT_A_CHECKPOINT}")


def safe_torch_load(path: str | Path) -> Any:
    """``torch.load(weights_only=True)``; a pickled object (e.g. a full model) is refused."""
    p = Path(path)
    check_checkpoint_file(p)
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise WeightsError(
            f"{p}: refusing to load a pickled object (only tensor-only checkpoints are accepted; "
            f"save model.state_dict() instead of the model): {str(exc).splitlines()[0]}"
        ) from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise WeightsError(f"{p}: not a readable torch checkpoint: {exc}") from None


def read_record(path: str | Path) -> dict[str, Any] | None:
    """The sha256 record beside the checkpoint ``path`` (None when there is none)."""
    rp = record_path(path)
    if not rp.is_file():
        return None
    return read_mapping(rp, lambda reason: WeightsError(f"{rp}: weights record: {reason}"))


def verify_sha256(path: str | Path, expected: str) -> None:
    actual = sha256_file(path)
    if actual != expected:
        raise WeightsError(f"{path}: sha256 mismatch (expected {expected}, got {actual})")


def load_checkpoint(path: str | Path, require_record: bool = True) -> tuple[ModelConfig, dict[str, torch.Tensor], dict[str, Any] | None]:
    """Read a checkpoint: ``(config, state_dict, record)``.  The record's sha256 is verified, and
    a tensor holding NaN or inf is refused (naming the first)."""
    try:
        recover_together(path)  # a publish of this pair killed midway: the old pair goes back
    except OSError as exc:
        raise WeightsError(f"{path}: an interrupted save left it to be restored, which failed: "
                           f"{exc.strerror or exc}") from None
    check_checkpoint_file(path)
    record = read_record(path)
    if record is None and require_record:
        raise WeightsError(f"{path}: no sha256 record {record_path(path).name} beside the weights")
    if record is not None:
        if not isinstance(record.get("sha256"), str):
            raise WeightsError(f"{record_path(path)}: weights record without a 'sha256' string")
        verify_sha256(path, record["sha256"])
    obj = safe_torch_load(path)
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise WeightsError(f"{path}: not a {FORMAT} checkpoint (keys: {sorted(obj)[:8] if isinstance(obj, dict) else type(obj).__name__})")
    missing = [k for k in ("config", "state_dict") if k not in obj]
    if missing:
        raise WeightsError(f"{path}: {FORMAT} checkpoint without {' / '.join(repr(k) for k in missing)}")
    try:
        config = ModelConfig.from_dict(obj["config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise WeightsError(f"{path}: invalid model config in the checkpoint ({exc})") from None
    if not isinstance(obj["state_dict"], dict):
        raise WeightsError(f"{path}: 'state_dict' is a {type(obj['state_dict']).__name__}, not a mapping of tensors")
    check_finite(obj["state_dict"], path)
    return config, obj["state_dict"], record


def check_finite(state: Mapping[str, Any], where: str | Path) -> None:
    """Refuse weights holding NaN or inf: :class:`WeightsError` naming the first such tensor and
    how many of its values are not finite."""
    for name, t in state.items():
        if isinstance(t, torch.Tensor) and t.is_floating_point():
            bad = int((~torch.isfinite(t)).sum())
            if bad:
                raise WeightsError(f"{where}: tensor {name!r} holds {bad} NaN/inf value(s) of {t.numel()}; "
                                   "the weights are unusable")


def load_state_strict(model: torch.nn.Module, state: Mapping[str, torch.Tensor], ignore: Iterable[str] = ()) -> None:
    """``load_state_dict`` that fails naming every missing / unexpected / mis-shaped key.

    ``ignore`` lists key prefixes deliberately not loaded (they keep their initialisation).
    """
    ign = tuple(ignore)

    def kept(key: str) -> bool:
        return not (ign and key.startswith(ign))

    own = {k: v for k, v in model.state_dict().items() if kept(k)}
    given = {k: v for k, v in state.items() if kept(k)}
    missing = sorted(set(own) - set(given))
    unexpected = sorted(set(given) - set(own))
    shapes = sorted(k for k in set(own) & set(given) if tuple(own[k].shape) != tuple(given[k].shape))
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"missing keys: {missing}")
        if unexpected:
            parts.append(f"unexpected keys: {unexpected}")
        if shapes:
            parts.append("shape mismatch: " + ", ".join(f"{k} {tuple(given[k].shape)} vs {tuple(own[k].shape)}" for k in shapes))
        raise WeightsError("; ".join(parts))
    model.load_state_dict(given, strict=not ign)


def load_weights(path: str | Path, model: CSTrackModel | None = None) -> CSTrackModel:
    """Load a checkpoint strictly into ``model`` (built from the stored config when ``None``)."""
    cfg, state, _ = load_checkpoint(path)
    if model is None:
        model = CSTrackModel(cfg)
    elif model.config != cfg:
        raise WeightsError(f"{path}: checkpoint config ({cfg.variant}) differs from the model's ({model.config.variant})")
    try:
        load_state_strict(model, state)
    except WeightsError as exc:
        raise WeightsError(f"{path}: {exc}") from None
    return model


def coco_yolov5n_state(model: CSTrackModel, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map a YOLOv5 v6 COCO state dict onto ``model``'s trunk and detection head.

    ``model.{i}.*`` (i < 24) -> ``trunk.{i}.*``; the detect convs ``model.24.m.{l}`` [A*85, C, 1, 1]
    keep, per anchor, the 4 box rows, the objectness row and the COCO ``person`` row
    -> ``detect.m.{l}`` [A*6, C, 1, 1].  Anchors are checked against the model's.
    """
    det_idx = len(model.trunk)
    na, no_coco = model.detect.na, 5 + COCO_CLASSES
    rows = torch.tensor([a * no_coco + j for a in range(na) for j in (0, 1, 2, 3, 4, 5 + COCO_PERSON)])
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] != "model":
            raise WeightsError(f"unexpected key {key!r} in the COCO checkpoint")
        layer = int(parts[1])
        rest = ".".join(parts[2:])
        if layer < det_idx:
            out[f"trunk.{layer}.{rest}"] = value
        elif layer == det_idx and rest == "anchors":
            grid = model.detect.anchors_grid()
            if value.shape != grid.shape or not torch.allclose(value.float(), grid, atol=1e-3):
                raise WeightsError("COCO anchors differ from the model's anchors: use the cstrack-n anchors")
        elif layer == det_idx and parts[2] == "m":
            out[f"detect.m.{parts[3]}.{parts[4]}"] = value[rows]
        else:
            raise WeightsError(f"unexpected key {key!r} in the COCO checkpoint")
    return out


def load_coco_yolov5n(model: CSTrackModel, path: str | Path | None = None) -> CSTrackModel:
    """Initialise ``model`` (a ``yolov5_v6`` trunk at YOLOv5n multiples) from the shipped COCO
    checkpoint.  Trunk and detection head load strictly; REN and the embedding head keep their
    random initialisation."""
    from cstrack.paths import coco_yolov5n_weights

    p = Path(path) if path is not None else coco_yolov5n_weights()
    verify_sha256(p, COCO_YOLOV5N_SHA256)
    state = safe_torch_load(p)
    mapped = coco_yolov5n_state(model, state)
    mapped = {k: v.to(model.state_dict()[k].dtype) if k in model.state_dict() else v for k, v in mapped.items()}
    try:
        load_state_strict(model, mapped, ignore=("ren.", "emb_head."))
    except WeightsError as exc:
        raise WeightsError(f"{p}: {exc}") from None
    return model
