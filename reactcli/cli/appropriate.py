"""``reactcli appropriate build|import|check|sweep``: appropriate-reaction sets per split."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

import numpy as np
import typer
from rich.table import Table

from reactcli.cli.common import StageProgress, handle_errors, out, progress

app = typer.Typer(help="Which real listener reactions are appropriate for each speaker item.", no_args_is_help=True)


def _print_stats(title: str, stats: dict) -> None:
    out.print(f"[bold]{title}[/]: {stats['items']} items; appropriate reactions per item: "
              f"mean {stats['mean']:.2f}, median {stats['median']:.1f}, min {stats['min']}, max {stats['max']}")
    hist = stats["histogram"]
    top = max(hist.values())
    for k in sorted(hist):
        out.print(f"  {k:4d} | {'#' * max(1, round(40 * hist[k] / top))} {hist[k]}")


@app.command("build")
@handle_errors
def build(
    work: Path = typer.Option(..., "--work", help="Work directory (needs prepared items and stored features)."),
    split: str = typer.Option("train", help="Split whose items are compared."),
    feature: str = typer.Option("emotion", help="Stored speaker feature compared between items."),
    distance: Literal["dtw", "euclidean", "corr"] = typer.Option("dtw", help="dtw (grouped as FRdist for emotion), euclidean or corr."),
    rule: Literal["auto", "threshold", "topk"] = typer.Option("auto", help="auto (Otsu threshold on log distances), threshold or topk."),
    threshold: Optional[float] = typer.Option(None, help="Distance threshold for --rule threshold."),
    top_k: int = typer.Option(10, "--top-k", help="Nearest other items marked appropriate for --rule topk."),
    downsample: int = typer.Option(5, help="Average-pool this many frames before comparing (1 = every frame)."),
    frames: int = typer.Option(750, help="Frames per clip compared."),
) -> None:
    """Mark as appropriate for item k the real reactions of the listeners of speakers similar to k."""
    from reactcli.appropriate import BuildConfig, build_matrix

    cfg = BuildConfig(feature=feature, distance=distance, rule=rule, threshold=threshold, top_k=top_k,
                      downsample=downsample, frames=frames)
    with progress() as bar:
        rep = build_matrix(work, split, cfg, on_progress=StageProgress(bar))
    thr = f" (threshold {rep['threshold']:.4g})" if rep.get("threshold") is not None else ""
    _print_stats(f"{split}: {rep['source']}{thr}", rep["stats"])
    out.print(f"matrix: {rep['path']}")


@app.command("import")
@handle_errors
def import_(
    work: Path = typer.Option(..., "--work", help="Work directory with prepared items."),
    split: str = typer.Option(..., help="Split the matrix belongs to."),
    matrix: Path = typer.Option(..., "--matrix", help="Official neighbour_emotion_<split>.npy."),
) -> None:
    """Import and validate an official appropriateness matrix (square, right size, 0/1, no empty row)."""
    from reactcli.appropriate import import_matrix

    rep = import_matrix(work, split, matrix)
    _print_stats(f"{split}: imported {matrix}", rep["stats"])


@app.command("check")
@handle_errors
def check(
    work: Path = typer.Option(..., "--work", help="Work directory holding appropriate/<split>.npy."),
    split: str = typer.Option(..., help="Split to check."),
    truth: Path = typer.Option(..., "--truth", help="0/1 truth matrix (.npy), e.g. the synthetic corpus's truth/appropriate_<split>.npy."),
    matrix: Optional[Path] = typer.Option(None, "--matrix", help="Matrix to check (default: appropriate/<split>.npy)."),
) -> None:
    """Precision, recall and F1 of a matrix against a known truth (off-diagonal entries)."""
    from reactcli.appropriate import load_truth, precision_recall
    from reactcli.errors import InputError

    mpath = matrix or work / "appropriate" / f"{split}.npy"
    if not mpath.is_file():
        raise InputError(f"{mpath}: matrix not found (run `reactcli appropriate build --split {split}`)")
    pred = np.load(mpath)
    pr = precision_recall(pred, load_truth(truth, pred.shape[0]))
    # plain text, one line whatever the terminal's width (the synthetic Makefile tees it into a file)
    typer.echo(f"{split}: precision {pr['precision']:.3f}  recall {pr['recall']:.3f}  F1 {pr['f1']:.3f}  "
               f"(tp {pr['tp']}, fp {pr['fp']}, fn {pr['fn']})")


@app.command("sweep")
@handle_errors
def sweep_cmd(
    work: Path = typer.Option(..., "--work", help="Work directory."),
    split: str = typer.Option(..., help="Split to evaluate."),
    truth: Path = typer.Option(..., "--truth", help="0/1 truth matrix (.npy)."),
    distance: Literal["dtw", "euclidean", "corr"] = typer.Option("dtw", help="Distance (see build)."),
    downsample: int = typer.Option(5, help="Frame pooling (see build)."),
) -> None:
    """F1 of several rules (auto, top-k, quantile thresholds) against a truth, from cached distances."""
    from reactcli.appropriate import BuildConfig, load_truth, sweep
    from reactcli.manifest.items import load_items

    n = load_items(work, split).n
    rows = sweep(work, split, load_truth(truth, n), BuildConfig(distance=distance, downsample=downsample))
    t = Table(title=f"appropriateness rules vs truth ({split}, {distance})")
    for c in ("rule", "precision", "recall", "F1", "per item"):
        t.add_column(c)
    for r in rows:
        t.add_row(r["rule"], f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1']:.3f}", f"{r['mean_per_item']:.1f}")
    out.print(t)
