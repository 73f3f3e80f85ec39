"""``reactcli render``: videos (and optionally FID frames and curve plots) of a generation run.

Thin layer over :func:`reactcli.render.video.render_items`,
:func:`reactcli.render.fid_frames.export_fid_frames` and :func:`reactcli.render.plots.plot_items`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

import typer

from reactcli.cli.common import StageProgress, handle_errors, out, progress
from reactcli.cli.execution import execution_options
from reactcli.errors import ConfigError
from reactcli.execution import ExecConfig


def _parse_items(text: Optional[str]) -> list[int] | None:
    if text is None:
        return None
    try:
        items = [int(x) for x in text.replace(" ", "").split(",") if x != ""]
    except ValueError:
        raise ConfigError(f"--items {text!r}: expected comma-separated item indices, e.g. 0,1,2") from None
    if not items or min(items) < 0:
        raise ConfigError(f"--items {text!r}: expected non-negative item indices")
    return items


def _parse_dims(text: Optional[str]) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"--plot-dims {text!r}: expected comma-separated dimension indices") from None


def _native_size(renderer: str, size: int) -> int:
    """The challenge's FID frame size for PIRender (its 224 px crop); ``size`` for the others."""
    if renderer != "pirender":
        return size
    from reactcli.render.pirender import PIRenderConfig  # noqa: PLC0415

    return PIRenderConfig().image_size


@handle_errors
@execution_options("the items")
def command(
    work: Path = typer.Option(..., "--work", help="Work directory holding the generation run."),
    run: str = typer.Option(..., "--run", help="Generation run name."),
    split: str = typer.Option("test", "--split", help="Split of the run (val or test)."),
    items: Optional[str] = typer.Option(None, "--items", help="Comma-separated item indices, e.g. 0,1,2."),
    num_items: Optional[int] = typer.Option(None, "--num-items", min=1, help="Render the first N items (default: all, unless --items)."),
    renderer: Literal["face2d", "faceverse", "pirender"] = typer.Option("face2d", "--renderer", help="How generated reactions are drawn: face2d (a cartoon from the emotion features), faceverse (the 3DMM mesh) or pirender (the challenge's photo-realistic renderer)."),
    faceverse_model: Optional[Path] = typer.Option(None, "--faceverse-model", help="FaceVerse v2 model file (.npy dict), for --renderer faceverse."),
    pirender_checkpoint: Optional[Path] = typer.Option(None, "--pirender-checkpoint", help="The challenge's PIRender checkpoint (cur_model_fold.pth), for --renderer pirender."),
    mean_face: Optional[Path] = typer.Option(None, "--mean-face", help="The challenge's mean_face.npy: the run's 3DMM are offsets from it (the challenge's models' outputs); omit for reactcli's runs."),
    size: int = typer.Option(128, "--size", help="Speaker/listener panel size in pixels (even); sample cells are size/rows."),
    frames: Optional[int] = typer.Option(None, "--frames", min=1, help="Only the first N frames of each item."),
    max_samples: Optional[int] = typer.Option(None, "--max-samples", min=1, help="Show at most this many of the K samples."),
    grid_rows: Optional[int] = typer.Option(None, "--grid-rows", min=1, help="Rows of the sample grid (default 2 when K >= 4)."),
    audio: bool = typer.Option(True, "--audio/--no-audio", help="Mux the speaker's audio."),
    videos: bool = typer.Option(True, "--videos/--no-videos", help="Write the side-by-side videos."),
    fid_frames: Optional[Path] = typer.Option(None, "--fid-frames", help="Also export FID frames to DIR/real and DIR/fake (use evaluate --frame-stride 1 on them)."),
    every: int = typer.Option(30, "--every", min=1, help="FID frame stride (official: 30)."),
    fid_size: Optional[int] = typer.Option(None, "--fid-size", min=16, help="FID frame size in pixels (default: 224 for pirender, the challenge's frames; else --size)."),
    fid_real: Literal["auto", "video", "render"] = typer.Option("auto", "--fid-real", help="Real FID frames from: auto (video, else drawn; always drawn for face2d/faceverse), video (pirender only), render."),
    plots: bool = typer.Option(False, "--plots/--no-plots", help="Also write feature-curve PNGs to WORK/plots/RUN/SPLIT/."),
    plot_dims: Optional[str] = typer.Option(None, "--plot-dims", help="Emotion dims to plot (default 7,13,15,16: AU12, AU25, valence, arousal)."),
    device: str = typer.Option("cpu", "--device", help="Torch device for PIRender."),
    exec_cfg: ExecConfig = None,  # the execution options (@execution_options)
) -> None:
    """Render generated reactions: speaker | K samples | real listener, with the speaker's audio."""
    from reactcli.io import check_output  # noqa: PLC0415

    if fid_frames is not None:
        check_output(fid_frames, "--fid-frames", "dir")
    from reactcli.render.base import RendererConfig  # noqa: PLC0415
    from reactcli.render.stage import render_sharded  # noqa: PLC0415
    from reactcli.render.video import RenderConfig  # noqa: PLC0415

    item_list = _parse_items(items)
    cfg = RenderConfig(
        renderer=renderer, faceverse_model=str(faceverse_model) if faceverse_model else None,
        pirender_checkpoint=str(pirender_checkpoint) if pirender_checkpoint else None, size=size,
        mean_face=str(mean_face) if mean_face else None,
        grid_rows=grid_rows, max_samples=max_samples, frames=frames, num_items=num_items,
        audio=audio, device=device,
    )
    with progress() as bar:
        report = StageProgress(bar)

        if videos:
            paths = render_sharded(work, run, split, item_list, cfg, exec_cfg, on_progress=report)
        if fid_frames is not None:
            from reactcli.render.fid_frames import export_fid_frames  # noqa: PLC0415

            fid_items = item_list
            if fid_items is None and num_items is not None:
                from reactcli.render.video import load_run  # noqa: PLC0415

                fid_items = [r.index for r in load_run(work, run, split)[:num_items]]
            summary = export_fid_frames(
                work, run, split, fid_frames, every,
                renderer=RendererConfig(name=renderer, size=fid_size or _native_size(renderer, size),
                                        faceverse_model=cfg.faceverse_model,
                                        pirender_checkpoint=cfg.pirender_checkpoint, mean_face=cfg.mean_face,
                                        device=device),
                real=fid_real, items=fid_items, frames=frames, on_progress=report,
            )
        if plots:
            from reactcli.render.plots import plot_items  # noqa: PLC0415

            plot_paths = plot_items(work, run, split, item_list, dims=_parse_dims(plot_dims), num_items=num_items)
    if videos:
        where = paths[0].parent if paths else Path(work) / "videos" / run / split
        out.print(f"[bold green]render[/] {len(paths)} video(s) in {where}")
    if fid_frames is not None:
        out.print(f"  FID frames: {summary.real} real in {summary.real_dir}, {summary.fake} generated in {summary.fake_dir} "
                  f"(evaluate with --frame-stride 1)")
    if plots:
        out.print(f"  plots: {len(plot_paths)} in {plot_paths[0].parent if plot_paths else '-'}")
