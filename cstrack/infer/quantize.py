"""Static int8 quantisation of an exported graph with ONNX Runtime (QDQ format, per-channel).

Weights are int8 per output channel (symmetric), activations uint8 per tensor, with ranges
calibrated (min-max) on a few real frames letterboxed exactly as at inference.  ONNX Runtime fuses
the resulting ``DequantizeLinear -> Conv -> QuantizeLinear`` patterns into integer convolutions
(VNNI dot products where the CPU has them).

Only the convolutions and the fixed-weight GEMMs of the trunk and heads are quantised; what stays
float32 (see :func:`float_nodes`) is numerically delicate and cheap:

- REN's relation path (6 x 10 descriptor, InstanceNorm, the C x C softmax relations and the
  channel-mixing GEMMs whose weights change every frame);
- the attention gates of SAAN (sigmoid maps multiplied into features);
- the three detection convolutions and the box decoder (box regression and objectness feed the
  0.5 score thresholds directly).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from cstrack.errors import ConfigError
from cstrack.fsutil import atomic_path

# Spec §9: conv/matmul nodes are quantised; these exported-name fragments mark what stays float.
_FLOAT_SCOPES = ("/ren.", "/head/", "att", "/emb_head/out/")


def float_nodes(model_path: str | Path) -> list[str]:
    """Names of the nodes of an exported graph kept in float32 (REN, attention, detect + decode)."""
    import onnx

    graph = onnx.load(str(model_path), load_external_data=False).graph
    return [n.name for n in graph.node if any(s in n.name for s in _FLOAT_SCOPES)]


class _Frames:
    """An ONNX Runtime ``CalibrationDataReader`` over prepared network inputs."""

    def __init__(self, input_name: str, inputs: Sequence[np.ndarray]) -> None:
        self._items = iter([{input_name: np.ascontiguousarray(x, dtype=np.float32)} for x in inputs])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._items, None)


def quantize_int8(
    fp32_path: str | Path,
    int8_path: str | Path,
    calibration: Iterable[np.ndarray],
    *,
    per_channel: bool = True,
) -> Path:
    """Quantise the exported float graph ``fp32_path`` into ``int8_path`` (written atomically).

    ``calibration``: network inputs float32 ``[1, 3, H, W]`` (letterboxed real frames), at least one.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    from cstrack.infer.onnx_export import INPUT_NAME

    inputs = list(calibration)
    if not inputs:
        raise ConfigError("int8 calibration: no frames given")
    with atomic_path(int8_path) as tmp:
        quantize_static(
            str(fp32_path), str(tmp), _Frames(INPUT_NAME, inputs),
            quant_format=QuantFormat.QDQ,
            per_channel=per_channel,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=float_nodes(fp32_path),
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={"WeightSymmetric": True, "ActivationSymmetric": False},
        )
    return Path(int8_path)
