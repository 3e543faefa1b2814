"""Converters into our layout, one concern per module (their names are re-exported here):

- :mod:`.video`: :func:`video_to_sequence`, a video (+ optional MOT gt/det/seqinfo) -> a
  MOTChallenge sequence folder (``img1/000001.jpg...``, ``seqinfo.ini``, ``gt/gt.txt``,
  ``det/det.txt``); :func:`cut_mot_file`.  Decoded frame ``i`` (0-based, ``cv2.VideoCapture.read``
  order) is source frame ``i + 1``.
- :mod:`.mot_labels`: :func:`write_mot_labels`, MOTChallenge sequences -> JDE training labels
  (``labels_with_ids``) and list files, with the "half" split protocol.
- :mod:`.crowdhuman`: :func:`crowdhuman_to_jde` and :func:`index_jde_images`, the other training sources.
- :mod:`.layout`: the layout's names, label files (:func:`label_path_for`) and list files.
- :mod:`.ranges`: frame ranges (:func:`parse_frame_range`) and the half split (:func:`half_split`).

Our dataset layout (``D = ROOT/<dataset>``)::

    D/images/<split>/<SEQ>/{seqinfo.ini, img1/, gt/gt.txt, det/det.txt}    MOT sequences
    D/labels_with_ids/<split>/<SEQ>/img1/000001.txt                        JDE labels
    D/<list>.txt                                                           list files

A label file holds one line per box, ``class identity cx cy w h``: class 0 (pedestrian), identity
0-based and unique within the dataset (``-1`` = no identity), box centre and size normalised by the
image width/height.  Its path is the image path with the last ``images`` folder replaced by
``labels_with_ids`` and the extension by ``.txt`` (the JDE convention, :func:`label_path_for`).
A list file holds one image path per line, relative to the list file's folder (absolute paths are
accepted when reading).
"""

from cstrack.data.convert.crowdhuman import crowdhuman_to_jde, index_jde_images, link_or_copy
from cstrack.data.convert.layout import (
    IMAGE_SUFFIXES,
    IMAGES_DIR,
    LABELS_DIR,
    format_labels,
    label_path_for,
    read_list,
    write_list,
)
from cstrack.data.convert.mot_labels import LabelSummary, find_sequences, sequence_label_rows, write_mot_labels
from cstrack.data.convert.ranges import half_split, parse_frame_range
from cstrack.data.convert.video import DEFAULT_JPEG_QUALITY, VideoConversion, cut_mot_file, video_to_sequence

__all__ = [
    "DEFAULT_JPEG_QUALITY", "IMAGES_DIR", "IMAGE_SUFFIXES", "LABELS_DIR", "LabelSummary", "VideoConversion",
    "crowdhuman_to_jde", "cut_mot_file", "find_sequences", "format_labels", "half_split", "index_jde_images",
    "label_path_for", "link_or_copy", "parse_frame_range", "read_list", "sequence_label_rows", "video_to_sequence",
    "write_list", "write_mot_labels",
]
