"""The regenerated paper tables as plain row lists (numbers, not text): Table VI (comparison),
the ablation tables I, II, III and V, and Table VIII (association upper bound).

Percent-valued columns hold percentages (the paper's convention: MOTA 74.9), so our fractions are
multiplied by 100 here; MT and ML are percentages of ground-truth tracks as in Table VI.
Rows are sorted deterministically: datasets, then source (paper, external, ours), then label.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from catalog.report.labels import ABLATION_TABLES, ablation_tables, setting_label
from cstrack.fsutil import stable_hash

SOURCE_ORDER = {"paper": 0, "external": 1, "ours": 2}
_DATASET_ORDER = {"MOT16": 0, "MOT17": 1, "MOT20": 2}


@dataclass(frozen=True)
class Column:
    """A table column: ``kind`` is ``text``, ``pct`` (1 decimal), ``int``, ``fps`` (1 decimal)."""

    name: str
    kind: str


@dataclass(frozen=True)
class Table:
    name: str
    title: str
    columns: tuple[Column, ...]
    rows: tuple[Mapping[str, Any], ...]
    group: str | None = None  # column whose value changes start a new section (LaTeX midrule)


TABLE_VI_COLUMNS = (
    Column("Dataset", "text"), Column("Split", "text"), Column("Method", "text"), Column("Source", "text"),
    Column("MOTA", "pct"), Column("IDF1", "pct"), Column("HOTA", "pct"), Column("MT", "pct"), Column("ML", "pct"),
    Column("FP", "int"), Column("FN", "int"), Column("IDSW", "int"), Column("FPS", "fps"),
)
ABLATION_COLUMNS = (
    Column("Table", "text"), Column("Row", "text"), Column("Setting", "text"), Column("Eval set", "text"),
    Column("Source", "text"), Column("Runs", "int"), Column("MOTA", "pct"), Column("IDF1", "pct"),
    Column("IDSW", "int"),
)
UPPER_BOUND_COLUMNS = (
    Column("Method", "text"), Column("Eval set", "text"), Column("Source", "text"), Column("Detections", "text"),
    Column("Runs", "int"), Column("MOTA", "pct"), Column("IDF1", "pct"), Column("IDP", "pct"), Column("IDR", "pct"),
    Column("IDSW", "int"),
)


def _num(v: Any) -> float | None:
    if v is None or (isinstance(v, float) and v != v) or v is pd.NA or v == "":
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _pct(v: Any) -> float | None:
    x = _num(v)
    return None if x is None else 100.0 * x


def _dataset_key(name: str) -> tuple[int, str]:
    return (_DATASET_ORDER.get(name, len(_DATASET_ORDER)), name)


def _text(v: Any) -> str:
    return "" if v is None or v is pd.NA or (isinstance(v, float) and v != v) else str(v)


SETUP_KEYS = ("dataset", "split", "source", "tracker", "label", "detection_mode", "config_hash")


def latest_per_setup(runs: pd.DataFrame) -> pd.DataFrame:
    """The latest run (by ``started_at``) of each setup (:data:`SETUP_KEYS`): every flow run is a
    catalog run (a nightly adds one a night), the tables show each setup once, at its latest."""
    if runs.empty:
        return runs
    keys = [k for k in SETUP_KEYS if k in runs]
    filled = runs.assign(**{f"_k_{k}": runs[k].astype("string").fillna("") for k in keys})
    latest = filled.sort_values(["started_at", "run_id"], kind="stable").drop_duplicates(
        [f"_k_{k}" for k in keys], keep="last")
    return runs.loc[sorted(latest.index)]


def run_summary(runs: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per setup at its latest run (:func:`latest_per_setup`): the ``runs`` columns plus its
    ``COMBINED`` metrics (runs without metrics are dropped), with ``source_label`` (ours / external)
    and ``eval_set`` (``MOT17-half-val``)."""
    combined = metrics[metrics["sequence"] == "COMBINED"].drop(columns=["sequence"])
    df = latest_per_setup(runs[runs["run_id"].isin(list(combined["run_id"]))]).merge(combined, on="run_id",
                                                                                     how="inner")
    df["source_label"] = ["ours" if s == "cstrack" else "external" for s in df["source"]]
    df["eval_set"] = [f"{d}-{s}" if _text(s) else str(d) for d, s in zip(df["dataset"], df["split"], strict=True)]
    df["method"] = [_text(lbl) or _text(t) for lbl, t in zip(df["label"], df["tracker"], strict=True)]
    return df.sort_values(["run_id"], kind="stable").reset_index(drop=True)


