"""``evaluate``: MOTChallenge metrics of any result folder (ours or another tracker's), optionally
recorded in the catalog; the table is published as a markdown artifact."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from prefect import flow

from catalog.ingest import RunInfo
from catalog.runids import catalog_run_id
from cstrack.fsutil import stable_hash
from flows.params import EvaluateParams
from tasks.catalog import evaluate_task
from tasks.publish import artifact_key, metrics_markdown, publish_markdown


def results_content(results: Path) -> dict[str, str]:
    """``{file name: sha256}`` of the result files: the ``results_hash`` of the catalog run, by which a
    later evaluation of the same files shares this one's ``tracks``/``events`` rows."""
    from cstrack.eval.inputs import results_dir
    from cstrack.fsutil import sha256_file

    folder = results_dir(results)
    return {p.name: sha256_file(p) for p in sorted(folder.glob("*.txt"))}


@flow(name="evaluate", log_prints=True)
def evaluate(params: EvaluateParams) -> dict[str, Any]:
    gt_root = str(Path(params.gt_root).expanduser().resolve())
    results = Path(params.results).expanduser().resolve()
    run = None
    if params.catalog_root is not None:
        from prefect.runtime import flow_run

        # every flow run is an observation (its own run id); equal results share tracks/events rows
        started = dt.datetime.now(dt.UTC)
        content = {"results": results_content(results), "preset": params.preset, "sequences": params.sequences}
        flow_id = str(flow_run.id) if flow_run.id else None
        root = str(flow_run.root_flow_run_id) if flow_run.root_flow_run_id else flow_id
        run = RunInfo(
            run_id=catalog_run_id(params.tracker_name, params.dataset, params.split,
                                  {"content": content, "flow": flow_id or started.isoformat()}),
            dataset=params.dataset, tracker=params.tracker_name, source=params.source,
            split=params.split, eval_preset=params.preset, results_uri=str(results),
            config={"preset": params.preset}, flow_run_id=flow_id, run_group=root, started_at=started,
            results_hash=stable_hash(content), sequences_tracked=0, sequences_cached=0,
        )
    catalog_root = None if params.catalog_root is None else str(Path(params.catalog_root).expanduser().resolve())
    label = f"{params.tracker_name} on {params.dataset}" + (f"/{params.split}" if params.split else "")
    res = evaluate_task(gt_root, str(results), params.sequences, params.preset, label, catalog_root, run,
                        params.allow_missing)
    print(res["table"])
    publish_markdown(artifact_key("evaluate", params.tracker_name, params.dataset), f"# {label}\n\n"
                     + metrics_markdown([res]) + "\n", f"evaluation of {results}")
    return res
