"""The tracker parity fixture scored: the original JDETracker's output, ours under preset
``original`` and ours under ``default``, against the PETS09-S2L1 ground truth.

The detections are exactly what the original's association consumed (``tracker_inputs.npz`` of
``$CSTRACK_SOTS_PARITY``, default ``shared/reference/sots-parity``); docs/tracking.md quotes the
figures this prints as the measured effect of each deliberate difference of the default preset.

Usage::

    .venv/bin/python bench/tracker_parity.py [--out bench/out/tracker_parity.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from cstrack.detection import Detections
from cstrack.eval import evaluate
from cstrack.fsutil import atomic_write_json
from cstrack.paths import shared_data, sots_parity_dir
from cstrack.tracker import Tracker, preset

METRICS = ("MOTA", "IDF1", "HOTA", "IDSW", "FP", "FN")


def run(parity: Path, name: str, **overrides: object) -> np.ndarray:
    cfg_json = json.loads((parity / "tracker_config.json").read_text())
    cfg = preset(name, track_buffer=cfg_json["track_buffer"], det_thresh=cfg_json["det_thresh_new_track"], **overrides)
    with np.load(parity / "tracker_inputs.npz") as z:
        frame, tlbr, score, emb = z["frame"], z["tlbr"], z["score"], z["emb"]
    tracker = Tracker(cfg, frame_rate=cfg_json["frame_rate"])
    bounds = np.searchsorted(frame, np.arange(1, cfg_json["frames"] + 2))
    rows = []
    for f in range(1, cfg_json["frames"] + 1):
        sl = slice(bounds[f - 1], bounds[f])
        rows += [(o.frame, o.track_id, *o.tlwh) for o in tracker.update(Detections(tlbr[sl], score[sl], emb[sl]))]
    return np.array(rows, dtype=np.float64).reshape(-1, 6)


def write(path: Path, rows: np.ndarray) -> None:
    with path.open("w") as fh:
        for r in rows[np.lexsort((rows[:, 1], rows[:, 0]))]:
            fh.write(f"{int(r[0])},{int(r[1])},{r[2]:.3f},{r[3]:.3f},{r[4]:.3f},{r[5]:.3f},1,-1,-1,-1\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("bench/out/tracker_parity.json"))
    args = ap.parse_args()
    parity = sots_parity_dir()
    ref = np.loadtxt(parity / "tracker_output_sots_raw.txt", delimiter=",", ndmin=2)[:, :6]
    runs = {
        "sots (original code)": ref,
        "ours, preset original": run(parity, "original"),
        "ours, preset default": run(parity, "default"),
        # each difference of the default alone, on top of the original
        "original + birth-box backfill (Q9)": run(parity, "original", new_track_report="backfill"),
        "original without the output filter (Q10)": run(parity, "original", output_filter=None),
    }
    gt_root = shared_data() / "mot15"
    out: dict[str, dict[str, float]] = {}
    for label, rows in runs.items():
        with tempfile.TemporaryDirectory() as tmp:
            write(Path(tmp) / "PETS09-S2L1.txt", rows)
            m = evaluate(gt_root, tmp, ["PETS09-S2L1"], preset="mot15").combined
        out[label] = {k: float(m[k]) for k in METRICS if k in m} | {"rows": len(rows)}
        print(f"{label:<44} " + "  ".join(f"{k} {out[label].get(k, float('nan')):.4g}" for k in (*METRICS, "rows")))
    atomic_write_json(args.out, {"fixture": str(parity), "sequence": "PETS09-S2L1", "results": out})


if __name__ == "__main__":
    main()
