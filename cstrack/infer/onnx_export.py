"""ONNX export of the inference graph (every variant, one fixed input size per file).

The exported graph is :class:`~cstrack.infer.graph.InferenceModel` (BN folded, REN pooling as
constant matrices, decoder inside)::

    input  "images": float32 [1, 3, H, W]  RGB in [0, 1]
    output "emb":    float32 [1, H/8, W/8, D]   embedding map (not normalised)
    output "pred":   float32 [1, N, 6]         (cx, cy, w, h, obj, cls), network pixels

The file's metadata (``metadata_props``) records the variant, the input size, D and the config
hash, so a runtime can check it was given the file it expects.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
from typing import Any

import torch

from cstrack.errors import ConfigError
from cstrack.fsutil import atomic_path, stable_hash
from cstrack.infer.graph import inference_model
from cstrack.model.input_size import checked_size
from cstrack.model.network import CSTrackModel

OPSET = 17
INPUT_NAME = "images"
OUTPUT_NAMES = ("emb", "pred")
META_KEY = "cstrack"


def export_onnx(
    model: CSTrackModel,
    input_size: tuple[int, int],
    path: str | Path,
    *,
    provenance: dict[str, Any] | None = None,
    opset: int = OPSET,
) -> Path:
    """Write ``model`` specialised to ``input_size = (W, H)`` as an ONNX file at ``path`` (atomically).

    ``provenance`` (e.g. the weights file and its sha256) is stored in the file's metadata.
    """
    import onnx

    input_size = checked_size(input_size)
    w, h = input_size
    net = inference_model(model, input_size)
    x = torch.zeros(1, 3, h, w)
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        # the TorchScript exporter warns that it is deprecated and that InstanceNorm without running
        # statistics uses the input's statistics, which is exactly REN's definition
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net, (x,), buf,  # type: ignore[arg-type]  # torch's annotation omits the file objects it writes to
            input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES),
            opset_version=opset, do_constant_folding=True, dynamo=False,
        )
    proto = onnx.load_from_string(buf.getvalue())
    _drop_initializer_identities(proto.graph)
    meta = {
        "variant": model.config.variant,
        "input_size": [w, h],
        "emb_dim": model.emb_dim,
        "config_hash": stable_hash(model.config.to_dict()),
        "provenance": provenance or {},
    }
    entry = proto.metadata_props.add()
    entry.key, entry.value = META_KEY, json.dumps(meta, sort_keys=True)
    proto.producer_name = "cstrack"
    with atomic_path(path) as tmp:
        onnx.save(proto, str(tmp))
    return Path(path)


def _drop_initializer_identities(graph: Any) -> None:
    """Rewire consumers of ``Identity(initializer)`` to the initializer and drop the Identity.

    The exporter shares equal-valued parameters (e.g. the all-zero biases that BN folding gives a
    freshly initialised model) through Identity nodes; a convolution whose bias comes out of a node
    instead of an initializer is not fused into an integer convolution by ONNX Runtime's QDQ
    passes, so the int8 path would run it in float.
    """
    inits = {i.name for i in graph.initializer}
    outputs = {o.name for o in graph.output}
    alias = {n.output[0]: n.input[0] for n in graph.node
             if n.op_type == "Identity" and n.input[0] in inits and n.output[0] not in outputs}
    if not alias:
        return
    keep = [n for n in graph.node if not (n.op_type == "Identity" and n.output[0] in alias)]
    for n in keep:
        for i, name in enumerate(n.input):
            if name in alias:
                n.input[i] = alias[name]
    del graph.node[:]
    graph.node.extend(keep)


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The ``cstrack`` metadata of an exported file (variant, input_size, emb_dim, ...)."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    for entry in proto.metadata_props:
        if entry.key == META_KEY:
            return json.loads(entry.value)
    raise ConfigError(f"{path}: not a cstrack ONNX export (no '{META_KEY}' metadata)")
