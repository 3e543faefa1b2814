"""The nightly history: each series of nightly runs (same dataset, split, detection mode, tracker)
night by night, with each night's change from the previous one and its 95 % paired bootstrap
interval over sequences (:mod:`catalog.stats`, the same numbers the nightly flow judges by).

Every flow run is a catalog run (issue 28), so a night served from the cache is a night of the
series too (its change is zero).  Values are fractions here; the report shows percentages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from catalog.stats import sequence_deltas, summarise

SERIES_KEYS = ("dataset", "split", "detection_mode", "tracker")
METRICS = ("MOTA", "IDF1", "HOTA")
# the history only shows intervals; the flow's thresholds judge (flows.params.Thresholds)
_NO_THRESHOLDS = {"metrics": list(METRICS), "metric_warn": 1.0, "metric_fail": 1.0, "fps_warn": 1.0, "fps_fail": 1.0}


@dataclass(frozen=True)
class Series:
    """One nightly series: ``key`` (dataset, split, detection mode, tracker) and one dict per night
    (oldest first): ``run_id, started_at, label, tracked, cached``, the COMBINED ``<metric>`` and
    ``fps``, and from the second night on ``<metric>_delta/_low/_high`` (fractions) and ``n``
    (sequences paired)."""

    key: tuple[str, ...]
    nights: tuple[dict[str, Any], ...]

    @property
    def title(self) -> str:
        return " / ".join(str(k) for k in self.key if k)


def _text(v: Any) -> str:
    return "" if v is None or v is pd.NA or (isinstance(v, float) and v != v) else str(v)


def nightly_series(runs: pd.DataFrame, metrics: pd.DataFrame, tag: str = "nightly",
                   gflops: dict[str, float] | None = None) -> list[Series]:
    """Every series of ``tag`` runs with COMBINED metrics, sorted by key; nights by ``started_at``."""
    nightly = runs[(runs["tag"] == tag) & runs["run_id"].isin(list(metrics["run_id"]))]
    out: list[Series] = []
    if nightly.empty:
        return out
    combined = metrics[metrics["sequence"] == "COMBINED"].set_index("run_id")
    keyed = nightly.assign(_key=[tuple(_text(r[k]) for k in SERIES_KEYS) for _, r in nightly.iterrows()])
    for key in sorted(set(keyed["_key"])):
        grp = keyed[keyed["_key"] == key].sort_values(["started_at", "run_id"])
        nights: list[dict[str, Any]] = []
        prev: str | None = None
        for _, r in grp.iterrows():
            rid = str(r["run_id"])
            c = combined.loc[rid]
            night: dict[str, Any] = {
                "run_id": rid, "started_at": r["started_at"], "label": _text(r["label"]) or _text(r["tracker"]),
                "tracked": None if pd.isna(r["sequences_tracked"]) else int(r["sequences_tracked"]),
                "cached": None if pd.isna(r["sequences_cached"]) else int(r["sequences_cached"]),
                "fps": None if pd.isna(c["fps"]) else float(c["fps"]),
                **{m: float(c[m]) for m in METRICS},
            }
            if prev is not None:
                deltas = sequence_deltas(metrics, {rid: prev}, list(METRICS), runs, gflops)
                for row in summarise(deltas, _NO_THRESHOLDS):
                    if row["metric"] in METRICS:
                        night[f"{row['metric']}_delta"] = row["delta"]
                        night[f"{row['metric']}_low"] = row["low"]
                        night[f"{row['metric']}_high"] = row["high"]
                        night["n"] = row["n"]
            nights.append(night)
            prev = rid
        out.append(Series(key, tuple(nights)))
    return out