def _run_rows_vi(summary: pd.DataFrame) -> list[dict[str, Any]]:
    rows = []
    # a boolean array, not a list: an empty list would select no *columns* (KeyError 'dataset' below)
    sel = summary[np.array([_text(m) != "gt" for m in summary["detection_mode"]], dtype=bool)]
    dup = sel.groupby(["dataset", "method"])["run_id"].transform("count") > 1
    for (_, r), is_dup in zip(sel.iterrows(), dup, strict=True):
        n_ids = int(r["MT"]) + int(r["PT"]) + int(r["ML"])
        rows.append({
            "Dataset": r["dataset"], "Split": _text(r["split"]),
            "Method": f"{r['method']} [{r['run_id']}]" if is_dup else r["method"],
            "Source": r["source_label"], "MOTA": _pct(r["MOTA"]), "IDF1": _pct(r["IDF1"]), "HOTA": _pct(r["HOTA"]),
            "MT": 100.0 * int(r["MT"]) / n_ids if n_ids else None,
            "ML": 100.0 * int(r["ML"]) / n_ids if n_ids else None,
            "FP": int(r["FP"]), "FN": int(r["FN"]), "IDSW": int(r["IDSW"]), "FPS": _num(r["fps"]),
            "_order": 0,
        })
    return rows


def table_vi(summary: pd.DataFrame, paper: pd.DataFrame | None) -> Table:
    """Table VI: the paper's published rows, imported external results and our runs."""
    rows: list[dict[str, Any]] = []
    if paper is not None:
        for i, p in enumerate(paper.to_dict("records")):
            upper = "upper bound" in _text(p.get("note"))
            rows.append({
                "Dataset": p["dataset"], "Split": p["split"], "Method": p["method"], "Source": "paper",
                "MOTA": _num(p["MOTA"]), "IDF1": _num(p["IDF1"]), "HOTA": None, "MT": _num(p["MT"]),
                "ML": _num(p["ML"]), "FP": _num(p["FP"]), "FN": _num(p["FN"]), "IDSW": _num(p["IDSW"]),
                "FPS": _num(p["FPS"]), "_fps_prefix": "<" if upper and _num(p["FPS"]) is not None else "",
                "_order": i,
            })
    rows += _run_rows_vi(summary)
    rows.sort(key=lambda r: (_dataset_key(r["Dataset"]), SOURCE_ORDER[r["Source"]], r["_order"], r["Method"],
                             r["Split"]))
    return Table("table_vi", "Table VI: comparison with published trackers (private detections; MOTA, IDF1, "
                 "HOTA, MT, ML in %)",
                 TABLE_VI_COLUMNS, tuple(rows), group="Dataset")


