"""Recording a track-all run: evaluation + catalogue per (dataset, split), and the run's Markdown."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from catalog.ingest import RunInfo
from catalog.runids import catalog_run_id
from cstrack.errors import EvaluationError
from cstrack.fsutil import stable_hash
from cstrack.storage import Location
from cstrack.tracker import preset
from flows.dispatch import abs_root, error_text, job_for
from flows.params import DatasetSelection, TrackAllParams
from tasks.cachekeys import weights_fingerprint
from tasks.catalog import evaluate_task, record_scores_task, record_tracking_task
from tasks.evaluation import ScoredSequence
from tasks.publish import md_table, metrics_markdown, tracking_markdown
from tasks.records import SequenceOutcome, SequenceRef, TrackJob, TrackRecord


def _config(params: TrackAllParams, selection: DatasetSelection, job: TrackJob) -> dict[str, Any]:
    w = params.model.weights
    m = job.model
    return {
        "model": {"variant": m.variant, "input_size": list(m.input_size), "path": m.path,
                  "conf_thres": m.conf_thres, "nms_thres": m.nms_thres,
                  "weights": w if w in (None, "coco") else Path(w).name,
                  **({} if m.precision == "fp32" else {"precision": m.precision})},  # fp32: the hash of before
        "inference": None if job.settings is None else job.settings.to_dict(),
        "detection": {"mode": params.mode_of(selection), "appearance": params.appearance_of(selection)},
        "tracker": {"preset": job.tracker_preset, **dataclasses.asdict(preset(job.tracker_preset))},
    }


def catalog_config(params: TrackAllParams, selection: DatasetSelection) -> dict[str, Any]:
    """What the catalog records as the run's config (its hash labels the run in the reports): the
    effective values the run used (checkpoint settings with the run's overrides) and, under
    ``inference``, the settings block itself."""
    return _config(params, selection, job_for(params, selection))


def run_info(params: TrackAllParams, selection: DatasetSelection, split: str, records: list[TrackRecord],
             results_dir: Path | Location, flow_run_id: str | None, *, flow: FlowRun | None = None,
             tracked: int | None = None) -> RunInfo:
    """The catalog run of one (dataset, split) group of tracked sequences.

    Every flow run is an observation (issue 28): the run id is hashed over the results *and* the
    flow run, so a fully cached re-run adds its own row (its own start and end, tag, flow run id,
    sequences tracked vs from the cache); ``results_hash`` (over the result files, config and
    evaluation preset, not over when they were made) is what lets it share the earlier run's
    ``tracks``/``events`` rows (:mod:`catalog.ingest`)."""
    job = job_for(params, selection)
    config = _config(params, selection, job)
    weights = weights_fingerprint(job.model.weights) if job.uses_model else None
    results_hash = stable_hash({"results": sorted((r.sequence, r.result_sha256) for r in records),
                                "config": config, "preset": selection.preset})
    flow = flow or FlowRun(flow_run_id=flow_run_id)
    tracker = params.model.variant
    started = flow.started_at or dt.datetime.fromisoformat(min(r.started for r in records))
    ended = flow.ended_at or dt.datetime.now(dt.UTC)
    if ended < started:
        ended = started
    return RunInfo(
        run_id=catalog_run_id(tracker, selection.name, split, {"results": results_hash, "flow": flow.key()}),
        dataset=selection.name, tracker=tracker, source="cstrack", label=params.label, tag=params.tag,
        split=split, variant=params.model.variant, detection_mode=params.mode_of(selection),
        eval_preset=selection.preset, config=config,
        weights_sha256=weights.split(":", 1)[-1] if weights else None, flow_run_id=flow_run_id,
        results_uri=str(results_dir), started_at=started, ended_at=ended, run_name=params.run_name,
        run_group=flow.group or flow_run_id, tracker_preset=preset_label(job.tracker_preset),
        device=str(getattr(job.model, "device", None) or "cpu"), device_name=device_names(records),
        results_hash=results_hash,
        sequences_tracked=len(records) if tracked is None else tracked,
        sequences_cached=0 if tracked is None else len(records) - tracked,
    )


def device_names(records: list[TrackRecord]) -> str | None:
    """The hardware the runs' network ran on: the records' common ``device_name``, the distinct
    names comma-joined (sorted) when the workers differ, ``None`` when no model ran."""
    names = sorted({r.device_name for r in records if r.device_name})
    return ", ".join(names) if names else None


def preset_label(name: str) -> str:
    """A tracker preset as the catalog names it: a built-in name, or a preset file's stem."""
    return Path(name).stem if name.endswith((".yaml", ".yml", ".json")) else name


@dataclasses.dataclass(frozen=True)
class FlowRun:
    """The flow run that records catalog runs: its id, the group (top-level flow run) its catalog
    runs belong to, and its own start (and end, when known); ``key()`` makes run ids unique to it."""

    flow_run_id: str | None = None
    group: str | None = None
    started_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None

    def key(self) -> str:
        return self.flow_run_id or (self.started_at.isoformat() if self.started_at else dt.datetime.now(dt.UTC).isoformat())


def _by_split(outcomes: list[SequenceOutcome], has_gt: bool) -> list[tuple[tuple[str, str],
                                                                       list[tuple[SequenceRef, TrackRecord]]]]:
    """The tracked (or cached) sequences with (or without) ground truth, by (dataset, split)."""
    groups: dict[tuple[str, str], list[tuple[SequenceRef, TrackRecord]]] = {}
    for o in outcomes:
        if o.record is not None and o.seq.has_gt == has_gt:
            groups.setdefault((o.seq.dataset, o.seq.split), []).append((o.seq, o.record))
    return sorted(groups.items())


def _evaluate_group(group: list[tuple[SequenceRef, TrackRecord]], scores: Mapping[str, ScoredSequence],
                    selection: DatasetSelection, label: str, results_dir: Path | Location, catalog_root: str,
                    run: RunInfo) -> Any:
    """The evaluation of one (dataset, split) as a task state: the workers' per-sequence scores
    combined (:func:`tasks.catalog.record_scores_task`) when every sequence has one, else the whole
    group evaluated here (:func:`tasks.catalog.evaluate_task`, e.g. a score lost with its worker)."""
    scored = [scores.get(s.label) for s, _ in group]
    errors = [sc.error for sc in scored if sc is not None and sc.error and sc.score is None]
    if errors and not any(e.startswith("scoring lost") for e in errors):
        return _failed_state(EvaluationError(errors[0]))
    if all(sc is not None and sc.score is not None for sc in scored):
        ok = [sc for sc in scored if sc is not None and sc.score is not None]
        return record_scores_task([sc.score for sc in ok if sc.score is not None], [sc.events for sc in ok], label,
                                  group[0][0].gt_root, str(results_dir), catalog_root, run, return_state=True)
    return evaluate_task(group[0][0].gt_root, str(results_dir), sorted(s.name for s, _ in group),
                         selection.preset, label, catalog_root, run, return_state=True)


class _FailedState:
    """A stand-in for a failed task state (``result()`` gives the exception) for an error found
    before any task ran (a sequence's score reported a bad file)."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def result(self, raise_on_failure: bool = True) -> BaseException:
        return self.exc


def _failed_state(exc: BaseException) -> _FailedState:
    return _FailedState(exc)


def _catalogue(params: TrackAllParams, outcomes: list[SequenceOutcome], run_dir: Path | Location,
               flow_run_id: str | None, has_gt: bool, flow: FlowRun | None = None,
               scores: Mapping[str, ScoredSequence] | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """Per (dataset, split), one catalog run: evaluated (``has_gt``) or with its counts only."""
    selections = {d.name: d for d in params.datasets}
    catalog_root = str(abs_root(params.catalog))
    done: list[dict[str, Any]] = []
    errors: list[str] = []
    for (dataset, split), group in _by_split(outcomes, has_gt):
        label = f"{dataset}/{split}"
        results_dir = run_dir / dataset / split
        selection = selections[dataset]
        tracked = sum(o.status == "tracked" for o in outcomes
                      if o.record is not None and (o.seq.dataset, o.seq.split) == (dataset, split))
        run = run_info(params, selection, split, [r for _, r in group], results_dir, flow_run_id, flow=flow,
                       tracked=tracked)
        step: Literal["evaluation", "catalogue"]
        if has_gt:
            step = "evaluation"
            state = _evaluate_group(group, scores or {}, selection, label, results_dir, catalog_root, run)
        else:
            step = "catalogue"
            rates = {s.name: r.frame_rate or s.fps for s, r in group}
            state = record_tracking_task(str(results_dir), sorted(rates), label, catalog_root,
                                         dataclasses.replace(run, eval_preset=None), rates, return_state=True)
        res = state.result(raise_on_failure=False)
        if isinstance(res, BaseException):
            errors.append(f"{step} {label}: {error_text(res)}")
        else:
            done.append({**res, "dataset": dataset, "split": split})
    return done, errors


def evaluate_outcomes(params: TrackAllParams, outcomes: list[SequenceOutcome], run_dir: Path | Location,
                      flow_run_id: str | None, flow: FlowRun | None = None,
                      scores: Mapping[str, ScoredSequence] | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """Per (dataset, split): evaluate the successfully tracked sequences that have gt and record
    them in the catalog as one run; ``scores`` (by sequence label) are the per-sequence scores the
    workers computed, combined here (sequences without one make the group evaluated here)."""
    return _catalogue(params, outcomes, run_dir, flow_run_id, has_gt=True, flow=flow, scores=scores)


def record_unevaluated(params: TrackAllParams, outcomes: list[SequenceOutcome], run_dir: Path | Location,
                       flow_run_id: str | None, flow: FlowRun | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """Per (dataset, split): catalogue the tracked sequences without ground truth (counts, track
    lengths, fps: ``sequence_stats``) as one run."""
    return _catalogue(params, outcomes, run_dir, flow_run_id, has_gt=False, flow=flow)


def stats_markdown(stats: list[dict[str, Any]]) -> str:
    parts = []
    for st in stats:
        parts.append(f"### {st['label']} (no ground truth) — catalog run `{st['run_id']}`")
        rows = [[r["sequence"], r["frames"], f"{r['fps']:.1f}" if r["fps"] else "-", r["tracks"], r["boxes"],
                 f"{r['track_len_mean']:.1f}" if r["track_len_mean"] is not None else "-", r["track_len_max"] or 0]
                for r in st["rows"]]
        parts.append(md_table(["sequence", "frames", "fps", "tracks", "boxes", "mean track length",
                               "longest track"], rows))
    return "\n\n".join(parts)


def run_markdown(params: TrackAllParams, summary: dict[str, Any], outcomes: list[SequenceOutcome],
                 evals: list[dict[str, Any]], report_md: str) -> str:
    head = (f"# track-all `{params.run_name}` ({params.tag})\n\n"
            f"{summary['sequences']} sequences: {summary['tracked']} tracked, {summary['cached']} cached, "
            f"{len(summary['failed'])} failed; workers: {', '.join(summary['workers']) or '-'}; "
            f"results: `{summary['results']}`")
    parts = [head, "## Tracking", tracking_markdown(outcomes)]
    if evals:
        parts += ["## Metrics of this run", metrics_markdown(evals)]
    if summary.get("unevaluated"):
        parts += ["## Sequences without ground truth", stats_markdown(summary["unevaluated"])]
    if summary["failed"]:
        parts += ["## Failures", "\n".join(f"- {f}" for f in summary["failed"])]
    if report_md:
        parts += ["## Regenerated tables (whole catalog)", report_md.replace("# CSTrack results", "").strip()]
    return "\n\n".join(parts) + "\n"
