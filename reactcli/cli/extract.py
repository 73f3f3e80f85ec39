"""``reactcli extract``: per-frame features of every clip into the HDF5 store."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from reactcli.cli.common import StageProgress, handle_errors, out, progress
from reactcli.cli.execution import execution_options
from reactcli.execution import ExecConfig


@handle_errors
@execution_options("the clips")
def command(
    work: Path = typer.Option(..., "--work", help="Work directory with manifests/clips.jsonl."),
    features: str = typer.Option("mfcc,emotion,tdmm", help="Comma-separated: mfcc, wav2vec2, landmarks, emoca, faceverse, graphau, or the sidecar features emotion/tdmm."),
    wav2vec2_path: Optional[Path] = typer.Option(None, "--wav2vec2-path", help="Local wav2vec2 checkpoint directory (for wav2vec2)."),
    emoca_path: Optional[Path] = typer.Option(None, "--emoca-path", help="Local EMOCA model (TorchScript file) for emoca."),
    faceverse_path: Optional[Path] = typer.Option(None, "--faceverse-path", help="Local FaceVerse coefficient model (TorchScript) for faceverse."),
    graphau_path: Optional[Path] = typer.Option(None, "--graphau-path", help="Local GraphAU model (TorchScript) for graphau."),
    sample_rate: Optional[int] = typer.Option(None, "--sample-rate", help="Resample audio to this rate before MFCC (default: the file's own rate, as the challenge)."),
    on_error: str = typer.Option("fail", help="fail: a bad clip stops the stage; skip: report it by name and go on."),
    exec_cfg: ExecConfig = None,  # the execution options (@execution_options)
) -> None:
    """Run feature extractors over every clip; resumable, shardable, identical for any job count."""
    from reactcli.features.stage import ExtractConfig, run_extract

    opts: dict[str, dict] = {}
    for name, p in (("wav2vec2", wav2vec2_path), ("emoca", emoca_path), ("faceverse", faceverse_path), ("graphau", graphau_path)):
        if p is not None:
            opts[name] = {"path": str(p)}
    if sample_rate:
        opts["mfcc"] = {"sample_rate": sample_rate}
    cfg = ExtractConfig(features=[f.strip() for f in features.split(",") if f.strip()], options=opts, on_error=on_error)
    with progress() as bar:
        summary = run_extract(work, cfg, exec_cfg, on_progress=StageProgress(bar))
    n = sum(r.get("extracted", 0) for r in summary["shards"])
    out.print(f"extracted {n} clip x extractor outputs; store: {summary.get('store') or 'shard only (merge later)'}")
    if summary["skipped"]:
        out.print(f"[yellow]skipped {len(summary['skipped'])} bad clips[/], first: {summary['skipped'][0]}")
