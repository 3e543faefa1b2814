"""The model of a flow run: the checkpoint's settings with the run's overrides, resolved once.

Resolved in the flow into concrete values (the :class:`~cstrack.model.ref.ModelRef` with its path
and device, the :class:`~cstrack.model.inference_settings.InferenceSettings` with input size,
thresholds, tracker preset and frame rate), so that the per-sequence jobs, their cache keys and the
catalog row all see the values the detector really ran with.  Library errors name parameters; here
they are renamed to the flow's parameter paths (``path`` -> ``model.path``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from cstrack.errors import ConfigError
from cstrack.model.inference_settings import InferenceSettings, effective, settings_for_weights
from cstrack.model.ref import ModelRef
from flows.params import ModelSpec, TrackAllParams
from tasks.records import JobModel

BATCH_PATHS = ("eager", "fast")  # the paths cstrack.infer.batch.BatchedDetector wraps

# The library's parameter names -> the flows' parameter paths (flows.params.ModelSpec under "model").
PARAM_PATHS: dict[str, str] = {
    "variant": "model.variant", "weights": "model.weights", "path": "model.path", "device": "model.device",
    "input_size": "model.input_size", "conf_thres": "model.conf_thres", "nms_thres": "model.nms_thres",
}


@contextlib.contextmanager
def parameter_paths(names: dict[str, str] = PARAM_PATHS) -> Iterator[None]:
    """Library errors raised in the block name the flow's parameter paths."""
    try:
        yield
    except ConfigError as exc:
        renamed = exc.renamed(names)
        if renamed is exc:
            raise
        raise renamed from None


def run_settings(model: ModelSpec, weights: str | None, tracker_preset: str | None = None) -> InferenceSettings:
    """The checkpoint ``weights``' settings (absolute path, ``coco`` or ``None``) overridden by the
    values ``model`` sets (``input_size``, ``conf_thres``, ``nms_thres``) and ``tracker_preset``
    (``None`` keeps the checkpoint's), by the one rule (:func:`cstrack.model.inference_settings.effective`)."""
    with parameter_paths({**PARAM_PATHS, "tracker_preset": "tracker_preset"}):
        return effective(settings_for_weights(weights), input_size=model.input_size, conf_thres=model.conf_thres,
                         nms_thres=model.nms_thres, tracker_preset=tracker_preset)


def job_model(model: ModelSpec, weights: str | None, tracker_preset: str | None = None) -> JobModel:
    """The resolved model of a run's jobs (:func:`flows.dispatch.job_for`, the tune flow's caches):
    ``weights`` absolute (or ``coco`` / ``None``), path and device concrete.  Fails before any work,
    naming ``model.<parameter>``: a missing checkpoint, a malformed device, a CPU-only path on a GPU.

    ``device: cuda`` / ``cuda:N`` is kept as asked (:meth:`~cstrack.model.ref.ModelRef.pin`): the
    flow's host (a CPU-only Prefect worker) need not have CUDA, the tracking tasks run on the GPU
    Dask workers and check it there; ``auto`` is resolved where the flow runs (docs/gpu.md)."""
    with parameter_paths():
        if weights not in (None, "coco") and not Path(str(weights)).is_file():
            raise ConfigError(f"no such file {weights}", "weights")
        ref = ModelRef(model.variant, weights, model.path, model.device).pin()
    if ref.path not in BATCH_PATHS:  # onnx / int8 run one frame per call, in fp32 (cstrack.infer.batch.batching)
        if (model.batch_size or 1) > 1:
            raise ConfigError(f"batches on the {' and '.join(BATCH_PATHS)} paths only; path {ref.path} runs one frame "
                              "per call", "model.batch_size")
        if model.precision != "fp32":
            raise ConfigError(f"{model.precision} runs on the {' and '.join(BATCH_PATHS)} paths only; path {ref.path} "
                              "runs fp32", "model.precision")
    return JobModel(ref, run_settings(model, weights, tracker_preset), model.batch_size, model.precision)


def track_all_model(params: TrackAllParams, weights: str | None) -> JobModel:
    """:func:`job_model` of a track-all run (its ``model`` and ``tracker_preset``)."""
    return job_model(params.model, weights, params.tracker_preset)