def table_ablations(summary: pd.DataFrame, paper: pd.DataFrame | None) -> Table:
    """Tables I, II, III and V: the paper's rows, then our runs grouped by setting (mean over runs)."""
    rows: list[dict[str, Any]] = []
    if paper is not None:
        for p in paper[paper["table"].isin(ABLATION_TABLES)].to_dict("records"):
            rows.append({"Table": p["table"], "Row": str(p["row"]), "Setting": p["setting"],
                         "Eval set": p["eval_set"], "Source": "paper", "Runs": None, "MOTA": _num(p["MOTA"]),
                         "IDF1": _num(p["IDF1"]), "IDSW": _num(p["IDSW"]), "_order": int(p["row"])})
    groups: dict[tuple[str, str, str, str], list[pd.Series]] = {}
    for _, r in summary.iterrows():
        config = json.loads(r["config_json"] or "{}")
        for t in ablation_tables(config):
            key = (t, setting_label(config, t), str(r["eval_set"]), str(r["source_label"]))
            groups.setdefault(key, []).append(r)
    for (t, setting, eval_set, source), members in groups.items():
        rows.append({"Table": t, "Row": "", "Setting": setting, "Eval set": eval_set, "Source": source,
                     "Runs": len(members),
                     "MOTA": sum(100.0 * float(m["MOTA"]) for m in members) / len(members),
                     "IDF1": sum(100.0 * float(m["IDF1"]) for m in members) / len(members),
                     "IDSW": sum(int(m["IDSW"]) for m in members) / len(members), "_order": 10**6})
    rows.sort(key=lambda r: (ABLATION_TABLES.index(r["Table"]), SOURCE_ORDER[r["Source"]], r["_order"],
                             r["Setting"], r["Eval set"]))
    return Table("ablations", "Tables I, II, III and V: ablations (paper rows, then our runs by setting; MOTA, "
                 "IDF1 in %)",
                 ABLATION_COLUMNS, tuple(rows), group="Table")


def table_upper_bound(summary: pd.DataFrame, paper: pd.DataFrame | None) -> Table:
    """Table VIII: association with ground-truth boxes against private detections, per variant.

    A variant appears when it has a ``gt``-mode run; its ``private`` row averages the private runs
    with the same config (ablation labels aside) on the same evaluation set.
    """
    rows: list[dict[str, Any]] = []
    if paper is not None:
        for p in paper[paper["table"] == "VIII"].to_dict("records"):
            rows.append({"Method": p["setting"], "Eval set": p["eval_set"], "Source": "paper", "Detections": "gt",
                         "Runs": None, "MOTA": _num(p["MOTA"]), "IDF1": _num(p["IDF1"]), "IDP": _num(p["IDP"]),
                         "IDR": _num(p["IDR"]), "IDSW": _num(p["IDSW"]), "_order": int(p["row"])})
    summary = summary.assign(
        _method=[_text(v) or _text(t) for v, t in zip(summary["variant"], summary["tracker"], strict=True)],
        _mode=[_text(m) for m in summary["detection_mode"]],
        _setup=[comparison_key(c) for c in summary["config_json"]],
    )
    keys = ["_method", "eval_set", "_setup", "source_label"]
    with_gt = {tuple(k) for k in summary.loc[summary["_mode"] == "gt", keys].itertuples(index=False)}
    setups_per_method: dict[tuple[str, str], set[str]] = {}
    for m, e, c, _ in with_gt:
        setups_per_method.setdefault((m, e), set()).add(c)
    for (method, eval_set, setup, source, mode), grp in summary.groupby([*keys, "_mode"]):
        if (method, eval_set, setup, source) not in with_gt or mode not in ("private", "gt"):
            continue
        name = method if len(setups_per_method[(method, eval_set)]) == 1 else f"{method} (config {setup[:8]})"
        rows.append({"Method": name, "Eval set": eval_set, "Source": source, "Detections": mode, "Runs": len(grp),
                     **{k: 100.0 * float(grp[k].mean()) for k in ("MOTA", "IDF1", "IDP", "IDR")},
                     "IDSW": float(grp["IDSW"].astype(float).mean()), "_order": 10**6})
    rows.sort(key=lambda r: (SOURCE_ORDER[r["Source"]], r["_order"], r["Method"], r["Eval set"],
                             0 if r["Detections"] == "private" else 1))
    return Table("upper_bound", "Table VIII: upper bound with ground-truth boxes (private vs gt detections; "
                 "MOTA, IDF1, IDP, IDR in %)",
                 UPPER_BOUND_COLUMNS, tuple(rows), group="Source")


