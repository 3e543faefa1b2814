"""Evaluation results: flat per-sequence metrics in the server's vocabulary.

Field names (also the catalog's ``sequence_metrics`` columns):

- HOTA family (mean over the 19 alpha thresholds, as the server reports): ``HOTA DetA AssA LocA
  DetRe DetPr AssRe AssPr``
- CLEAR (IoU 0.5): ``MOTA MOTP`` (TrackEval's IoU-based MOTP: higher is better) and the counts
  ``TP FP FN IDSW Frag MT PT ML``
- Identity: ``IDF1 IDP IDR``
- counts: ``gt_dets tracker_dets gt_ids tracker_ids frames``

Ratios are fractions in [0, 1]; counts are ``int``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

COMBINED = "COMBINED"

HOTA_FIELDS: tuple[str, ...] = ("HOTA", "DetA", "AssA", "LocA", "DetRe", "DetPr", "AssRe", "AssPr")
CLEAR_FLOAT_FIELDS: tuple[str, ...] = ("MOTA", "MOTP")
CLEAR_INT_FIELDS: tuple[str, ...] = ("TP", "FP", "FN", "IDSW", "Frag", "MT", "PT", "ML")
IDENTITY_FIELDS: tuple[str, ...] = ("IDF1", "IDP", "IDR")
COUNT_FIELDS: tuple[str, ...] = ("gt_dets", "tracker_dets", "gt_ids", "tracker_ids", "frames")

FLOAT_FIELDS: tuple[str, ...] = HOTA_FIELDS + CLEAR_FLOAT_FIELDS + IDENTITY_FIELDS
INT_FIELDS: tuple[str, ...] = CLEAR_INT_FIELDS + COUNT_FIELDS
METRIC_FIELDS: tuple[str, ...] = FLOAT_FIELDS + INT_FIELDS

# The ``--json`` layout of ``cstrack eval`` (issue 5): these keys per sequence and COMBINED.
JSON_FIELDS: tuple[str, ...] = (
    "HOTA", "DetA", "AssA", "LocA", "MOTA", "MOTP", "IDF1", "IDP", "IDR",
    "IDSW", "FP", "FN", "Frag", "MT", "PT", "ML",
)

_CLEAR_KEYS = {"TP": "CLR_TP", "FP": "CLR_FP", "FN": "CLR_FN"}
_COUNT_KEYS = {"gt_dets": "GT_Dets", "tracker_dets": "Dets", "gt_ids": "GT_IDs", "tracker_ids": "IDs"}

Metrics = dict[str, float | int]


def summarize(res: Mapping[str, Mapping[str, Any]], frames: int) -> Metrics:
    """Flatten TrackEval's result dicts of one sequence (or the combination) into ``Metrics``."""
    hota, clear, ident, count = res["HOTA"], res["CLEAR"], res["Identity"], res["Count"]
    out: Metrics = {}
    for f in HOTA_FIELDS:
        out[f] = float(np.mean(hota[f]))
    for f in CLEAR_FLOAT_FIELDS:
        out[f] = float(clear[f])
    for f in IDENTITY_FIELDS:
        out[f] = float(ident[f])
    for f in CLEAR_INT_FIELDS:
        out[f] = int(clear[_CLEAR_KEYS.get(f, f)])
    for f, key in _COUNT_KEYS.items():
        out[f] = int(count[key])
    out["frames"] = int(frames)
    return {f: out[f] for f in METRIC_FIELDS}


@dataclass(frozen=True)
class EvalResult:
    """Metrics of one evaluation.

    ``per_sequence[SEQ]`` and ``combined`` map every name of :data:`METRIC_FIELDS` to its value;
    ``raw`` keeps TrackEval's full result dicts (``raw[SEQ or COMBINED][metric]``) for anything
    not flattened (per-alpha HOTA curves, MODA, ...).  ``missing`` lists sequences without a
    result file that were counted as empty.
    """

    preset: str
    sequences: tuple[str, ...]
    per_sequence: Mapping[str, Metrics]
    combined: Metrics
    raw: Mapping[str, Mapping[str, Any]] = field(repr=False, compare=False)
    missing: tuple[str, ...] = ()

    def __getitem__(self, key: str) -> Metrics:
        """Metrics of a sequence, or of the combination under ``"COMBINED"``."""
        return self.combined if key == COMBINED else self.per_sequence[key]

    def rows(self) -> list[dict[str, Any]]:
        """One dict per sequence (sorted) then the ``COMBINED`` row, each with a ``sequence`` key."""
        rows = [{"sequence": s, **self.per_sequence[s]} for s in sorted(self.per_sequence)]
        rows.append({"sequence": COMBINED, **self.combined})
        return rows

    def to_json(self) -> dict[str, dict[str, float | int]]:
        """``{SEQ or "COMBINED": {key: value for key in JSON_FIELDS}}`` (ratios as fractions)."""
        out = {s: {k: self.per_sequence[s][k] for k in JSON_FIELDS} for s in sorted(self.per_sequence)}
        out[COMBINED] = {k: self.combined[k] for k in JSON_FIELDS}
        return out


# Columns of the printed table: (header, field, is_ratio).
_TABLE = (
    ("HOTA", "HOTA", True), ("DetA", "DetA", True), ("AssA", "AssA", True), ("LocA", "LocA", True),
    ("MOTA", "MOTA", True), ("MOTP", "MOTP", True), ("IDF1", "IDF1", True), ("IDP", "IDP", True),
    ("IDR", "IDR", True), ("IDSW", "IDSW", False), ("FP", "FP", False), ("FN", "FN", False),
    ("Frag", "Frag", False), ("MT", "MT", False), ("PT", "PT", False), ("ML", "ML", False),
)


def format_table(result: EvalResult, title: str = "") -> str:
    """The server-style text table: one line per sequence and COMBINED, ratios in percent (3 dp)."""
    name_w = max([len(COMBINED), len(title), *(len(s) for s in result.per_sequence)]) + 2
    head = f"{(title or 'sequence'):<{name_w}}" + "".join(f"{h:>10}" for h, _, _ in _TABLE)
    lines = [head]
    for row in result.rows():
        cells = []
        for _, f, ratio in _TABLE:
            v = row[f]
            cells.append(f"{100.0 * v:>10.3f}" if ratio else f"{int(v):>10d}")
        lines.append(f"{row['sequence']:<{name_w}}" + "".join(cells))
    return "\n".join(lines) + "\n"
