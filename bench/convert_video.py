"""Time the conversion of the shipped PETS09-S2L1 video into a MOT sequence (all 795 frames).

Usage: python bench/convert_video.py [--repeats 3] [--workers 2] [--quality 90]
                                     [--out bench/out/convert_video.json]

Each repeat converts the whole video (decode, JPEG encode, gt/det cut, seqinfo) into a fresh
temporary folder, as ``cstrack data convert-video`` does, and then writes the JDE labels and list
files for it.  Reported: median / min seconds, frames per second, output size, and the machine's
load average (shared VMs are noisy).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2, help="JPEG encoder threads")
    ap.add_argument("--quality", type=int, default=90)
    ap.add_argument("--out", type=Path, default=Path("bench/out/convert_video.json"))
    args = ap.parse_args()

    from cstrack.data.convert import video_to_sequence, write_mot_labels
    from cstrack.fsutil import atomic_write_json
    from cstrack.paths import shared_data
    from cstrack.provenance import collect

    video = shared_data() / "raw" / "PETS09-S2L1.mp4"
    gt_seq = shared_data() / "mot15" / "PETS09-S2L1"
    load_start = os.getloadavg()
    convert_s, labels_s = [], []
    size = frames = 0
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            t0 = time.perf_counter()
            res = video_to_sequence(video, root / "images" / "train", "PETS09-S2L1", gt=gt_seq,
                                    jpeg_quality=args.quality, workers=args.workers)
            t1 = time.perf_counter()
            write_mot_labels(root)
            t2 = time.perf_counter()
            convert_s.append(t1 - t0)
            labels_s.append(t2 - t1)
            frames = res.frames
            size = sum(p.stat().st_size for p in (root / "images").rglob("*") if p.is_file())
    med = statistics.median(convert_s)
    report = {
        "video": str(video),
        "frames": frames,
        "jpeg_quality": args.quality,
        "encoder_threads": args.workers,
        "convert_seconds_median": round(med, 3),
        "convert_seconds_min": round(min(convert_s), 3),
        "convert_seconds_all": [round(s, 3) for s in convert_s],
        "frames_per_second": round(frames / med, 1),
        "labels_seconds_median": round(statistics.median(labels_s), 3),
        "output_bytes": size,
        "load_average_start": load_start,
        "load_average_end": os.getloadavg(),
        "provenance": collect().to_dict(),
    }
    atomic_write_json(args.out, report)
    print(f"{frames} frames in {med:.2f} s median ({frames / med:.0f} frames/s), labels "
          f"{report['labels_seconds_median']:.2f} s, {size / 1e6:.0f} MB -> {args.out}")


if __name__ == "__main__":
    main()
