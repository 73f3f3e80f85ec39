"""``reactcli import``: bring artefacts made elsewhere into a work directory.

``reactcli import perfrdiff --from DIR --work W --run NAME`` converts PerFRDiff's released
``checkpoints/`` folder into ``W/runs/NAME/`` (see :mod:`reactcli.models.perfrdiff.released`),
which ``reactcli generate`` then reads like a trained run; ``reactcli import transvae`` and
``reactcli import belfusion`` do the same for the REACT challenge's released baselines
(:mod:`reactcli.models.challenge_released`). ``reactcli import predictions``
stores someone else's (N, K, T, D) reactions as a run (:mod:`reactcli.generation.exchange`), for
``evaluate run``, the report and ``render``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from reactcli.cli.common import handle_errors, out

app = typer.Typer(name="import", help="Import artefacts made elsewhere (released checkpoints, predictions).",
                  no_args_is_help=True)


@app.command("perfrdiff")
@handle_errors
def perfrdiff(
    source: Path = typer.Option(..., "--from", help="The released PerFRDiff checkpoints/ folder (person_specific/, embedder_latent/, diffusion_model/, rewrite_weight/)."),
    work: Path = typer.Option(..., "--work", help="Work directory; the run goes to WORK/runs/RUN/."),
    run: str = typer.Option("perfrdiff-released", "--run", help="Run name."),
    decoder_heads: int = typer.Option(4, "--decoder-heads", help="Attention heads of the decoder (not stored in the checkpoint; released config: 4)."),
    pssl_heads: int = typer.Option(4, "--pssl-heads", help="Attention heads of the PSSL encoder (released config: 4)."),
    window: int = typer.Option(50, "--window", help="Frames per window (released config: 50)."),
    audio_scale: Optional[float] = typer.Option(None, "--audio-scale", help="Factor on the audio tokens (default: the authors' latent_dim ** -0.5)."),
    edit_layer: Optional[list[str]] = typer.Option(None, "--edit-layer", help="A layer the editor shifts, as in the authors' modified_layers (repeatable; default: the released list, layers 4 and 6 multihead_attn and to_emotion_feat)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing WORK/runs/RUN."),
) -> None:
    """Convert PerFRDiff's released checkpoints into a reactcli run (strict: every tensor checked)."""
    from reactcli.models.perfrdiff.released import (
        RELEASED_EDIT_LAYERS,
        ReleasedSettings,
        import_released,
    )

    settings = ReleasedSettings(decoder_heads=decoder_heads, pssl_heads=pssl_heads, window=window,
                                audio_scale=audio_scale, edit_layers=tuple(edit_layer or RELEASED_EDIT_LAYERS))
    run_dir = import_released(source, work, run, settings, overwrite=overwrite)
    for name in sorted(p.name for p in run_dir.iterdir()):
        out.print(f"{run_dir / name}", highlight=False)


@app.command("transvae")
@handle_errors
def transvae(
    source: Path = typer.Option(..., "--from", help="The challenge's released Trans-VAE checkpoint (best_checkpoint.pth, {'state_dict': ...}) or its folder."),
    work: Path = typer.Option(..., "--work", help="Work directory; the run goes to WORK/runs/RUN/model.pt."),
    run: str = typer.Option("transvae-released", "--run", help="Run name."),
    online: Optional[bool] = typer.Option(None, "--online/--offline", help="Insist on an online (windowed) or offline checkpoint (default: whichever the file is; its layers tell)."),
    generate_window: int = typer.Option(8, "--generate-window", help="Online generation window in frames (not stored in the checkpoint; the authors' evaluation: 8)."),
    heads: int = typer.Option(4, "--heads", help="Attention heads (not stored in the checkpoint; the authors': 4)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing WORK/runs/RUN."),
) -> None:
    """Convert the challenge's released Trans-VAE into a reactcli checkpoint (strict: every tensor checked).
    It keeps the authors' video encoder, which reads raw speaker frames: reactcli loads it and
    reproduces their outputs from frames, but `reactcli generate` (which reads stored features) refuses it."""
    from reactcli.models.challenge_released import import_released_transvae

    run_dir = import_released_transvae(source, work, run, online=online, generate_window=generate_window,
                                       n_heads=heads, overwrite=overwrite)
    for name in sorted(p.name for p in run_dir.iterdir()):
        out.print(f"{run_dir / name}", highlight=False)


@app.command("belfusion")
@handle_errors
def belfusion(
    source: Path = typer.Option(..., "--from", help="The challenge's released BeLFusion stage-2 (LDM) checkpoint_*.pth, or its run folder (with config.yaml)."),
    work: Path = typer.Option(..., "--work", help="Work directory; the run goes to WORK/runs/RUN/model.pt."),
    run: str = typer.Option("belfusion-released", "--run", help="Run name."),
    autoencoder: Optional[Path] = typer.Option(None, "--autoencoder", help="The released stage-1 (VAE) checkpoint or folder (default: the emb_emotion_path of the stage-2 config.yaml, looked up beside it)."),
    online: Optional[bool] = typer.Option(None, "--online/--offline", help="Condition each window on the previous speaker window (online) or the same one (default: the stage-2 config.yaml's arch.args.online; the weights are the same)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing WORK/runs/RUN."),
) -> None:
    """Convert the challenge's released BeLFusion (both stages, latent statistics) into one reactcli
    checkpoint that `reactcli generate --checkpoint WORK/runs/RUN/model.pt` samples from."""
    from reactcli.models.challenge_released import import_released_belfusion

    run_dir = import_released_belfusion(source, work, run, autoencoder=autoencoder, online=online, overwrite=overwrite)
    for name in sorted(p.name for p in run_dir.iterdir()):
        out.print(f"{run_dir / name}", highlight=False)


@app.command("predictions")
@handle_errors
def predictions(
    work: Path = typer.Option(..., "--work", help="Work directory whose split the predictions are for."),
    run: str = typer.Option(..., "--run", help="Run name to store them as."),
    split: str = typer.Option("test", "--split", help="Split of the predictions (items in the challenge's mirrored order)."),
    emotion: Optional[Path] = typer.Option(None, "--emotion", help="(N, K, T, 25) emotion predictions, .npy."),
    tdmm: Optional[Path] = typer.Option(None, "--tdmm", help="(N, K, T, 58) 3DMM predictions, .npy."),
    frames: Optional[int] = typer.Option(None, "--frames", min=1, help="Keep the first N frames (e.g. 750 of 751)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a run of that name made from other files."),
) -> None:
    """Store someone else's predictions as a run (checked: item count, width, finite values)."""
    from reactcli.errors import ConfigError
    from reactcli.generation.exchange import import_predictions

    files = {f: p for f, p in (("emotion", emotion), ("tdmm", tdmm)) if p is not None}
    if not files:
        raise ConfigError("give --emotion and/or --tdmm")
    path = import_predictions(work, run, split, files, frames=frames, overwrite=overwrite)
    out.print(f"imported: {path}")
