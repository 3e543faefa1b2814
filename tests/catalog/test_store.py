"""catalog.store: round trips on two filesystems, partition layout, replace/append, schema checks,
atomic writes."""

from __future__ import annotations

import datetime as dt
import uuid

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

import catalog
from catalog import store
from catalog.schemas import TABLES, SchemaError, file_schema

T0 = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def steps(n: int, start: int = 0) -> list[dict]:
    return [
        {"epoch": k // 10, "step": start + k, "loss_total": 1.0 / (k + 1), "loss_box": 0.5, "loss_obj": 0.25,
         "loss_id": None if k == 0 else 0.125, "lr": 5e-3, "images_per_s": 8.5, "time": T0 + dt.timedelta(seconds=k)}
        for k in range(n)
    ]


@pytest.fixture(params=["local", "file-url", "memory"])
def root(request, tmp_path):
    if request.param == "local":
        yield str(tmp_path / "results")
        return
    if request.param == "file-url":
        yield (tmp_path / "results").as_uri()
        return
    name = f"memory://cat-{uuid.uuid4().hex}"
    yield name
    fs, path = store.filesystem(name)
    if fs.exists(path):
        fs.rm(path, recursive=True)


def test_round_trip_keeps_values_and_types(root):
    assert catalog.write("train_steps", steps(3), root, run_id="r1") == ["r1"]
    df = catalog.load("train_steps", root=root)
    assert list(df.columns) == TABLES["train_steps"].names
    assert df["step"].tolist() == [0, 1, 2] and (df["run_id"] == "r1").all()
    assert df["loss_total"].tolist() == [1.0, 0.5, 1 / 3]
    assert pd.isna(df["loss_id"].iloc[0]) and df["loss_id"].iloc[1] == 0.125
    assert df["time"].iloc[2] == pd.Timestamp(T0 + dt.timedelta(seconds=2))
    assert {c: str(t) for c, t in df.dtypes.items()} == {
        "run_id": "string", "epoch": "Int32", "step": "Int64", "loss_total": "float64", "loss_box": "float64",
        "loss_obj": "float64", "loss_id": "float64", "lr": "float64", "images_per_s": "float64",
        "time": "datetime64[us, UTC]",
    }


def test_partition_layout_one_file_per_run(tmp_path):
    root = tmp_path / "results"
    catalog.write("train_steps", [{**r, "run_id": "a"} for r in steps(2)] + [{**r, "run_id": "b"} for r in steps(1)],
                  root)
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert files == ["train_steps/run_id=a/part-0.parquet", "train_steps/run_id=b/part-0.parquet"]
    # the partition column lives in the directory name only; any Hive reader gets it back
    assert pq.read_schema(root / files[0]).names == file_schema("train_steps").names
    t = ds.dataset(root / "train_steps", format="parquet", partitioning="hive").to_table()
    assert sorted(t["run_id"].to_pylist()) == ["a", "a", "b"]
    assert catalog.run_ids("train_steps", root) == ["a", "b"]


def test_rewriting_a_run_replaces_it_and_append_adds(root):
    catalog.write("train_steps", steps(3), root, run_id="r1")
    catalog.write("train_steps", steps(2), root, run_id="r2")
    catalog.write("train_steps", steps(3), root, run_id="r1")  # same run again: no duplicates
    df = catalog.load("train_steps", root=root)
    assert df.groupby("run_id").size().to_dict() == {"r1": 3, "r2": 2}
    catalog.write("train_steps", steps(1, start=100), root, run_id="r1", mode="append")
    assert catalog.load("train_steps", {"run_id": "r1"}, root)["step"].tolist() == [0, 1, 2, 100]
    catalog.write("train_steps", [], root, run_id="r1")  # replacing with nothing empties the run
    assert catalog.load("train_steps", root=root)["run_id"].unique().tolist() == ["r2"]


