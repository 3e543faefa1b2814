"""Per-epoch training checkpoints: everything needed to continue exactly, written atomically.

``<dir>/epoch_NNN.pt`` (NNN = completed epochs) is a tensor-only dict (``torch.load`` with
``weights_only=True``)::

    {"format": "cstrack-train/1", "config": TrainConfig dict, "config_hash": str,
     "epoch": completed epochs, "iteration": batches done, "model": state, "loss": state (ID classifier),
     "ema": {"updates", "state"} | None, "optimizer": state, "schedule": {...}, "scaler": state,
     "rng": {"python", "numpy", "torch", "cuda"}, "data": {"seed", "next_epoch"}, "history": [...]}

Its record ``epoch_NNN.json`` (written after the ``.pt``, both atomically) holds the sha256, so a
checkpoint without a record is incomplete and ignored, and one whose bytes do not match its record
is refused.
"""

from __future__ import annotations

import random
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cstrack.errors import ConfigError, WeightsError
from cstrack.fsutil import atomic_path, atomic_write_json, sha256_file
from cstrack.model.weights import safe_torch_load

FORMAT = "cstrack-train/1"
_NAME = re.compile(r"^epoch_(\d{3,})\.pt$")


def checkpoint_path(directory: str | Path, epoch: int) -> Path:
    """``directory/epoch_NNN.pt`` for ``epoch`` completed epochs."""
    return Path(directory) / f"epoch_{epoch:03d}.pt"


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> dict[str, Any]:
    """Write ``payload`` to ``path`` and its sha256 record to ``path.json``, each atomically."""
    p = Path(path)
    with atomic_path(p) as tmp:
        torch.save(payload, tmp)
    record = {
        "file": p.name,
        "format": FORMAT,
        "sha256": sha256_file(p),
        "bytes": p.stat().st_size,
        "epoch": int(payload["epoch"]),
        "iteration": int(payload["iteration"]),
        "config_hash": payload["config_hash"],
    }
    atomic_write_json(p.with_suffix(".json"), record)
    return record


def load_checkpoint(path: str | Path, config_hash: str | None = None) -> dict[str, Any]:
    """Read a training checkpoint, verifying its record's sha256 and (when given) the config hash.

    Raises :class:`WeightsError` for a missing record, a checksum mismatch or an unreadable file,
    :class:`ConfigError` when the checkpoint was written for a different configuration.
    """
    import json

    p = Path(path)
    rec_path = p.with_suffix(".json")
    if not rec_path.is_file():
        raise WeightsError(f"{p}: incomplete training checkpoint (no record {rec_path.name})")
    try:
        record = json.loads(rec_path.read_text())
    except json.JSONDecodeError as exc:
        raise WeightsError(f"{rec_path}: unreadable checkpoint record: {exc}") from None
    actual = sha256_file(p) if p.is_file() else None
    if actual != record.get("sha256"):
        raise WeightsError(f"{p}: corrupt training checkpoint (sha256 {actual} does not match its record {record.get('sha256')})")
    obj = safe_torch_load(p)
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise WeightsError(f"{p}: not a {FORMAT} checkpoint")
    if config_hash is not None and obj["config_hash"] != config_hash:
        raise ConfigError(
            f"{p}: checkpoint was written for config {obj['config_hash'][:12]}, the config now hashes to "
            f"{config_hash[:12]}; resume with the same configuration or use a new out_dir"
        )
    return obj


def list_checkpoints(directory: str | Path) -> list[tuple[int, Path]]:
    """``[(epoch, path)]`` of the complete checkpoints (with a record) in ``directory``, by epoch."""
    d = Path(directory)
    if not d.is_dir():
        return []
    out = []
    for p in d.iterdir():
        m = _NAME.match(p.name)
        if m and p.with_suffix(".json").is_file():
            out.append((int(m.group(1)), p))
    return sorted(out)


def latest_checkpoint(directory: str | Path) -> Path | None:
    found = list_checkpoints(directory)
    return found[-1][1] if found else None


def prune_checkpoints(directory: str | Path, keep: int) -> list[Path]:
    """Delete all but the ``keep`` newest complete checkpoints; returns what was removed."""
    removed = []
    for _, p in list_checkpoints(directory)[:-keep] if keep > 0 else []:
        p.with_suffix(".json").unlink(missing_ok=True)  # record first: a .pt without one is ignored
        p.unlink(missing_ok=True)
        removed.append(p)
    return removed


# ------------------------------------------------------------------------------------------------
# random-number generator states (all representable under weights_only=True)


def capture_rng() -> dict[str, Any]:
    """Python, NumPy (legacy global), torch CPU and CUDA generator states."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": {
            "kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state(
        (n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        try:
            torch.cuda.set_rng_state_all(state["cuda"])
        except RuntimeError as exc:  # a different number of GPUs
            print(f"warning: CUDA RNG state not restored: {exc}", file=sys.stderr)
