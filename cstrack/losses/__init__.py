"""Training losses (spec §7): target assignment, CIoU box loss, objectness BCE, identity CE."""

from cstrack.losses.loss import CSTrackLoss, LossConfig, bbox_ciou
from cstrack.losses.targets import LevelTargets, build_targets

__all__ = ["CSTrackLoss", "LevelTargets", "LossConfig", "bbox_ciou", "build_targets"]
