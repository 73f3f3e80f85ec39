"""``reactcli evaluate select``: choose among scored runs on a validation split."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from reactcli.cli.common import handle_errors


@handle_errors
def select_command(
    work: Path = typer.Option(..., "--work", help="Work directory."),
    run: list[str] = typer.Option(..., "--run", help="Candidate generation run (repeat the option); each must be scored on --split."),
    split: str = typer.Option("val", help="Split the candidates were generated and scored on (never select on test)."),
    metric: str = typer.Option("FRdist", help="Score to optimise: FRdist (lowest wins) or FRCorr, FRDiv, FRDvs (highest wins)."),
    metrics_dir: Optional[Path] = typer.Option(None, "--metrics-dir", help="Folder holding <run>-<split>.json (as written by `evaluate run --out-dir`); default WORK/metrics."),
    require_diversity: bool = typer.Option(True, help="A run whose K samples are identical (FRDiv 0) cannot win."),
    out: Optional[Path] = typer.Option(None, "--out", help="Write the choice as JSON: chosen run, its checkpoint, every candidate's score."),
) -> None:
    """Pick the best of several runs on a validation split, e.g. among training seeds."""
    from reactcli.io import check_output

    if out is not None:
        check_output(out, "--out")
    from reactcli.metrics.select import select_run

    res = select_run(work, run, split=split, metric=metric, metrics_dir=metrics_dir,
                     require_diversity=require_diversity, out=out)
    for r in res["candidates"]:
        mark = "*" if r["run"] == res["chosen"] else " "
        typer.echo(f"{mark} {r['run']}: {metric} {r[metric]:.4f}  FRDiv {r['FRDiv']}")
    typer.echo(f"chosen: {res['chosen']} ({res['checkpoint']})")
