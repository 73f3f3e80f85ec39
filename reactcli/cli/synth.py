"""``reactcli synth``: generate a synthetic dyadic corpus (REACT clip layout or raw sessions).

Thin layer over :func:`reactcli.synthetic.synthesize`; see that module for the generative
model, the exact file names and the truth files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

import typer

from reactcli.cli.common import STATE, StageProgress, handle_errors, out, progress
from reactcli.errors import ConfigError


@handle_errors
def command(
    out_dir: Path = typer.Option(..., "--out", help="Folder to write the corpus into (created if missing)."),
    layout: Literal["react", "raw"] = typer.Option("react", "--layout", help="'react': clipped REACT 2023/24 layout with split CSVs and neighbour matrices; 'raw': whole NoXI/RECOLA-like sessions."),
    sessions: int = typer.Option(6, "--sessions", min=1, help="Number of two-person sessions (every third is RECOLA-like, at most three)."),
    minutes: float = typer.Option(2.0, "--minutes", help="Length of each session in minutes (react: cut into 30 s clips)."),
    fps: int = typer.Option(25, "--fps", min=1, help="Video and feature frame rate."),
    size: int = typer.Option(128, "--size", help="Face video width = height in pixels (even; REACT used 256)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of the corpus; defaults to the global --seed."),
    clip_seconds: int = typer.Option(30, "--clip-seconds", min=1, help="Clip / behaviour-episode length in seconds."),
    video: bool = typer.Option(True, "--video/--no-video", help="Write face videos (--no-video: features, audio and truth only)."),
    audio_rate: int = typer.Option(16000, "--audio-rate", min=1000, help="WAV sample rate in Hz."),
    patterns: int = typer.Option(6, "--patterns", min=1, help="Number of speaker behaviour prototypes."),
    modes: int = typer.Option(3, "--modes", min=1, max=7, help="Appropriate response modes per speaker pattern."),
    workers: int = typer.Option(2, "--workers", min=1, help="Processes for rendering and encoding videos."),
    preset: str = typer.Option("ultrafast", "--preset", help="x264 preset for the videos."),
    crf: int = typer.Option(23, "--crf", min=0, max=51, help="x264 constant-rate factor (lower = better quality)."),
    mux_audio: bool = typer.Option(False, "--mux-audio/--no-mux-audio", help="Also put each WAV into its mp4 as AAC."),
    personal_affect: float = typer.Option(0.0, "--personal-affect", min=0.0, max=1.0, help="Extra person-level affect style x: a valence/arousal bias in +-x and expression-logit biases with std 4x per person (0: none, the default corpus)."),
    personal_mode: float = typer.Option(0.0, "--personal-mode", min=0.0, max=1.0, help="Probability that a listener answers with their own habitual response mode (one per person) instead of a random one: a personal way of reacting (0: none, the default corpus)."),
    recurring_experts: int = typer.Option(0, "--recurring-experts", min=0, help="NoXI-like sessions take their Expert from a pool of this many recurring people (as NoXI experts recur across sessions and splits); 0: every participant is in one session only. Who is who goes to truth/identities.json (give it to `prepare react --identities`, or `prepare synthetic --identities` for --layout raw)."),
) -> None:
    """Generate a synthetic corpus with known truth (patterns, response modes, styles)."""
    from reactcli.io import check_output

    check_output(out_dir, "--out", "dir")
    from reactcli.synthetic import SynthConfig, synthesize  # noqa: PLC0415

    if layout not in ("react", "raw"):
        raise ConfigError(f"--layout must be 'react' or 'raw', got {layout!r}")
    cfg = SynthConfig(
        layout=layout, sessions=sessions, minutes=minutes, fps=fps, size=size,
        seed=STATE.seed if seed is None else seed, clip_seconds=clip_seconds, video=video,
        audio_rate=audio_rate, n_patterns=patterns, n_modes=modes, workers=workers,
        preset=preset, crf=crf, mux_audio=mux_audio, personal_affect=personal_affect,
        personal_mode=personal_mode, recurring_experts=recurring_experts,
    )
    with progress() as bar:
        report = StageProgress(bar)

        summary = synthesize(out_dir, config=cfg, progress=report)
    counts = ", ".join(f"{k} {v}" for k, v in summary.counts.items())
    out.print(f"[bold green]synth[/] wrote a {summary.layout} corpus to {summary.root} in {summary.seconds:.1f} s")
    out.print(f"  {counts}; audio {summary.audio_rate} Hz, video {summary.size}x{summary.size} @ {summary.fps} fps")
    out.print(f"  truth: {summary.paths['truth']}")
