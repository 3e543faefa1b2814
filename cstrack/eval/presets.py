"""Evaluation presets: which ground-truth rows count and which tracker rows are removed.

The numbers must equal the MOTChallenge server's (TrackEval ``MotChallenge2DBox`` with
``DO_PREPROC=True``), so every preset states the server behaviour it reproduces.
"""

from __future__ import annotations

from dataclasses import dataclass

from cstrack.errors import ConfigError

# MOTChallenge class ids (TrackEval ``MotChallenge2DBox.class_name_to_class_id``).
PEDESTRIAN = 1
PERSON_ON_VEHICLE = 2
NON_MOT_VEHICLE = 6
STATIC_PERSON = 7
DISTRACTOR = 8
REFLECTION = 12
VALID_CLASSES = tuple(range(1, 14))  # 1 pedestrian ... 13 crowd

# A tracker box matched (IoU >= 0.5, Hungarian) to a gt box of one of these classes is removed
# before evaluation (server preprocessing; MOT20 adds non_mot_vehicle).
_DISTRACTORS_MOT17 = (PERSON_ON_VEHICLE, STATIC_PERSON, DISTRACTOR, REFLECTION)
_DISTRACTORS_MOT20 = (*_DISTRACTORS_MOT17, NON_MOT_VEHICLE)


@dataclass(frozen=True)
class Preset:
    """How one benchmark's files are preprocessed before the metrics run.

    - ``class_preproc``: remove tracker boxes matched to distractor-class gt and keep only
      pedestrian gt (MOT16/17/20).  Without it only zero-marked gt rows are dropped (MOT15).
    - ``min_gt_columns``: the server rejects gt files with fewer columns (the class is column 8).
    - ``check_tracker_class``: the server refuses result rows whose column 8 (class) is above 1.
    """

    name: str
    benchmark: str
    class_preproc: bool
    distractor_classes: tuple[int, ...]
    min_gt_columns: int
    check_tracker_class: bool
    description: str


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("mot16", "MOT16", True, _DISTRACTORS_MOT17, 9, True,
               "MOT16 server: distractor classes removed, zero-marked gt ignored, pedestrians only"),
        Preset("mot17", "MOT17", True, _DISTRACTORS_MOT17, 9, True,
               "MOT17 server: distractor classes removed, zero-marked gt ignored, pedestrians only"),
        Preset("mot20", "MOT20", True, _DISTRACTORS_MOT20, 9, True,
               "MOT20 server: as MOT17 plus non_mot_vehicle as a distractor"),
        # TrackEval skips class preprocessing for MOT15 but still drops zero-marked gt rows.
        Preset("mot15", "MOT15", False, (), 8, True,
               "MOT15 server: no classes; zero-marked gt ignored"),
        # Synthetic data: no classes, any MOT file with >= 6 columns; a flag column is honoured.
        Preset("plain", "plain", False, (), 6, False,
               "no classes (synthetic data): zero-marked gt ignored when a flag column exists"),
    )
}


def get_preset(name: str | Preset) -> Preset:
    """The preset called ``name`` (case-insensitive); raises :class:`ConfigError` naming the choices."""
    if isinstance(name, Preset):
        return name
    key = str(name).lower()
    if key not in PRESETS:
        raise ConfigError(f"preset: unknown {name!r}, expected one of {', '.join(PRESETS)}")
    return PRESETS[key]
