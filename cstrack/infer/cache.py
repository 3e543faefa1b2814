"""Exported and quantised graphs cached by content, so a model is exported once per machine.

The key hashes everything the file depends on: the model config and every tensor of its state
dict, the input size, the kind of file (``onnx`` / ``int8`` with its calibration frames), the
source of the modules that build the graph (a code change invalidates old files) and the versions
of torch, onnx and onnxruntime.  Files live under ``$CSTRACK_CACHE`` (default
``~/.cache/cstrack``) in ``infer/``; each is written atomically, so concurrent workers at worst
export the same file twice.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import torch

from cstrack.fsutil import code_fingerprint
from cstrack.model.network import CSTrackModel


def cache_root() -> Path:
    env = os.environ.get("CSTRACK_CACHE")
    return (Path(env) if env else Path.home() / ".cache" / "cstrack") / "infer"


def model_digest(model: CSTrackModel) -> str:
    """sha256 over the config and the bytes of every state-dict tensor (in key order)."""
    from cstrack.fsutil import stable_hash

    h = hashlib.sha256(stable_hash(model.config.to_dict()).encode())
    for key, value in sorted(model.state_dict().items()):
        h.update(key.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


_GRAPH_MODULES = ("infer/fold.py", "infer/graph.py", "infer/onnx_export.py", "infer/quantize.py")


def cache_path(model: CSTrackModel, input_size: tuple[int, int], kind: str, extra: Sequence[str] = ()) -> Path:
    """``<cache>/<variant>_<W>x<H>_<kind>_<key>.onnx`` for this model, size and kind."""
    import onnx
    import onnxruntime

    w, h = input_size
    parts = [model_digest(model), f"{w}x{h}", kind, code_fingerprint(parts=_GRAPH_MODULES), torch.__version__, onnx.__version__, onnxruntime.__version__, *extra]
    key = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
    return cache_root() / f"{model.config.variant}_{w}x{h}_{kind}_{key}.onnx"
