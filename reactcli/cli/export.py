"""``reactcli export``: a run and its split's real data as the REACT challenge's arrays."""

from __future__ import annotations

from pathlib import Path

import typer

from reactcli.cli.common import handle_errors, out


@handle_errors
def command(
    work: Path = typer.Option(..., "--work", help="Work directory holding the run."),
    run: str = typer.Option(..., "--run", help="Generation run to export."),
    split: str = typer.Option("test", "--split", help="Split of the run (val or test: the splits with a matrix)."),
    out_dir: Path = typer.Option(..., "--out", help="New folder for the arrays (must not exist or be empty)."),
    frames: int = typer.Option(750, "--frames", min=1, help="Frames per item (the challenge scores the first 750 of 751)."),
) -> None:
    """Write predictions (N, K, T, D), real listeners and speakers (N, T, D) per feature, the
    appropriateness matrix as neighbour_emotion_<split>.npy, items.csv and export.json, in the
    challenge's mirrored item order: what the authors' evaluators and `evaluate arrays` read."""
    from reactcli.io import check_output

    check_output(out_dir, "--out", "dir")
    from reactcli.generation.exchange import export_run

    record = export_run(work, run, split, out_dir, frames=frames)
    for name, entry in record["files"].items():
        shape = f" {tuple(entry['shape'])}" if "shape" in entry else ""
        out.print(f"{Path(record['path']) / name}{shape}", highlight=False)