def test_filters_and_columns(root):
    catalog.write("train_steps", steps(4), root, run_id="r1")
    catalog.write("train_steps", steps(2), root, run_id="r2")
    assert len(catalog.load("train_steps", {"run_id": ["r2"]}, root)) == 2
    assert catalog.load("train_steps", [("step", ">=", 2), ("run_id", "=", "r1")], root)["step"].tolist() == [2, 3]
    expr = pc.field("loss_total") < 0.3  # 1/(k+1): only step 3 (0.25)
    assert catalog.load("train_steps", expr, root)["step"].tolist() == [3]
    sub = catalog.load("train_steps", {"run_id": "r2"}, root, columns=["step", "lr"])
    assert list(sub.columns) == ["step", "lr"]
    with pytest.raises(SchemaError, match="unknown column"):
        catalog.load("train_steps", root=root, columns=["nope"])


def test_empty_catalog_gives_typed_empty_frames(tmp_path):
    for table, sch in TABLES.items():
        df = catalog.load(table, root=tmp_path / "nothing")
        assert df.empty and list(df.columns) == sch.names
    assert str(catalog.load("runs", root=tmp_path)["cpu_cores"].dtype) == "Int32"


def test_runs_map_column_round_trip(root):
    row = {f.name: None for f in TABLES["runs"]}
    row.update(run_id="x", source="cstrack", tracker="cstrack-l", config_json="{}", config_hash="0" * 64,
               dataset="MOT17", cpu_cores=2, git_dirty=False, packages={"numpy": "2.4.6", "torch": "2.13.0"},
               started_at=T0)
    catalog.write("runs", [row], root)
    got = catalog.load("runs", root=root).iloc[0]
    assert got["packages"] == {"numpy": "2.4.6", "torch": "2.13.0"}
    assert got["git_dirty"] is np.False_ or got["git_dirty"] is False
    assert pd.isna(got["ended_at"]) and got["started_at"] == pd.Timestamp(T0)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r.pop("lr"), r"missing column\(s\) \['lr'\]"),
        (lambda r: r.update(extra=1), r"unknown column\(s\) \['extra'\]"),
        (lambda r: r.update(lr="fast"), r"train_steps\.lr: expected double, got string"),
        (lambda r: r.update(step=1.5), r"train_steps\.step: expected int64, got double"),
        (lambda r: r.update(epoch=2**40), r"train_steps\.epoch: values do not fit int32"),
        (lambda r: r.update(step=None), r"train_steps\.step: required column has a null"),
        (lambda r: r.update(time=dt.datetime(2026, 1, 1)), "timezone-aware"),
        (lambda r: r.update(run_id="../evil"), "run_id: '../evil'"),
    ],
)
def test_schema_rejections(tmp_path, mutate, message):
    row = {**steps(1)[0], "run_id": "r1"}
    mutate(row)
    with pytest.raises(SchemaError, match=message):
        catalog.write("train_steps", [row], tmp_path)
    assert not (tmp_path / "train_steps").exists()  # nothing written


def test_dataframe_with_wrong_dtype_and_unknown_table(tmp_path):
    df = pd.DataFrame(steps(2))
    df["frame_rate_typo"] = 1
    with pytest.raises(SchemaError, match="unknown column"):
        catalog.write("train_steps", df, tmp_path, run_id="r")
    df = pd.DataFrame(steps(2)).assign(epoch=["0", "1"])
    with pytest.raises(SchemaError, match=r"epoch: expected int32, got (large_)?string"):
        catalog.write("train_steps", df, tmp_path, run_id="r")
    with pytest.raises(SchemaError, match="unknown catalog table 'metrics'"):
        catalog.write("metrics", [], tmp_path)
    with pytest.raises(SchemaError, match="rows of run 'a' given with run_id='b'"):
        catalog.write("train_steps", [{**steps(1)[0], "run_id": "a"}], tmp_path, run_id="b")


