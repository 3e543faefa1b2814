"""``cstrack model-info``: parameters, GFLOPs and output shapes of a model variant."""

from __future__ import annotations

import typer

from cstrack.cli.common import guarded, parse_size, print_json


def register(app: typer.Typer) -> None:
    @app.command("model-info")
    @guarded
    def model_info(
        variant: str = typer.Argument(..., help="jde-l, cstrack-l, cstrack-s or cstrack-n"),
        size: str = typer.Option("1088x608", "--size", help="network input WxH (multiples of 32)"),
        as_json: bool = typer.Option(False, "--json", help="print one JSON object"),
    ) -> None:
        """Print parameter count, GFLOPs (2 x MACs) and output shapes of VARIANT at --size."""
        from cstrack.model import build_model
        from cstrack.model.complexity import model_report

        w, h = parse_size(size)
        report = model_report(build_model(variant), (w, h))
        if as_json:
            print_json(report)
            return
        typer.echo(f"variant      {report['variant']}")
        typer.echo(f"input        {w}x{h}")
        typer.echo(f"parameters   {report['params']:,} ({report['params'] / 1e6:.2f} M)")
        typer.echo(f"GFLOPs       {report['gflops']:.2f}  (GMACs {report['gmacs']:.2f})")
        for name, group in report["groups"].items():
            typer.echo(f"  {name:<10} {group['params']:>12,} params  {group['gflops']:8.2f} GFLOPs")
        for name, shape in report["outputs"].items():
            typer.echo(f"output {name:<8} {shape}")
