"""``cstrack data ...``: registry listing, preparation, video conversion, labels and synthetic data."""

from __future__ import annotations

from pathlib import Path

import typer

from cstrack.cli.common import check_output_dir, guarded, parse_size
from cstrack.errors import ConfigError
from cstrack.pathrules import Input


def register(app: typer.Typer) -> None:
    data = typer.Typer(
        name="data", help="Datasets: prepare registry entries, convert videos, write labels, synthesise.",
        no_args_is_help=True,
    )
    app.add_typer(data, name="data")

    @data.command("list")
    @guarded
    def list_cmd() -> None:
        """List the registry's datasets and training mixtures."""
        from cstrack.data.registry import load_registry

        reg = load_registry()
        for name, e in reg.datasets.items():
            where = "local" if e.is_local or e.converter == "synthetic" else "remote"
            typer.echo(f"{name:<12} {e.converter:<10} {where:<6} {e.title}")
        for name in reg.mixtures:
            typer.echo(f"mixture {name}: {', '.join(reg.mixture(name))}")

    @data.command("prepare")
    @guarded
    def prepare_cmd(
        names: list[str] = typer.Argument(..., help="dataset or mixture names (see `cstrack data list`)"),
        root: Path = typer.Option(..., "--root", help="folder that receives ROOT/<dataset>/"),
        force: bool = typer.Option(False, "--force", help="convert again even if already prepared"),
        retries: int = typer.Option(4, "--retries", min=0, help="retries per mirror on transient errors"),
        timeout: float = typer.Option(30.0, "--timeout", min=1.0, help="network timeout in seconds"),
        quiet: bool = typer.Option(False, "--quiet", help="no progress output"),
        upload: str | None = typer.Option(
            None, "--upload", help="then upload ROOT/<dataset>/ to URL/<dataset>/ (s3://bucket/prefix; AWS_* "
            "variables; only changed files, manifest last)"),
        source: Path | None = typer.Option(
            None, "--from", metavar="DIR|ARCHIVE",
            help="use a copy you already have instead of downloading: the extracted folder (checked against the "
                 "sequences the server expects) or the archive (checked against the registry's sha256 when known); "
                 "one dataset name only"),
    ) -> None:
        """Download, verify, extract and convert datasets (idempotent; local sources work offline)."""
        from cstrack.data.prepare import prepare
        from cstrack.data.registry import load_registry
        from cstrack.storage import Location, sync_tree

        reg = load_registry()
        log = (lambda msg: None) if quiet else (lambda msg: typer.echo(msg, err=True))
        expanded = reg.expand(names)
        if source is not None and len(expanded) != 1:
            raise ConfigError(f"--from: give one dataset name, got {', '.join(expanded)}")
        for name in expanded:
            res = prepare(name, root, registry=reg, force=force, progress=not quiet, retries=retries,
                          timeout=timeout, log=log, source=source)
            state = "already prepared" if res.skipped else "prepared"
            lists = ", ".join(f"{k} {v}" for k, v in res.record.get("lists", {}).items())
            typer.echo(f"{name}: {state} in {res.path} ({lists})")
            if upload is not None:
                target = Location.of(upload).child(name)
                sync = sync_tree(res.path, target)
                typer.echo(f"{name}: uploaded {sync.uploaded} file(s) to {target} ({sync.unchanged} unchanged)")

    @data.command("convert-video")
    @guarded
    def convert_video_cmd(
        video: Path = typer.Argument(..., help="input video (anything OpenCV decodes)"),
        out: Path = typer.Option(..., "--out", help="folder that receives OUT/NAME"),
        name: str = typer.Option(..., "--name", help="sequence name (folder and seqinfo name)"),
        gt: Path | None = typer.Option(None, "--gt", help="gt.txt, or a MOT sequence folder (gt, det, seqinfo)"),
        det: Path | None = typer.Option(None, "--det", help="det.txt to cut along with the gt"),
        seqinfo: Path | None = typer.Option(None, "--seqinfo", help="seqinfo.ini giving frameRate/seqLength"),
        frames: str | None = typer.Option(None, "--frames", help="A:B source frames (1-based, inclusive)"),
        frame_rate: float | None = typer.Option(None, "--frame-rate", help="override the frame rate"),
        skip_bad_frames: bool = typer.Option(False, "--skip-bad-frames", help="drop undecodable frames"),
        quality: int = typer.Option(90, "--quality", min=1, max=100, help="JPEG quality"),
        overwrite: bool = typer.Option(False, "--overwrite", help="replace an existing OUT/NAME"),
    ) -> None:
        """Decode VIDEO into the MOT sequence OUT/NAME (img1/*.jpg, seqinfo.ini, gt and det cut to --frames)."""
        from tqdm import tqdm

        from cstrack.data.convert import parse_frame_range, video_to_sequence

        rng = parse_frame_range(frames) if frames else None
        check_output_dir(out / name, "--out", [Input(video, "VIDEO"), Input(gt, "--gt") if gt else None,
                                              Input(det, "--det") if det else None,
                                              Input(seqinfo, "--seqinfo") if seqinfo else None], whole=True)
        with tqdm(unit="frame", desc=name, leave=False, disable=None) as bar:  # a bar on terminals only
            res = video_to_sequence(
                video, out, name, gt=gt, det=det, seqinfo=seqinfo, frames=rng, frame_rate=frame_rate,
                skip_bad_frames=skip_bad_frames, jpeg_quality=quality, overwrite=overwrite,
                on_frame=lambda f: bar.update(1),
            )
        typer.echo(
            f"wrote {res.seq_dir}: {res.frames} frames (source {res.first_source_frame}-{res.last_source_frame}), "
            f"frameRate {res.frame_rate:g} (from {res.frame_rate_from}), gt {res.gt_rows} rows, "
            f"det {res.det_rows} rows, {res.seconds:.1f} s"
        )
        if res.bad_frames:
            shown = ", ".join(map(str, res.bad_frames[:20])) + (" ..." if len(res.bad_frames) > 20 else "")
            typer.echo(f"skipped {len(res.bad_frames)} bad frame(s): {shown}")

    @data.command("labels")
    @guarded
    def labels_cmd(
        dataset: Path = typer.Argument(..., help="dataset folder holding images/<split>/<SEQ>/"),
        split: list[str] = typer.Option(["train"], "--split", help="split folder(s) to label"),
        sequences: str = typer.Option("*", "--sequences", help="glob over sequence names"),
        visibility: float = typer.Option(0.0, "--visibility", min=0.0, max=1.0, help="minimum gt visibility"),
        half: bool = typer.Option(True, "--half/--no-half", help="also write the half-split lists"),
    ) -> None:
        """Write JDE labels (labels_with_ids) and list files for the MOT sequences of DATASET."""
        from cstrack.data.convert import write_mot_labels

        s = write_mot_labels(dataset, splits=split, sequences=sequences, visibility=visibility, half=half)
        typer.echo(f"{len(s.sequences)} sequences, {s.images} images, {s.boxes} boxes, {s.identities} identities")
        for list_name, n in s.lists.items():
            typer.echo(f"  {dataset / list_name}: {n} images")

    @data.command("synth")
    @guarded
    def synth_cmd(
        out: Path = typer.Option(..., "--out", help="folder that receives the sequences"),
        sequences: int = typer.Option(2, "--sequences", min=1),
        length: int = typer.Option(100, "--length", min=1, help="frames per sequence"),
        size: str = typer.Option("640x480", "--size", help="WxH"),
        objects: int = typer.Option(8, "--objects", min=0),
        seed: int = typer.Option(0, "--seed", min=0),
        fps: float = typer.Option(25.0, "--fps"),
        prefix: str = typer.Option("SYNTH", "--prefix", help="sequence names are PREFIX-01, PREFIX-02, ..."),
    ) -> None:
        """Generate synthetic MOT sequences (moving sprites with crossings and occlusions, gt + det)."""
        from cstrack.data.synthetic import SynthConfig, generate

        w, h = parse_size(size)
        cfg = SynthConfig(sequences=sequences, length=length, width=w, height=h, objects=objects, seed=seed,
                          frame_rate=fps, prefix=prefix)
        for p in generate(out, cfg):
            typer.echo(f"wrote {p}")
