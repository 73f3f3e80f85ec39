"""``reactcli evaluate run``: score a generation run stored in a work directory."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

import typer

from reactcli.cli.common import handle_errors, out
from reactcli.errors import ConfigError


def _fid(runs: list[str], fid_frames: Optional[Path], weights: Optional[Path], preprocess: str) -> dict | None:
    """FRRea from frames exported by ``render --fid-frames`` (None when not asked for)."""
    if fid_frames is None and weights is None:
        return None
    if fid_frames is None:
        raise ConfigError("--inception-weights needs --fid-frames DIR "
                          "(export it with `reactcli render --fid-frames DIR`)")
    if len(runs) != 1:
        raise ConfigError(f"--fid-frames holds the frames of one run; give a single --run (got {len(runs)})")
    from reactcli.metrics.fid import fid_from_frames

    # the export already sampled every n-th frame: use every file (as pytorch-fid on the folders)
    fid = fid_from_frames(fid_frames / "real", fid_frames / "fake", weights, stride=1, preprocess=preprocess)
    exported = (fid.get("frames") or {}).get("run")
    if exported is not None and exported != runs[0]:
        raise ConfigError(f"{fid_frames}: frames of run {exported!r}, not of --run {runs[0]!r}")
    return fid


@handle_errors
def run_command(
    work: Path = typer.Option(..., "--work", help="Work directory."),
    run: list[str] = typer.Option(..., "--run", help="Generation run name(s) to score (repeat for several)."),
    split: str = typer.Option("test", help="Split the runs generated."),
    feature: Literal["emotion", "tdmm"] = typer.Option("emotion", help="emotion (challenge protocol) or tdmm (58-d 3DMM, one DTW)."),
    compat: Literal["default", "official"] = typer.Option("default", help="default, or official (reproduce the official FRSyn quirks)."),
    out_dir: Optional[Path] = typer.Option(None, "--out-dir", help="Folder for <run>-<split>.json, <run>-<split>-items.csv and summary.csv (default WORK/metrics)."),
    fid_frames: Optional[Path] = typer.Option(None, "--fid-frames", help="FRRea: frames exported by `render --fid-frames DIR` (DIR/real, DIR/fake; one --run)."),
    inception_weights: Optional[Path] = typer.Option(None, "--inception-weights", help="FRRea: local InceptionV3 FID weights (pytorch-fid's pt_inception-2015-12-05-6726825d.pth or torch-fidelity's file)."),
    fid_preprocess: Literal["pytorch-fid", "tensorflow"] = typer.Option("pytorch-fid", "--fid-preprocess", help="FRRea resizing: pytorch-fid (the challenge's) or tensorflow (the original TF FID)."),
) -> None:
    """Score stored runs: metrics/<run>-<split>.json, a per-item table <run>-<split>-items.csv each,
    and the folder's summary.csv (one row per run); print one table."""
    from reactcli.io import check_output

    if out_dir is not None:
        check_output(out_dir, "--out-dir", "dir")
    from reactcli.metrics.report import print_table
    from reactcli.metrics.store import evaluate_run

    fid = _fid(run, fid_frames, inception_weights, fid_preprocess)
    results = {}
    for r in run:
        results[r] = evaluate_run(work, r, split, feature=feature, compat=compat,
                                  out_dir=out_dir, fid=fid, summary=r == run[-1])
    print_table(results, out)
    for r, res in results.items():
        typer.echo(f"{r}: {res['path']} {res['items_path']}")
    typer.echo(f"summary: {results[run[-1]]['summary_path']}")