@pytest.mark.parametrize("kind", ["local", "memory"])
def test_crash_during_write_leaves_the_old_file(tmp_path, monkeypatch, kind):
    root = str(tmp_path) if kind == "local" else f"memory://crash-{uuid.uuid4().hex}"
    catalog.write("train_steps", steps(3), root, run_id="r1")
    real = pq.write_table

    def half_then_crash(table, where, **kwargs):
        real(table.slice(0, 1), where, **kwargs)  # bytes are on disk ...
        raise OSError("disk full")  # ... and then the process "dies"

    monkeypatch.setattr(pq, "write_table", half_then_crash)
    with pytest.raises(OSError, match="disk full"):
        catalog.write("train_steps", steps(5), root, run_id="r1")
    monkeypatch.setattr(pq, "write_table", real)
    assert catalog.load("train_steps", root=root)["step"].tolist() == [0, 1, 2]
    fs, base = store.filesystem(root)
    leftovers = [p for p in fs.find(base) if not p.endswith("part-0.parquet")]
    assert leftovers == []


def test_write_accepts_arrow_tables_and_column_dicts(tmp_path):
    cols = {k: [r[k] for r in steps(2)] for k in steps(1)[0]}
    catalog.write("train_steps", cols, tmp_path, run_id="d")
    catalog.write("train_steps", pa.Table.from_pylist([{**r, "run_id": "t"} for r in steps(1)]), tmp_path)
    assert catalog.load("train_steps", root=tmp_path).groupby("run_id").size().to_dict() == {"d": 2, "t": 1}
    assert catalog.delete_run("d", tmp_path) == ["train_steps"]
    assert catalog.run_ids("train_steps", tmp_path) == ["t"]


def _stats_row(seq: str, read_ms: float) -> dict:
    return {"sequence": seq, "frames": 10, "fps": 20.0, "source_fps": 25.0, "tracks": 1, "boxes": 10,
            "boxes_per_frame": 1.0, "track_len_mean": 10.0, "track_len_median": 10.0, "track_len_max": 10,
            "read_ms": read_ms, "preprocess_ms": 1.0, "forward_ms": 30.0, "postprocess_ms": 2.0, "associate_ms": 0.5}


def test_partitions_written_before_the_stage_rename_are_read(root):
    """A partition written when the frame-reading stage was ``decode`` (column ``decode_ms``): its
    values come back as ``read_ms``, beside partitions written since, filters and appends included."""
    catalog.write("sequence_stats", [_stats_row("new", 3.0)], root, run_id="now")
    fs, base = store.filesystem(root)
    old_row = {("decode_ms" if k == "read_ms" else k): v for k, v in _stats_row("old", 7.0).items()}
    fields = [pa.field("decode_ms", pa.float64()) if f.name == "read_ms" else f for f in file_schema("sequence_stats")]
    old_table = pa.Table.from_pylist([old_row], schema=pa.schema(fields))
    fs.makedirs(f"{base}/sequence_stats/run_id=before", exist_ok=True)
    with fs.open(f"{base}/sequence_stats/run_id=before/part-0.parquet", "wb") as fh:
        pq.write_table(old_table, fh)

    df = catalog.load("sequence_stats", root=root)
    assert "decode_ms" not in df.columns
    assert dict(zip(df["run_id"], df["read_ms"], strict=True)) == {"before": 7.0, "now": 3.0}
    assert df.set_index("run_id").loc["before", "forward_ms"] == 30.0
    only_old = catalog.load("sequence_stats", {"run_id": "before"}, root, columns=["sequence", "read_ms"])
    assert only_old.to_dict("records") == [{"sequence": "old", "read_ms": 7.0}]
    assert catalog.load("sequence_stats", [("read_ms", ">", 5.0)], root)["run_id"].tolist() == ["before"]
    # an append rewrites the old partition under the names of now
    catalog.write("sequence_stats", [_stats_row("more", 4.0)], root, run_id="before", mode="append")
    after = catalog.load("sequence_stats", {"run_id": "before"}, root)
    assert after["read_ms"].tolist() == [4.0, 7.0] and after["sequence"].tolist() == ["more", "old"]
