"""The CSTrack model family (jde-l, cstrack-l, cstrack-s, cstrack-n) and its heads."""

from cstrack.model.config import ModelConfig, variant_config, variant_names
from cstrack.model.network import CSTrackModel, build_model, check_input_size

__all__ = ["CSTrackModel", "ModelConfig", "build_model", "check_input_size", "variant_config", "variant_names"]
