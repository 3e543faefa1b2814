"""``cstrack tune``: tune the tracker on cached network outputs, with a leakage-guarded validation.

    cstrack tune SEQ_DIR... --weights W --trials N --study NAME [--val SEQ_DIR...] [--objective HOTA]
                 [--results ROOT] [--workers K] [--json]

The network runs once per sequence (cached under ``ROOT/detcache``); every trial replays the cache
through the tracker and is scored with TrackEval.  Without ``--val`` the half protocol applies
(tune on frames ``1..n//2``, validate on ``n//2+1..n``).  See :mod:`cstrack.tune.pipeline` for the
files written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from cstrack.cli.common import check_output_dir, file_inputs, guarded, print_json
from cstrack.cli.model_options import device_option, speaks_flags
from cstrack.pathrules import Input


def dask_mapper(workers: int) -> tuple[Any, Any]:
    """``(mapper, close)``: trials scored as tasks on a local Dask cluster of ``workers`` processes."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                           host="127.0.0.1")
    client = Client(cluster)

    def mapper(fn: Any, *iterables: Any) -> list[Any]:
        return client.gather(client.map(fn, *iterables, pure=False))

    def close() -> None:
        client.close()
        cluster.close()

    return mapper, close


def register(app: typer.Typer) -> None:
    @app.command("tune")
    @guarded
    @speaks_flags
    def tune(
        sources: list[Path] = typer.Argument(..., help="MOTChallenge sequence folders to tune on"),
        weights: str = typer.Option(..., "--weights", help="checkpoint path (with its .json record) or 'coco'"),
        trials: int = typer.Option(..., "--trials", min=1, help="completed trials the study should have in total"),
        study: str = typer.Option(..., "--study", help="study name; running it again continues it"),
        val: list[Path] = typer.Option(
            [], "--val", help="validation sequence folders (repeatable); none: the half protocol on SOURCE"),
        objective: str = typer.Option("HOTA", "--objective", help="HOTA, MOTA, IDF1, DetA or AssA (maximised)"),
        results: Path = typer.Option(Path("results"), "--results", help="results root (caches, study, catalog)"),
        catalog: Path | None = typer.Option(None, "--catalog", help="catalog root (default: --results)"),
        preset_name: str | None = typer.Option(
            None, "--preset", metavar="NAME|FILE",
            help="tracker preset whose search space is searched and whose values are the baseline: a built-in "
                 "name (default, original, sots, mot17, mot20) or a preset file; default: the checkpoint's"),
        variant: str | None = typer.Option(None, "--variant", help="model variant (default: the checkpoint's)"),
        size: str | None = typer.Option(None, "--size", help="network input WxH (default: the checkpoint's)"),
        model_path: str = typer.Option("auto", "--path", help="inference path of the cached outputs: auto, eager, "
                                       "fast, onnx or int8"),
        device: str = device_option(),
        floor: float = typer.Option(0.1, "--score-floor", help="lowest detection score kept in the cache"),
        eval_preset: str | None = typer.Option(None, "--eval-preset", help="evaluation preset (default: by name)"),
        seed: int = typer.Option(0, "--seed", help="TPE sampler seed"),
        batch: int = typer.Option(4, "--batch", min=1, help="trials proposed and scored together"),
        workers: int = typer.Option(1, "--workers", min=1, help="Dask worker processes scoring trials (1: here)"),
        json_out: bool = typer.Option(False, "--json", help="print the study summary as JSON"),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="progress bars while caching"),
    ) -> None:
        """Tune tracker parameters on SOURCE sequences; validate the best once on --val (or the val half)."""
        from catalog.record import tune_trials_writer
        from cstrack.cli.cached_track import ensure_caches
        from cstrack.model.inference_settings import settings_for_weights
        from cstrack.tune.pipeline import build_jobs, check_names, run, study_dir
        from cstrack.tune.study import StudyConfig

        # the baseline is what runs without tuning: the checkpoint's own preset and detection threshold
        own = settings_for_weights(None if weights == "random" else weights)
        preset_name = preset_name or own.tracker_preset
        cfg = StudyConfig(study, trials, preset_name, objective, seed, batch, baseline_conf=own.conf_thres)
        check_names([*sources, *val])  # before any network work
        check_output_dir(results, "--results", [Input(s, "SOURCE") for s in sources] +
                         [Input(v, "--val") for v in val] + file_inputs(weights))
        caches = ensure_caches([*sources, *val], results, weights, variant, size, model_path, floor, progress,
                               device=device)
        sdir = study_dir(results, study)
        tune_job, val_job, protocol = build_jobs(caches[: len(sources)], caches[len(sources):], sdir, preset_name,
                                                 objective, eval_preset)
        log = (lambda m: None) if json_out else (lambda m: typer.echo(m, err=True))
        mapper, close = dask_mapper(workers) if workers > 1 else (None, None)
        try:
            result = run(cfg, tune_job, val_job, sdir, tune_trials_writer(catalog or results), mapper, log)
        finally:
            if close is not None:
                close()
        if json_out:
            print_json(result.to_json())
            return
        typer.echo(f"study {study}: {len(result.trials)} trials ({result.new_trials} new), protocol {protocol}")
        typer.echo(f"tuned on {', '.join(result.tune_windows)}: best {objective} {result.tune_score:.4f} "
                   f"(baseline {result.default_tune_score:.4f})")
        typer.echo(f"validated on {', '.join(result.val_windows)}: best {result.val_score:.4f}, "
                   f"baseline {result.default_val_score:.4f}"
                   + ("" if result.beats_baseline else " -- NOT better than the baseline: no best_preset.yaml written"))
        for k, v in result.files.items():
            typer.echo(f"{k}: {v}")
