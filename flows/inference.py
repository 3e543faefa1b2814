"""The effective inference settings of a track-all run: the checkpoint's, with the run's overrides.

Resolved once, in the flow, into concrete values (input size, thresholds, path, tracker preset,
frame rate), so that the per-sequence jobs, their cache keys and the catalog row all see the
values the detector really ran with (:mod:`cstrack.model.inference_settings`).
"""

from __future__ import annotations

from cstrack.model.detector import resolve_path
from cstrack.model.inference_settings import InferenceSettings, settings_for_weights
from flows.params import TrackAllParams
from tasks.records import JobModel


def run_settings(params: TrackAllParams, weights: str | None) -> InferenceSettings:
    """The checkpoint ``weights``' settings (absolute path, ``coco`` or ``None``) overridden by the
    values ``params`` sets (``model.input_size``, ``model.conf_thres``, ``model.nms_thres``,
    ``tracker_preset``; ``None`` keeps the checkpoint's).  A preset file's ``detection.conf_thres`` (the
    threshold a tune study tuned with) applies unless ``model.conf_thres`` is set, as with
    ``cstrack track --preset FILE``."""
    from cstrack.tracker.presetfile import looks_like_file, read_preset_file

    m = params.model
    conf = m.conf_thres
    if conf is None and params.tracker_preset is not None and looks_like_file(params.tracker_preset):
        conf = read_preset_file(params.tracker_preset).conf_thres
    return settings_for_weights(weights).override(
        input_size=m.input_size, conf_thres=conf, nms_thres=m.nms_thres, tracker_preset=params.tracker_preset,
    )


def job_model(params: TrackAllParams, weights: str | None) -> tuple[JobModel, InferenceSettings]:
    """``(job.model, settings)`` for :func:`flows.dispatch.job_for` (the tracker preset is
    ``settings.tracker_preset``)."""
    s = run_settings(params, weights)
    model = JobModel(variant=params.model.variant, weights=weights, input_size=s.input_size,
                     path=resolve_path(params.model.path), conf_thres=s.conf_thres, nms_thres=s.nms_thres,
                     frame_rate=s.frame_rate)
    return model, s
