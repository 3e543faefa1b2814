"""``make demo`` / ``python -m flows.demo``: the main job end to end on embedded defaults.

A temporary Prefect server (its home under ``<results>/.prefect-demo``, removed afterwards) and a
LocalCluster sized to the cores run the ``demo`` flow (:mod:`flows.demo_flow`): convert the PETS09
video and the other shipped data into ``./data``, track, evaluate, catalogue into ``./results``,
regenerate the tables, render ``results/videos/PETS09-S2L1.mp4`` and print the tables.  A second
run reuses everything already done (prepared data, cached sequence results, the rendered video).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

from cstrack.errors import ConfigError
from stack.temporary import STARTUP_ENV, ServerStartError, startup_limit, temporary_prefect_server


def flush_prefect() -> None:
    """Deliver buffered logs and events to the API now (at interpreter exit the server is gone and
    the delivery would retry against a closed port)."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)
    EventsWorker.drain_all(timeout=10)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m flows.demo", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="data", help="data root (default ./data)")
    ap.add_argument("--results", default="results", help="results root (default ./results)")
    ap.add_argument("--weights", default=None, help="checkpoint; default weights/cstrack-n_cpu.pt (the shipped CPU checkpoint), else COCO")
    ap.add_argument("--workers", type=int, default=None, help="LocalCluster workers (default: the cores)")
    args = ap.parse_args(argv)
    t0 = time.time()
    home = Path(args.results).resolve() / ".prefect-demo"
    try:
        limit = startup_limit()
    except ConfigError as exc:
        print(f"[demo] error: {exc}", file=sys.stderr)
        return 2
    print(f"[demo] starting a temporary Prefect server (home {home}), waiting up to {limit} s ({STARTUP_ENV})",
          flush=True)
    failed_start = False
    try:
        with temporary_prefect_server(home, limit) as settings:
            os.environ.update(settings)  # before Prefect is imported: the flow and the Dask workers use it
            os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")
            print(f"[demo] Prefect API at {settings['PREFECT_API_URL']} ({time.time() - t0:.0f} s)", flush=True)
            from flows.demo_flow import demo
            from flows.params import DemoParams

            params = DemoParams(data_root=args.data, results_root=args.results, weights=args.weights,
                                local_workers=args.workers)
            state = demo(params, return_state=True)
            out = state.result(raise_on_failure=False)
            flush_prefect()  # send the last logs and events while the server is still up
    except ServerStartError as exc:
        failed_start = True  # its home (and the server log the message names) is kept
        print(f"[demo] error: {exc}", file=sys.stderr)
        return 1
    finally:
        if not failed_start:
            shutil.rmtree(home, ignore_errors=True)
    if isinstance(out, BaseException):
        print(f"[demo] FAILED: {out}", file=sys.stderr)
        return 1
    summary = out["track_all"]
    print("\n" + "=" * 100)
    print(f"demo: {summary['sequences']} sequences ({summary['tracked']} tracked, {summary['cached']} from the "
          f"cache) on {', '.join(summary['workers'])}; results in {summary['results']}")
    for m in summary["metrics"]:
        print(f"\n{m['table']}", end="")
    report = Path(summary["tables"]) / "report.md"
    if report.is_file():
        print("\n" + report.read_text(encoding="utf-8"))
    print(f"tables:  {summary['tables']}/ (report.md, table_vi.*, ablations.*, upper_bound.*, summary_*.txt, *.png)")
    page = Path(summary["tables"]) / "report.html"
    if page.is_file():
        print(f"report:  {page.resolve().as_uri()} (one self-contained page: open it in a browser, it needs no server)")
    print(f"catalog: {summary['catalog']}/ (runs, sequence_metrics, events, tracks)")
    print(f"video:   {out['video']['path']} ({out['video']['frames']} frames, {out['video']['tracks']} tracks)")
    print("note:    the Prefect UI links printed above (http://127.0.0.1:...) were of the demo's temporary "
          "server, which has stopped with it; the report page and the catalog stay. For a UI that stays, run "
          "`python -m stack up` and the deployments (docs/pipeline.md).")
    print(f"demo finished in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
