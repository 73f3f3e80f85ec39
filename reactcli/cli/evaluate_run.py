"""``reactcli evaluate run``: score a generation run stored in a work directory."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

import typer

from reactcli.cli.common import handle_errors, out


@handle_errors
def run_command(
    work: Path = typer.Option(..., "--work", help="Work directory."),
    run: list[str] = typer.Option(..., "--run", help="Generation run name(s) to score (repeat the option for several)."),
    split: str = typer.Option("test", help="Split the runs generated."),
    feature: Literal["emotion", "tdmm"] = typer.Option("emotion", help="emotion (challenge protocol) or tdmm (58-d 3DMM, one DTW)."),
    compat: Literal["default", "official"] = typer.Option("default", help="default, or official (reproduce the official FRSyn quirks)."),
    out_dir: Optional[Path] = typer.Option(None, "--out-dir", help="Folder for <run>.json (default WORK/metrics)."),
) -> None:
    """Score stored runs and print one table (metrics/<run>-<split>.json each)."""
    from reactcli.metrics.report import print_table
    from reactcli.metrics.store import evaluate_run

    results = {}
    for r in run:
        results[r] = evaluate_run(work, r, split, feature=feature, compat=compat,
                                  out=(out_dir / f"{r}.json") if out_dir else None)
    print_table(results, out)
    for r, res in results.items():
        typer.echo(f"{r}: {res['path']}")
