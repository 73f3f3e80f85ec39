"""``reactcli clip``: cut raw sessions into challenge clips (both participants in lock step)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from reactcli.cli.common import StageProgress, handle_errors, out, progress
from reactcli.cli.execution import SLURM_GPUS, SLURM_PARTITION, SLURM_TIME, SLURM_TIMEOUT, exec_options


@handle_errors
def command(
    work: Path = typer.Option(..., "--work", help="Work directory with manifests/sessions.jsonl (from `reactcli prepare`)."),
    clip_seconds: float = typer.Option(30.0, "--clip-seconds", help="Clip window length in seconds (challenge: 30)."),
    stride: float = typer.Option(30.0, "--stride", help="Seconds between window starts (30: consecutive, non-overlapping)."),
    frames: int = typer.Option(751, "--frames", help="Video frames per clip (challenge: 751 = 30 s at 25 fps + boundary frame)."),
    fps: float = typer.Option(25.0, "--fps", help="Clip frame rate; other input rates are converted (nearest frame)."),
    sample_rate: int = typer.Option(16000, "--sample-rate", help="WAV sample rate in Hz (official release: 44100)."),
    remainder: str = typer.Option("drop", "--remainder", help="drop: drop a partial final window; keep: keep it if at least --min-remainder s long."),
    min_remainder: float = typer.Option(0.3, "--min-remainder", help="Shortest partial final window kept with --remainder keep (seconds)."),
    mode: str = typer.Option("reencode", "--mode", help="reencode: frame-exact H.264 (default); copy: stream copy (fast, cuts at keyframes)."),
    crf: int = typer.Option(18, "--crf", help="libx264 constant rate factor for reencode (lower = better quality)."),
    preset: str = typer.Option("veryfast", "--preset", help="libx264 preset for reencode (speed/size only)."),
    sidecar_fps: Optional[float] = typer.Option(None, "--sidecar-fps", help="Rows per second of the session emotion/3DMM files (default: the video's frame rate)."),
    mirror_splits: str = typer.Option("val,test", "--mirror-splits", help="Comma-separated splits whose items are repeated with roles swapped."),
    on_error: str = typer.Option("fail", "--on-error", help="fail: a bad session stops the stage; skip: report it by name and go on."),
    num_jobs: int = typer.Option(1, "--num-jobs", help="Parallel local processes (or Slurm array tasks with --executor slurm)."),
    shard: Optional[str] = typer.Option(None, "--shard", help="Run only shard i/N (0-based) of the sessions; rerun without --shard (with --num-jobs N) to merge."),
    executor: str = typer.Option("local", "--executor", help="local (process pool) or slurm (job array through submitit)."),
    slurm_partition: Optional[str] = SLURM_PARTITION,
    slurm_time: int = SLURM_TIME,
    slurm_gpus: int = SLURM_GPUS,
    slurm_timeout: float = SLURM_TIMEOUT,
) -> None:
    """Cut every session into 30 s clips (video, WAV, emotion/3DMM slices) + clips/pairs manifests; resumable."""
    from reactcli.corpora.clip_stage import ClipStageConfig, run_clip

    cfg = ClipStageConfig(clip_seconds=clip_seconds, stride_seconds=stride, frames=frames, fps=fps,
                          sample_rate=sample_rate, remainder=remainder, min_remainder_s=min_remainder,
                          mode=mode, crf=crf, preset=preset, sidecar_fps=sidecar_fps, on_error=on_error,
                          mirror_splits=tuple(s.strip() for s in mirror_splits.split(",") if s.strip()))
    ex = exec_options(num_jobs, shard, executor, slurm_partition, slurm_time, slurm_gpus, slurm_timeout)
    with progress() as bar:
        summary = run_clip(work, cfg, ex, on_progress=StageProgress(bar))
    if not summary["merged"]:
        out.print(f"shard {shard} done; rerun without --shard (--num-jobs {ex.shard[1] if ex.shard else num_jobs}) to merge")
    else:
        pairs = ", ".join(f"{k}: {v}" for k, v in summary["pairs"].items())
        out.print(f"clips: {summary['clips']} (cut {summary['cut']}, reused {summary['reused']})  items: {pairs or '-'}")
    if summary["skipped"]:
        out.print(f"[yellow]skipped {len(summary['skipped'])} bad sessions[/], first: {summary['skipped'][0]}")
