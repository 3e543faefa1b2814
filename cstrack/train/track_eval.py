"""Tracking evaluation of the weights being trained, as an epoch callback.

After every ``every``-th epoch (and the last), the EMA weights (spec §8) run the full tracking
pipeline -- letterbox -> detector -> Cluster-DIoU NMS -> JDE tracker (:func:`cstrack.run.sequence.track_sequence`,
``private`` detections) -- on held-out MOT sequences, and the result files are scored by
:func:`cstrack.eval.evaluate`.  The callback returns the combined metrics, which the trainer stores
in the epoch's history (and the exported weights' provenance).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cstrack.errors import ConfigError
from cstrack.model.inference_settings import DEFAULTS, InferenceSettings
from cstrack.model.network import CSTrackModel

if TYPE_CHECKING:
    from cstrack.train.trainer import EpochSummary, Trainer

REPORTED = ("MOTA", "IDF1", "HOTA", "IDSW", "FP", "FN", "MT", "ML")


@dataclass(frozen=True)
class TrackEvalConfig:
    """Held-out sequences (folders under one ``gt_root``) and the tracking settings.

    - ``settings``: the one inference settings record
      (:class:`~cstrack.model.inference_settings.InferenceSettings`: input size, detection and NMS
      thresholds, tracker preset), applied by the same rule as ``cstrack track`` and track-all
      (:func:`~cstrack.model.inference_settings.tracker_config`: the preset's birth threshold).
    - ``eval_preset``: :func:`cstrack.eval.evaluate` preset (``mot15``: no classes, zero-marked gt ignored).
    - ``every``: evaluate after every N-th epoch (and after the last epoch of the run).
    - ``device``: the concrete torch device of the tracking pass (``cpu`` or ``cuda:N``).
    """

    gt_root: str
    sequences: tuple[str, ...]
    out_dir: str
    settings: InferenceSettings = DEFAULTS  # spec §11: 1088x608, conf 0.5, nms 0.6
    eval_preset: str = "mot15"
    every: int = 1
    device: str = "cpu"

    def __post_init__(self) -> None:
        if not self.sequences:
            raise ConfigError("eval.sequences: at least one held-out sequence is needed")
        if not isinstance(self.settings, InferenceSettings):
            raise ConfigError(f"eval.settings: expected InferenceSettings, got {type(self.settings).__name__}")
        if self.every < 1:
            raise ConfigError(f"eval.every: must be >= 1, got {self.every!r}")


def evaluate_model(model: CSTrackModel, cfg: TrackEvalConfig, tag: str) -> dict[str, float]:
    """Track ``cfg.sequences`` with ``model`` and score them; results go to ``out_dir/tag``.

    Returns the combined metrics of :data:`REPORTED` plus ``eval_seconds`` and ``fps``.
    """
    from cstrack.eval import evaluate
    from cstrack.model.detector import ModelDetector
    from cstrack.model.inference_settings import tracker_config
    from cstrack.run.sequence import track_sequence

    t0 = time.perf_counter()
    net = copy.deepcopy(model).eval()
    s = cfg.settings
    detector = ModelDetector(net, s.input_size, s.postprocess_config(), device=cfg.device)
    tracker_cfg = tracker_config(s)
    results = Path(cfg.out_dir) / tag
    frames, loop_s = 0, 0.0
    for name in cfg.sequences:
        run = track_sequence(Path(cfg.gt_root) / name, results, "private", tracker_cfg, detector)
        frames += run.frames
        loop_s += run.frames / run.fps if run.fps else 0.0
    res = evaluate(cfg.gt_root, results, list(cfg.sequences), cfg.eval_preset)
    out = {k: float(res.combined[k]) for k in REPORTED}
    out["eval_seconds"] = time.perf_counter() - t0
    out["fps"] = frames / loop_s if loop_s else float("nan")
    return out


class TrackingEvalCallback:
    """Epoch callback: :func:`evaluate_model` on the trainer's EMA weights every ``cfg.every`` epochs."""

    def __init__(self, cfg: TrackEvalConfig) -> None:
        self.cfg = cfg

    def __call__(self, trainer: Trainer, summary: EpochSummary) -> dict[str, float]:
        done = summary.epoch + 1
        if done % self.cfg.every and not summary.final:
            return {}
        metrics = evaluate_model(trainer.eval_model, self.cfg, f"epoch_{done:03d}")
        print(
            f"[eval] epoch {done}: MOTA {metrics['MOTA']:.3f} IDF1 {metrics['IDF1']:.3f} IDSW {metrics['IDSW']:.0f} "
            f"FP {metrics['FP']:.0f} FN {metrics['FN']:.0f} ({metrics['eval_seconds']:.0f} s)",
            flush=True,
        )
        return metrics
