"""``cstrack eval`` (evaluation as the MOTChallenge server, optional catalog ingestion) and
``cstrack report`` (tables and figures regenerated from the catalog)::

    cstrack eval --gt-root data/MOT17/train --results-root out/ --preset mot17 --json metrics.json
    cstrack eval --gt-root gt/ --results-root trackers/MPNTrack --preset mot20 --import-tracker MPNTrack
    cstrack report --results results --out tables/
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import typer

from cstrack.cli.common import catalog_outputs, check_output_dir, check_output_file, file_inputs, guarded
from cstrack.errors import ConfigError
from cstrack.pathrules import Input, Output, check_paths


def _sequences(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    out = [s.strip() for v in values for s in v.split(",") if s.strip()]
    return out or None


def _tracked_settings(res_dir: Path, sequences: Sequence[str]) -> dict[str, Any] | None:
    """The effective inference settings ``cstrack track`` stored in ``res_dir/timing.json`` for
    ``sequences`` (:mod:`cstrack.cli.track_cmds`), when every sequence has the same; else ``None``."""
    path = res_dir / "timing.json"
    try:
        timing = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (ValueError, UnicodeDecodeError):
        return None
    found = [timing.get(s, {}).get("settings") if isinstance(timing.get(s), dict) else None for s in sequences]
    first = found[0] if found else None
    if first is None or any(f != first for f in found):
        return None
    return dict(first)


def _load_config(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    if not path.is_file():
        raise ConfigError(f"--config: {path} not found")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"--config: {path} is not UTF-8 text (byte {exc.start})") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        from cstrack.fsutil import load_yaml

        try:
            data = load_yaml(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f":{mark.line + 1}" if mark is not None else ""
            raise ConfigError(f"--config: {path}{where} is not valid YAML ({getattr(exc, 'problem', None) or exc})") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"--config: {path} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--config: {path} must hold a mapping")
    return data


def register(app: typer.Typer) -> None:
    @app.command("eval")
    @guarded
    def eval_cmd(
        gt_root: Path = typer.Option(..., "--gt-root", help="folder of SEQ/seqinfo.ini + SEQ/gt/gt.txt"),
        results_root: Path = typer.Option(..., "--results-root", help="folder of SEQ.txt (or tracker folder with data/)"),
        preset: str = typer.Option("mot17", "--preset", help="mot16, mot17, mot20, mot15 or plain"),
        sequences: list[str] | None = typer.Option(None, "--sequences", help="sequences (repeat or comma-separate); "
                                                   "default: seqmap.txt or every folder"),
        json_out: Path | None = typer.Option(None, "--json", help="write {SEQ|COMBINED: metrics} here"),
        catalog_root: str | None = typer.Option(None, "--catalog", help="ingest the run into this catalog root "
                                                "(path or fsspec URL)"),
        import_tracker: str | None = typer.Option(None, "--import-tracker", help="record the results as external "
                                                  "tracker NAME (catalog default ./results)"),
        allow_missing: bool = typer.Option(False, "--allow-missing", help="count a missing SEQ.txt as empty"),
        workers: int = typer.Option(1, "--workers", min=1, help="processes for the metric computation"),
        run_id: str | None = typer.Option(None, "--run-id", help="catalog run id (default: derived from the "
                                          "result files, so re-ingesting replaces)"),
        label: str | None = typer.Option(None, "--label", help="display name in reports"),
        tag: str | None = typer.Option(None, "--tag", help="catalog tag, e.g. nightly"),
        dataset: str | None = typer.Option(None, "--dataset", help="dataset name (default: the preset's benchmark)"),
        split: str | None = typer.Option(None, "--split", help="split name, e.g. train or half-val"),
        variant: str | None = typer.Option(None, "--variant", help="our model variant, e.g. cstrack-l"),
        detection_mode: str | None = typer.Option(None, "--detection-mode", help="private, public or gt"),
        config: Path | None = typer.Option(None, "--config", help="run config (JSON or YAML) stored with the run"),
        weights: Path | None = typer.Option(None, "--weights", help="weights file whose sha256 is recorded"),
        events: bool = typer.Option(True, "--events/--no-events", help="store the motmetrics event log"),
        tracks: bool = typer.Option(True, "--tracks/--no-tracks", help="store the result rows"),
    ) -> None:
        """Evaluate SEQ.txt results against the ground truth exactly as the MOTChallenge server."""
        from catalog import DEFAULT_ROOT
        from catalog.ingest import RunInfo, results_fingerprint
        from catalog.record import evaluate_into_catalog
        from catalog.runids import catalog_run_id
        from cstrack.eval import format_table, get_preset
        from cstrack.eval.inputs import results_dir
        from cstrack.eval.result import EvalResult
        from cstrack.fsutil import atomic_write_text, sha256_file

        p = get_preset(preset)
        recorded = catalog_root is not None or import_tracker is not None
        root = catalog_root or DEFAULT_ROOT
        inputs = file_inputs(weights, gt_root=gt_root, results_root=results_root, config=config)
        check_output_file(json_out, "--json", inputs)
        if recorded:
            check_paths([*catalog_outputs(root, "--catalog"), Output(json_out, "--json") if json_out else None],
                        inputs)
        if weights is not None and not weights.is_file():
            raise ConfigError(f"--weights: {weights} not found")
        if detection_mode is not None and detection_mode not in ("private", "public", "gt"):
            raise ConfigError(f"--detection-mode: expected private, public or gt, got {detection_mode!r}")
        run_config = _load_config(config)
        title = import_tracker or label or results_root.name

        def shown_then_run(result: EvalResult) -> RunInfo | None:
            """Print the table (and write --json) before anything is recorded; the run to record."""
            typer.echo(f"{p.name} ({p.description})")
            typer.echo(format_table(result, title=title), nl=False)
            if result.missing:
                typer.echo(f"counted as empty (no result file): {', '.join(result.missing)}")
            if json_out is not None:
                atomic_write_text(json_out, json.dumps(result.to_json(), indent=2) + "\n")
                typer.echo(f"wrote {json_out}")
            if not recorded:
                return None
            res_dir = results_dir(results_root)
            source = "external" if import_tracker else "cstrack"
            tracked = _tracked_settings(res_dir, result.sequences) if source == "cstrack" else None
            config_json = {"inference": tracked, **run_config} if tracked is not None else run_config
            var = variant or (tracked.get("variant") if tracked is not None else None)
            tracker = import_tracker or var or "cstrack"
            ds = dataset or p.benchmark
            content = {"results": results_fingerprint(res_dir, result.sequences), "preset": p.name,
                       "config": config_json, "mode": detection_mode, "source": source, "tracker": tracker}
            return RunInfo(
                run_id=run_id or catalog_run_id(tracker, ds, split, content), dataset=ds, tracker=tracker,
                source=source, label=label or import_tracker, tag=tag, split=split, variant=var,
                detection_mode=detection_mode, eval_preset=p.name, config=config_json,
                weights_sha256=sha256_file(weights) if weights is not None else (tracked or {}).get("weights_sha256"),
                results_uri=str(res_dir.resolve()),
            )

        out = evaluate_into_catalog(gt_root, results_root, _sequences(sequences), p, title,
                                    root if recorded else None, shown_then_run, allow_missing, workers=workers,
                                    events=events, tracks=tracks)
        if out["run_id"] is not None:
            summary = ", ".join(f"{k} {v}" for k, v in out["counts"].items())
            typer.echo(f"ingested run {out['run_id']} into {root} ({summary})")

    @app.command("report")
    @guarded
    def report_cmd(
        results: str = typer.Option("results", "--results", help="catalog root (path or fsspec URL)"),
        out: Path = typer.Option(..., "--out", help="output folder for the tables and figures"),
        reference: Path | None = typer.Option(None, "--reference", help="folder with paper_table_vi.csv and "
                                              "paper_ablations.csv (default: shared/reference)"),
        html: bool = typer.Option(False, "--html", help="also write OUT/report.html: one self-contained page "
                                  "(tables, figures inlined, nightly history with its intervals; no network)"),
    ) -> None:
        """Regenerate Table VI, the ablation tables, Table VIII, per-benchmark summaries and comparison plots
        (Markdown, CSV, LaTeX, PNG, text; --html: one page of all of it)."""
        from catalog.report import build_report
        from catalog.schemas import TABLES as CATALOG_TABLES

        tables = [Input(Path(results) / t, "--results") for t in CATALOG_TABLES] if "://" not in results else []
        check_output_dir(out, "--out", [*tables, Input(reference, "--reference") if reference else None])
        for path in build_report(results, out, reference, html=html):
            typer.echo(str(path))
