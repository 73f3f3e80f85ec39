"""``reactcli extract``: per-frame features of every clip into the HDF5 store."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional

import typer

from reactcli.cli.common import StageProgress, handle_errors, out, progress
from reactcli.cli.execution import execution_options
from reactcli.execution import ExecConfig

FACE_PANEL = "Faces (landmarks, crops, EMOCA / FaceVerse / GraphAU adapters)"


def extractor_options(*, wav2vec2_path: Path | None = None, sample_rate: int | None = None,
                      landmarks_backend: str = "mediapipe", fan_dir: Path | None = None,
                      fan_detector: str = "sfd", face_crop: str = "face",
                      models: dict[str, tuple[Path | None, str | None]] | None = None) -> dict[str, dict[str, Any]]:
    """Per-extractor options from the command line (``models``: adapter -> (path, factory))."""
    opts: dict[str, dict[str, Any]] = {}
    if wav2vec2_path is not None:
        opts["wav2vec2"] = {"path": str(wav2vec2_path)}
    if sample_rate:
        opts["mfcc"] = {"sample_rate": sample_rate}
    fan = {"fan_dir": str(fan_dir) if fan_dir is not None else None, "fan_detector": fan_detector}
    opts["landmarks"] = {"backend": landmarks_backend, **fan}
    for name, (path, factory) in (models or {}).items():
        opts[name] = {"crop": face_crop, "landmarks": landmarks_backend, **fan}
        if path is not None:
            opts[name]["path"] = str(path)
        if factory:
            opts[name]["factory"] = factory
    return opts


@handle_errors
@execution_options("the clips")
def command(
    work: Path = typer.Option(..., "--work", help="Work directory with manifests/clips.jsonl."),
    features: str = typer.Option("mfcc,emotion,tdmm", help="Comma-separated: mfcc, wav2vec2, landmarks, emoca, faceverse, graphau, or the sidecar features emotion/tdmm."),
    device: str = typer.Option("cpu", "--device", help="Torch device of the network extractors (wav2vec2, face adapters, FAN): cpu, cuda, cuda:N or auto; resolved inside each shard, so Slurm tasks use their --slurm-gpus."),
    wav2vec2_path: Optional[Path] = typer.Option(None, "--wav2vec2-path", help="Local wav2vec2 checkpoint directory (for wav2vec2)."),
    sample_rate: Optional[int] = typer.Option(None, "--sample-rate", help="Resample audio to this rate before MFCC (default: the file's own rate, as the challenge)."),
    landmarks_backend: Literal["mediapipe", "fan"] = typer.Option("mediapipe", "--landmarks-backend", rich_help_panel=FACE_PANEL, help="Landmarks for `landmarks` and for the face crops: mediapipe (478 points, no files) or fan (face-alignment's 68 points, EMOCA's convention; needs --fan-dir)."),
    fan_dir: Optional[Path] = typer.Option(None, "--fan-dir", rich_help_panel=FACE_PANEL, help="Folder with face-alignment's weights (2DFAN4-11f355bf06.pth.tar, s3fd-619a316812.pth: what it would download to $TORCH_HOME/hub/checkpoints)."),
    fan_detector: Literal["sfd", "mediapipe"] = typer.Option("sfd", "--fan-detector", rich_help_panel=FACE_PANEL, help="Face boxes for FAN: sfd (face-alignment's S3FD, its file in --fan-dir) or mediapipe."),
    face_crop: Literal["face", "center", "resize"] = typer.Option("face", "--face-crop", rich_help_panel=FACE_PANEL, help="What the face adapters see: face (a square around each frame's landmarks, recorded per frame), center (Resize 256 / CenterCrop 224: for clips that are face crops already) or resize."),
    emoca_path: Optional[Path] = typer.Option(None, "--emoca-path", rich_help_panel=FACE_PANEL, help="EMOCA model: a TorchScript file, or the folder/weights given to --emoca-factory."),
    emoca_factory: Optional[str] = typer.Option(None, "--emoca-factory", rich_help_panel=FACE_PANEL, help="module:function or file.py:function building the EMOCA wrapper from --emoca-path (see examples/adapters/emoca.py)."),
    faceverse_path: Optional[Path] = typer.Option(None, "--faceverse-path", rich_help_panel=FACE_PANEL, help="FaceVerse model: a TorchScript file, or the folder/weights given to --faceverse-factory."),
    faceverse_factory: Optional[str] = typer.Option(None, "--faceverse-factory", rich_help_panel=FACE_PANEL, help="module:function or file.py:function building the FaceVerse wrapper (see examples/adapters/faceverse.py)."),
    graphau_path: Optional[Path] = typer.Option(None, "--graphau-path", rich_help_panel=FACE_PANEL, help="GraphAU/emotion model: a TorchScript file, or the folder/weights given to --graphau-factory."),
    graphau_factory: Optional[str] = typer.Option(None, "--graphau-factory", rich_help_panel=FACE_PANEL, help="module:function or file.py:function building the GraphAU wrapper (see examples/adapters/graphau.py)."),
    on_error: Literal["fail", "skip"] = typer.Option("fail", help="fail: a bad clip stops the stage; skip: report it by name and go on."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Redo the arrays (and shard files) stored with other settings (e.g. another --sample-rate); without it such a rerun stops with an error naming the setting. Arrays whose input files changed are always redone."),
    exec_cfg: ExecConfig = None,  # the execution options (@execution_options)
) -> None:
    """Run feature extractors over every clip; resumable, shardable, identical for any job count."""
    from reactcli.features.stage import ExtractConfig, run_extract

    opts = extractor_options(
        wav2vec2_path=wav2vec2_path, sample_rate=sample_rate, landmarks_backend=landmarks_backend,
        fan_dir=fan_dir, fan_detector=fan_detector, face_crop=face_crop,
        models={"emoca": (emoca_path, emoca_factory), "faceverse": (faceverse_path, faceverse_factory),
                "graphau": (graphau_path, graphau_factory)})
    cfg = ExtractConfig(features=[f.strip() for f in features.split(",") if f.strip()], options=opts,
                        on_error=on_error, device=device, overwrite=overwrite)
    with progress() as bar:
        summary = run_extract(work, cfg, exec_cfg, on_progress=StageProgress(bar))
    n = sum(r.get("extracted", 0) for r in summary["shards"])
    redone = sum(r.get("redone", 0) for r in summary["shards"])
    again = f" ({redone} arrays redone: changed inputs or --overwrite)" if redone else ""
    out.print(f"extracted {n} clip x extractor outputs{again}; store: {summary.get('store') or 'shard only (merge later)'}")
    if summary["skipped"]:
        out.print(f"[yellow]skipped {len(summary['skipped'])} bad clips[/], first: {summary['skipped'][0]}")
