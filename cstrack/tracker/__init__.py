"""Multi-object tracking: Kalman filter, association, track state and the JDE cascade (no I/O)."""

from cstrack.tracker.config import PRESET_NAMES, OutputFilter, TrackerConfig
from cstrack.tracker.kalman import KalmanParams
from cstrack.tracker.presetfile import preset
from cstrack.tracker.track import Track, TrackOutput, TrackOutputs, TrackState
from cstrack.tracker.tracker import Tracker

__all__ = [
    "PRESET_NAMES",
    "KalmanParams",
    "OutputFilter",
    "Track",
    "TrackOutput",
    "TrackOutputs",
    "TrackState",
    "Tracker",
    "TrackerConfig",
    "preset",
]
