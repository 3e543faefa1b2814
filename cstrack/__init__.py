"""CSTrack: a one-shot JDE multi-object tracker (YOLOv5 + REN + SAAN) and its benchmark pipeline.

The library has no Prefect import; orchestration lives in the top-level ``tasks`` and ``flows``
packages.
"""

__version__ = "0.1.0"
