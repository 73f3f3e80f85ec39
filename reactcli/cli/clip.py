"""``reactcli clip``: cut raw sessions into challenge clips (both participants in lock step)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

import typer

from reactcli.cli.common import StageProgress, handle_errors, out, progress
from reactcli.cli.execution import execution_options
from reactcli.execution import ExecConfig


@handle_errors
@execution_options("the sessions")
def command(
    work: Path = typer.Option(..., "--work", help="Work directory with manifests/sessions.jsonl (from `reactcli prepare`)."),
    clip_seconds: float = typer.Option(30.0, "--clip-seconds", help="Clip window length in seconds (challenge: 30)."),
    stride: float = typer.Option(30.0, "--stride", help="Seconds between window starts (30: consecutive, non-overlapping)."),
    frames: int = typer.Option(751, "--frames", help="Video frames per clip (challenge: 751 = 30 s at 25 fps + boundary frame)."),
    fps: float = typer.Option(25.0, "--fps", help="Clip frame rate; other input rates are converted (nearest frame)."),
    sample_rate: int = typer.Option(44100, "--sample-rate", help="WAV sample rate in Hz (44100: the official release's, which its MFCC features use)."),
    remainder: Literal["drop", "keep"] = typer.Option("drop", "--remainder", help="drop: drop a partial final window; keep: keep it if at least --min-remainder s long."),
    min_remainder: float = typer.Option(0.3, "--min-remainder", help="Shortest partial final window kept with --remainder keep (seconds)."),
    mode: Literal["reencode", "copy"] = typer.Option("reencode", "--mode", help="reencode: frame-exact H.264 (default); copy: stream copy (fast, cuts at keyframes)."),
    crf: int = typer.Option(18, "--crf", help="libx264 constant rate factor for reencode (lower = better quality)."),
    preset: str = typer.Option("veryfast", "--preset", help="libx264 preset for reencode (speed/size only)."),
    sidecar_fps: Optional[float] = typer.Option(None, "--sidecar-fps", help="Rows per second of the session emotion/3DMM files (default: the video's frame rate)."),
    mirror_splits: str = typer.Option("val,test", "--mirror-splits", help="Comma-separated splits whose items are repeated with roles swapped."),
    on_error: Literal["fail", "skip"] = typer.Option("fail", "--on-error", help="fail: a bad session stops the stage; skip: report it by name and go on."),
    split_map: Optional[Path] = typer.Option(None, "--split-map", help="Session-to-split map (CSV with columns session,split, or a JSON object {session: split}; sessions named <site>/<session> or by folder name) whose splits replace the cycle/hash splits `prepare` gave; every session must be listed. Format: manifests/schemas/split-map.schema.json; the synthetic corpus's: manifests/split-maps/synthetic.csv."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Cut again the sessions whose clips were cut with other settings (e.g. another --sample-rate); without it such a rerun stops naming the setting. Sessions whose input files changed are always cut again."),
    exec_cfg: ExecConfig = None,  # the execution options (@execution_options)
) -> None:
    """Cut every session into 30 s clips (video, WAV, emotion/3DMM slices) + clips/pairs manifests; resumable."""
    from reactcli.corpora.clip_stage import ClipStageConfig, run_clip

    cfg = ClipStageConfig(clip_seconds=clip_seconds, stride_seconds=stride, frames=frames, fps=fps,
                          sample_rate=sample_rate, remainder=remainder, min_remainder_s=min_remainder,
                          mode=mode, crf=crf, preset=preset, sidecar_fps=sidecar_fps, on_error=on_error, overwrite=overwrite,
                          split_map=str(split_map) if split_map else None,
                          mirror_splits=tuple(s.strip() for s in mirror_splits.split(",") if s.strip()))
    with progress() as bar:
        summary = run_clip(work, cfg, exec_cfg, on_progress=StageProgress(bar))
    if not summary["merged"]:
        out.print(f"shard {exec_cfg.shard[0]}/{exec_cfg.shard[1]} done; rerun without --shard (--num-jobs {exec_cfg.shard[1]}) to merge")
    else:
        pairs = ", ".join(f"{k}: {v}" for k, v in summary["pairs"].items())
        out.print(f"clips: {summary['clips']} (cut {summary['cut']}, reused {summary['reused']})  items: {pairs or '-'}")
    if summary["skipped"]:
        out.print(f"[yellow]skipped {len(summary['skipped'])} bad sessions[/], first: {summary['skipped'][0]}")