BENCHMARK_COLUMNS = ("HOTA", "DetA", "AssA", "MOTA", "MOTP", "IDF1", "IDP", "IDR", "IDSW", "FP", "FN", "Frag",
                     "MT", "ML", "FPS")
_PERCENT = ("HOTA", "DetA", "AssA", "MOTA", "MOTP", "IDF1", "IDP", "IDR")


def benchmark_rows(summary: pd.DataFrame) -> dict[str, list[dict[str, Any]]]:
    """Per benchmark (dataset), the COMBINED metrics of each run in the summary (private/public
    detections, not gt), best HOTA first: ``Method, Source, Split`` and :data:`BENCHMARK_COLUMNS`
    (ratios in %, MT/ML as % of ground-truth ids, counts as counts)."""
    out: dict[str, list[dict[str, Any]]] = {}
    sel = summary[np.array([_text(m) != "gt" for m in summary["detection_mode"]], dtype=bool)]
    for _, r in sel.iterrows():
        n_ids = int(r["MT"]) + int(r["PT"]) + int(r["ML"])
        row: dict[str, Any] = {"Method": r["method"], "Source": r["source_label"], "Split": _text(r["split"]),
                               "Run": r["run_id"]}
        row.update({k: _pct(r[k]) for k in _PERCENT})
        row.update({k: int(r[k]) for k in ("IDSW", "FP", "FN", "Frag")})
        row["MT"] = 100.0 * int(r["MT"]) / n_ids if n_ids else None
        row["ML"] = 100.0 * int(r["ML"]) / n_ids if n_ids else None
        row["FPS"] = _num(r["fps"])
        out.setdefault(str(r["dataset"]), []).append(row)
    for rows in out.values():
        rows.sort(key=lambda r: (-(r["HOTA"] if r["HOTA"] is not None else -1e9), r["Method"], r["Split"]))
    return dict(sorted(out.items(), key=lambda kv: _dataset_key(kv[0])))


def summary_text(dataset: str, rows: list[dict[str, Any]]) -> str:
    """A benchmark's summary as plain text, like TrackEval's ``<tracker>_summary.txt`` (a header of
    metric names, then values) with one line per method: fixed-width columns, ratios in %."""
    width = max([len("Method"), *(len(str(r["Method"]).replace(" ", "_")) for r in rows)])
    head = f"{'Method':<{width}} {'Split':<10} " + " ".join(f"{c:>8}" for c in BENCHMARK_COLUMNS)
    lines = [f"# {dataset}: COMBINED metrics per method (latest run of each); HOTA..IDR, MT, ML in %, "
             "IDSW/FP/FN/Frag counts, FPS frames/s", head]
    for r in rows:
        vals = []
        for c in BENCHMARK_COLUMNS:
            v = r.get(c)
            vals.append(f"{'-':>8}" if v is None else f"{v:>8.0f}" if c in ("IDSW", "FP", "FN", "Frag")
                        else f"{v:>8.3f}")
        lines.append(f"{str(r['Method']).replace(' ', '_'):<{width}} {r['Split'] or '-':<10} " + " ".join(vals))
    return "\n".join(lines) + "\n"


def comparison_key(config_json: str | None) -> str:
    """Hash of a run's config without its ``ablation`` labels: runs with the same key differ only
    in what the ``runs`` row records outside the config (detection mode, seed, hardware)."""
    config = json.loads(config_json or "{}")
    config.pop("ablation", None)
    return stable_hash(config)


def read_paper(reference_dir: str | Path | None) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """``(paper_table_vi.csv, paper_ablations.csv)`` from ``reference_dir`` (``None`` when absent)."""
    if reference_dir is None:
        return None, None
    d = Path(reference_dir)
    vi, ab = d / "paper_table_vi.csv", d / "paper_ablations.csv"
    return (pd.read_csv(vi, dtype={"note": str}) if vi.is_file() else None,
            pd.read_csv(ab, dtype={"row": int}) if ab.is_file() else None)
