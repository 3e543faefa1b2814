"""A catalog that holds years: the documented readers on 1,000 runs x 50 sequences.

Usage: python bench/catalog_scale.py [--runs 1000] [--sequences 50] [--datasets 4] [--event-every 20]
                                     [--root /tmp/cstrack-catalog-scale] [--compact] [--out bench/out/catalog_scale.json]

Generates (once; reused when ``--root`` already holds it) nightly runs spread over ``--datasets``
datasets, one a day, each with its ``runs`` row and 51 ``sequence_metrics`` rows (50 sequences and
COMBINED); every ``--event-every``-th run also has ``events`` and ``tracks`` (300 frames x 8
objects per sequence), as a team keeps the event log of some runs only.  Then times, each three
times (the best kept; the first call includes opening the files cold), the three questions a
catalog is asked every day, with the pandas reader (``catalog.load``) and with DuckDB on the
partition files (docs/catalog.md):

- ``latest``: the latest nightly per dataset and its COMBINED metrics;
- ``history``: one metric's history (HOTA of the COMBINED row of every nightly of one dataset);
- ``previous``: the latest run of a dataset against the previous one, per sequence.

With ``--compact`` the same after ``cstrack catalog compact`` (``catalog.compact``).  The JSON
records the machine and its load average.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def generate(root: Path, runs: int, sequences: int, datasets: int, event_every: int) -> float:
    """Write the catalog (skipped when its last run is there); returns the seconds it took."""
    import numpy as np

    from catalog import store
    from catalog.ingest import RunInfo, run_row
    from cstrack.eval.result import FLOAT_FIELDS, INT_FIELDS
    from cstrack.provenance import collect
    from cstrack.timing import STAGES

    last = f"nightly-{runs - 1:05d}"
    if (root / "runs" / f"run_id={last}").is_dir():
        return 0.0
    t0 = time.perf_counter()
    prov = collect()
    rng = np.random.default_rng(0)
    day0 = dt.datetime(2026, 1, 1, 2, 0, tzinfo=dt.UTC)
    names = [f"SEQ-{k:02d}" for k in range(sequences)]
    for i in range(runs):
        rid = f"nightly-{i:05d}"
        started = day0 + dt.timedelta(hours=24 * i // datasets, minutes=i % datasets)
        info = RunInfo(rid, f"dataset-{i % datasets}", "cstrack-n", tag="nightly", split="train", variant="cstrack-n",
                       detection_mode="private", eval_preset="mot17", config={"preset": "default", "i": i % 7},
                       started_at=started, ended_at=started + dt.timedelta(minutes=30))
        metrics = []
        for seq in [*names, "COMBINED"]:
            row: dict[str, Any] = {"run_id": rid, "sequence": seq}
            row.update({f: float(rng.uniform(0.3, 0.8)) for f in FLOAT_FIELDS})
            row.update({f: int(rng.integers(0, 5000)) for f in INT_FIELDS})
            row["fps"] = float(rng.uniform(5, 30))
            row.update({f"{s}_ms": float(rng.uniform(0.1, 20)) for s in STAGES})
            metrics.append(row)
        with store.transaction(root) as tx:
            tx.write("sequence_metrics", metrics, run_id=rid)
            if event_every and i % event_every == 0:
                n = 300 * 8
                frame = np.tile(np.repeat(np.arange(1, 301, dtype=np.int32), 8), sequences)
                seq_col = np.repeat(np.array(names, dtype=object), n)
                ids = np.tile(np.arange(1, 9), 300 * sequences)
                tx.write("events", {"sequence": seq_col, "frame": frame,
                                    "event": np.where(rng.random(n * sequences) < 0.9, "MATCH", "MISS").astype(object),
                                    "gt_id": ids, "track_id": ids, "iou": rng.uniform(0.5, 1, n * sequences)}, run_id=rid)
                tx.write("tracks", {"sequence": seq_col, "frame": frame, "track_id": ids,
                                    **{k: rng.uniform(0, 500, n * sequences) for k in ("x", "y", "w", "h")},
                                    "conf": rng.uniform(0, 1, n * sequences)}, run_id=rid)
            tx.write("runs", [run_row(info, prov)], run_id=rid)
    return time.perf_counter() - t0


def pandas_recipes(root: Path) -> dict[str, Callable[[], Any]]:
    """The three questions with ``catalog.load`` (docs/catalog.md, "A catalog of years")."""
    import catalog

    def latest() -> Any:
        runs = catalog.load("runs", filters={"tag": "nightly"}, root=root, columns=["run_id", "dataset", "started_at"])
        last = runs.sort_values("started_at").groupby("dataset").tail(1)
        m = catalog.load("sequence_metrics", filters={"run_id": list(last["run_id"]), "sequence": "COMBINED"},
                         root=root, columns=["run_id", "HOTA", "MOTA", "IDF1"])
        return last.merge(m, on="run_id")

    def history() -> Any:
        runs = catalog.load("runs", filters={"tag": "nightly", "dataset": "dataset-0"}, root=root,
                            columns=["run_id", "started_at"])
        m = catalog.load("sequence_metrics", filters={"run_id": list(runs["run_id"]), "sequence": "COMBINED"},
                         root=root, columns=["run_id", "HOTA"])
        return runs.merge(m, on="run_id").sort_values("started_at")

    def previous() -> Any:
        runs = catalog.load("runs", filters={"tag": "nightly", "dataset": "dataset-0"}, root=root,
                            columns=["run_id", "started_at"])
        b, a = runs.sort_values("started_at")["run_id"].tail(2)
        m = catalog.load("sequence_metrics", filters={"run_id": [a, b]}, root=root,
                         columns=["run_id", "sequence", "HOTA", "MOTA", "IDF1"])
        side = m.pivot(index="sequence", columns="run_id", values="HOTA")
        return side[a] - side[b]

    return {"latest": latest, "history": history, "previous": previous}


DUCKDB = {
    "latest": """
        SELECT r.dataset, r.run_id, r.started_at, m.HOTA, m.MOTA, m.IDF1
        FROM (SELECT run_id, dataset, started_at,
                     row_number() OVER (PARTITION BY dataset ORDER BY started_at DESC) AS k
              FROM read_parquet('{root}/runs/*/*.parquet', hive_partitioning = true) WHERE tag = 'nightly') AS r
        JOIN read_parquet('{root}/sequence_metrics/*/*.parquet', hive_partitioning = true) AS m USING (run_id)
        WHERE r.k = 1 AND m.sequence = 'COMBINED' ORDER BY r.dataset""",
    "history": """
        SELECT r.started_at, m.HOTA
        FROM read_parquet('{root}/runs/*/*.parquet', hive_partitioning = true) AS r
        JOIN read_parquet('{root}/sequence_metrics/*/*.parquet', hive_partitioning = true) AS m USING (run_id)
        WHERE r.tag = 'nightly' AND r.dataset = 'dataset-0' AND m.sequence = 'COMBINED' ORDER BY r.started_at""",
    "previous": """
        WITH n AS (SELECT run_id, row_number() OVER (ORDER BY started_at DESC) AS k
                   FROM read_parquet('{root}/runs/*/*.parquet', hive_partitioning = true)
                   WHERE tag = 'nightly' AND dataset = 'dataset-0'),
             m AS (SELECT run_id, sequence, HOTA
                   FROM read_parquet('{root}/sequence_metrics/*/*.parquet', hive_partitioning = true))
        SELECT a.sequence, a.HOTA - b.HOTA AS d_hota
        FROM m AS a JOIN m AS b ON a.sequence = b.sequence
        WHERE a.run_id = (SELECT run_id FROM n WHERE k = 1) AND b.run_id = (SELECT run_id FROM n WHERE k = 2)
        ORDER BY a.sequence""",
}


def time_it(fn: Callable[[], Any], repeats: int = 3) -> dict[str, Any]:
    times = []
    rows = 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
        rows = len(out)
    return {"best_s": round(min(times), 3), "first_s": round(times[0], 3), "rows": rows}


def measure(root: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"pandas": {k: time_it(f) for k, f in pandas_recipes(root).items()}}
    try:
        import duckdb
    except ImportError:
        out["duckdb"] = "not installed"
        return out
    con = duckdb.connect()

    def query(sql: str) -> Callable[[], Any]:
        return lambda: con.sql(sql.format(root=root)).fetchall()

    out["duckdb"] = {k: time_it(query(q)) for k, q in DUCKDB.items()}
    return out


def files(root: Path) -> dict[str, int]:
    return {t.name: sum(1 for _ in t.rglob("*.parquet")) for t in sorted(root.iterdir()) if t.is_dir()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--sequences", type=int, default=50)
    ap.add_argument("--datasets", type=int, default=4)
    ap.add_argument("--event-every", type=int, default=20, help="every k-th run has events and tracks (0: none)")
    ap.add_argument("--root", type=Path, default=Path("/tmp/cstrack-catalog-scale"))
    ap.add_argument("--compact", action="store_true", help="also measure after `cstrack catalog compact`")
    ap.add_argument("--out", type=Path, default=Path("bench/out/catalog_scale.json"))
    args = ap.parse_args(argv)
    from cstrack.fsutil import atomic_write_json
    from cstrack.provenance import cpu_model

    load0 = os.getloadavg()
    gen_s = generate(args.root, args.runs, args.sequences, args.datasets, args.event_every)
    print(f"[catalog] generated in {gen_s:.0f} s: {files(args.root)}", flush=True)
    res: dict[str, Any] = {"benchmark": "catalog_scale", "runs": args.runs, "sequences": args.sequences,
                           "datasets": args.datasets, "event_every": args.event_every, "generation_s": round(gen_s, 1),
                           "files": files(args.root), "as_written": measure(args.root)}
    print(f"[catalog] as written: {res['as_written']}", flush=True)
    if args.compact:
        from catalog.compact import compact

        t0 = time.perf_counter()
        res["compaction"] = {**compact(args.root).to_dict(), "seconds": round(time.perf_counter() - t0, 2)}
        res["files_compacted"] = files(args.root)
        res["compacted"] = measure(args.root)
        print(f"[catalog] compacted: {res['compacted']}", flush=True)
    res.update({"machine": {"cpu": cpu_model(), "cores": os.cpu_count()},
                "load_average_start": [round(v, 2) for v in load0],
                "load_average_end": [round(v, 2) for v in os.getloadavg()],
                "command": " ".join([Path(sys.executable).name, *sys.argv]),
                "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")})
    atomic_write_json(args.out, res)
    print(f"[catalog] wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
