"""The results catalog: Hive-partitioned Parquet tables of runs, metrics, events, tracks and
training steps (:mod:`catalog.schemas`), written atomically and read back as typed pandas frames
(:mod:`catalog.store`; ``load`` serves the runs and metrics of a catalog of years from the index
:func:`compact` writes, :mod:`catalog.compact`); ingestion of evaluations (:mod:`catalog.ingest`), evaluate + record in
one call (:mod:`catalog.record`), every run id (:mod:`catalog.runids`), the trainer's step writer
(:mod:`catalog.train_steps`) and the regenerated paper tables (:mod:`catalog.report`).

    import catalog
    runs = catalog.load("runs", root="results")
    mota = catalog.load("sequence_metrics", filters={"sequence": "COMBINED"}, root="results")
"""

from catalog.compact import compact, load
from catalog.schemas import TABLES, SchemaError
from catalog.store import DEFAULT_ROOT, delete_run, run_ids, write

__all__ = ["DEFAULT_ROOT", "TABLES", "SchemaError", "compact", "delete_run", "load", "run_ids", "write"]
