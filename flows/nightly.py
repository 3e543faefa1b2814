"""``nightly``: prepare the data -> track-all over the benchmark list -> CPU calibration -> compare
with the previous nightly run in the catalog (metric and fps deltas as a markdown artifact).

Each metric's delta is the mean of the per-sequence deltas with a paired bootstrap interval
(:mod:`catalog.stats`: seeded, 10,000 resamples); fps is compared after dividing by the GEMM
calibration measured in this run (and the previous run's own).  The flow fails when a sequence
failed or a drop exceeds a ``fail`` threshold **with an interval that excludes zero**, and logs a
warning (flagged in the artifact) for the ``warn`` threshold under the same rule.
"""

from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.logging import get_run_logger

from flows.params import NightlyParams, PrepareDataParams
from flows.prepare_data import prepare_data
from flows.track_all import SequencesFailedError, track_all
from tasks.compare import FAIL, OK, WARN, calibrate_cpu, compare_with_previous
from tasks.publish import artifact_key, md_table, publish_markdown

NIGHTLY_TAG = "nightly"


class NightlyRegressionError(RuntimeError):
    """A metric or fps drop beyond its ``fail`` threshold."""


def comparison_markdown(cmp: dict[str, Any], thresholds: dict[str, Any], summary: dict[str, Any]) -> str:
    order = {FAIL: 0, WARN: 1, OK: 2}
    lines = [f"# Nightly comparison: {cmp['worst'].upper()}",
             f"thresholds: metric drop warn > {thresholds['metric_warn']}, fail > {thresholds['metric_fail']} "
             f"(fractions); fps drop warn > {thresholds['fps_warn']:.0%}, fail > {thresholds['fps_fail']:.0%}; "
             f"this run: {summary.get('tracked', 0)} tracked, {summary.get('cached', 0)} cached"]
    lines.append(md_table(["catalog run", "previous nightly run"],
                          [[k, v or "(none: first nightly of this set)"] for k, v in sorted(cmp["pairs"].items())]))
    stats = cmp.get("summary", [])
    if stats:
        lines.append("## Deltas with 95 % paired bootstrap intervals over sequences\n"
                     "A regression is called only when the interval excludes zero and the drop exceeds the threshold. "
                     "Metric deltas are absolute (fractions); fps is the relative change after dividing by each "
                     "run's CPU calibration (GEMM GFLOP/s).")
        lines.append(md_table(["status", "metric", "sequences", "mean delta", "95 % interval", "note"],
                              [[r["status"].upper() if r["status"] != OK else "ok", r["metric"], r["n"],
                                f"{r['delta']:+.4f}", f"[{r['low']:+.4f}, {r['high']:+.4f}]", r["note"]]
                               for r in stats]))
    seqs = cmp.get("sequences", [])
    if seqs:
        metrics = list(thresholds["metrics"])
        lines.append("## Per-sequence deltas")
        lines.append(md_table(["dataset", "sequence", *[f"{m} delta" for m in metrics], "fps change"],
                              [[r["dataset"], r["sequence"], *[f"{r[f'{m}_delta']:+.4f}" for m in metrics],
                                "-" if r.get("fps_rel") is None or r.get("fps_rel") != r.get("fps_rel")
                                else f"{r['fps_rel']:+.1%}"] for r in seqs]))
    rows = sorted(cmp["rows"], key=lambda r: (order[r["status"]], r["dataset"], r["sequence"] != "COMBINED",
                                              r["sequence"], r["metric"]))
    if rows:
        lines.append("## Raw values (flags: fixed thresholds alone, for reference)")
        lines.append(md_table(
            ["flag", "dataset", "split", "sequence", "metric", "previous", "current", "delta"],
            [[r["status"].upper() if r["status"] != OK else "ok", r["dataset"], r["split"], r["sequence"], r["metric"],
              r["previous"], r["current"], r["delta"]] for r in rows]))
    else:
        lines.append("Nothing to compare yet.")
    if summary.get("failed"):
        lines.append("## Failed\n" + "\n".join(f"- {f}" for f in summary["failed"]))
    return "\n\n".join(lines) + "\n"


@flow(name="nightly", log_prints=True)
def nightly(params: NightlyParams) -> dict[str, Any]:
    logger = get_run_logger()
    if params.prepare:
        prepare_data(PrepareDataParams(datasets=params.prepare, data_root=params.track.data_root))
    track = params.track.model_copy(update={"tag": NIGHTLY_TAG})
    failure: SequencesFailedError | None = None
    try:
        summary = track_all(track)
    except SequencesFailedError as exc:
        summary, failure = exc.summary, exc
    thresholds = params.thresholds.model_dump()
    gflops = calibrate_cpu(summary["catalog"], summary["catalog_runs"])
    logger.info("CPU calibration: %.1f GFLOP/s (fixed GEMM)", gflops)
    cmp = compare_with_previous(summary["catalog"], summary["catalog_runs"], thresholds, NIGHTLY_TAG)
    publish_markdown(artifact_key("nightly-comparison", track.run_name), comparison_markdown(cmp, thresholds, summary),
                     "nightly: metric and fps deltas against the previous nightly run")
    bad = [r for r in cmp["summary"] if r["status"] != OK]
    for r in bad:
        logger.warning("%s %s: mean delta %+.4g, 95%% interval [%+.4g, %+.4g] over %d sequences", r["status"].upper(),
                       r["metric"], r["delta"], r["low"], r["high"], r["n"])
    if failure is not None:
        raise failure
    if cmp["worst"] == FAIL:
        fails = [f"{r['metric']} {r['delta']:+.4g} [{r['low']:+.4g}, {r['high']:+.4g}]"
                 for r in bad if r["status"] == FAIL]
        raise NightlyRegressionError("regression beyond the fail thresholds (interval excludes 0):\n  "
                                     + "\n  ".join(fails))
    return {"summary": summary, "comparison": {k: cmp[k] for k in ("pairs", "worst", "summary")},
            "deltas": len(cmp["rows"]), "cpu_gflops": gflops}
