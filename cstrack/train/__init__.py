"""Training: typed config, data adapter, optimiser groups, schedule, EMA, checkpoints, the loop."""

from cstrack.train.config import TrainConfig, load_train_config
from cstrack.train.trainer import EpochSummary, Trainer, TrainResult

__all__ = ["EpochSummary", "TrainConfig", "TrainResult", "Trainer", "load_train_config"]
