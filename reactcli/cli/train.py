"""``reactcli train``: train a registered model (ReactFace, a PerFRDiff stage, Trans-VAE, a BeLFusion stage) from a recipe file."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from reactcli.cli.common import STATE, handle_errors, out, progress


@handle_errors
def command(
    work: Path = typer.Option(..., "--work", help="Work directory (prepared items, stored features, appropriateness)."),
    config: Path = typer.Option(..., "--config", help="Recipe YAML file, or a shipped recipe by name, e.g. synthetic/reactface (`reactcli recipes` lists them)."),
    model: Optional[str] = typer.Option(None, "--model", help="reactface, perfrdiff, transvae or belfusion (overrides the recipe's model)."),
    stage: Optional[str] = typer.Option(None, "--stage", help="Stage of a staged model: PerFRDiff gafrg, pssl or pwsg; BeLFusion autoencoder or diffusion (overrides the recipe)."),
    run: Optional[str] = typer.Option(None, "--run", help="Run name: checkpoints go to WORK/runs/RUN/ (default: model[-stage])."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or auto. Multi-GPU: launch with torchrun (see README)."),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="Override train.epochs."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Stop after this many optimiser steps (smoke runs)."),
    gafrg_checkpoint: Optional[Path] = typer.Option(None, "--gafrg-checkpoint", help="PWSG stage: the trained GAFRG checkpoint."),
    pssl_checkpoint: Optional[Path] = typer.Option(None, "--pssl-checkpoint", help="PWSG stage: the trained PSSL checkpoint (none for a recipe with style: codes, whose editor learns a code per listener)."),
    autoencoder_checkpoint: Optional[Path] = typer.Option(None, "--autoencoder-checkpoint", help="BeLFusion diffusion stage: the trained behaviour autoencoder (the autoencoder stage's model.pt; overrides the recipe's checkpoints.autoencoder)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed (default: the recipe's, else the global --seed)."),
    resume: bool = typer.Option(True, help="Resume from WORK/runs/RUN/last.pt when it exists (only a run of the same recipe, seed, data and parent checkpoints; more --epochs is fine)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="If WORK/runs/RUN holds a run of other settings, start it over instead of stopping."),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="Override one recipe value, section.key=value (repeatable; the value is read as YAML), e.g. --set model_config.frames_per_token=2. The run records the resolved recipe."),
) -> None:
    """Train a generator; logs per-epoch losses to WORK/runs/RUN/log.jsonl and the console."""
    from reactcli.training.recipe import apply_overrides, load_recipe, parse_recipe
    from reactcli.training.run import train_recipe

    recipe = apply_overrides(load_recipe(config), set_ or [])
    if model:
        recipe["model"] = model
    if stage:
        recipe["stage"] = stage
    if epochs is not None:
        recipe.setdefault("train", {})["epochs"] = epochs
    if max_steps is not None:
        recipe.setdefault("train", {})["max_steps"] = max_steps
    if gafrg_checkpoint or pssl_checkpoint or autoencoder_checkpoint:
        ck = recipe.get("checkpoints") or {}
        if autoencoder_checkpoint:
            ck["autoencoder"] = str(autoencoder_checkpoint)
        if gafrg_checkpoint:
            ck["gafrg"] = str(gafrg_checkpoint)
        if pssl_checkpoint:
            ck["pssl"] = str(pssl_checkpoint)
        recipe["checkpoints"] = ck
    if seed is None and "seed" not in recipe:
        seed = STATE.seed
    parse_recipe(recipe)  # a bad recipe stops here, before any progress display
    with progress() as bar:
        task = bar.add_task(f"train {recipe.get('model')} {recipe.get('stage') or ''}".strip(), total=None)

        def on_step(step: int, total: int) -> None:
            bar.update(task, completed=step, total=total)

        def on_epoch(epoch: int, logs: dict) -> None:
            bar.console.print(f"epoch {epoch}: " + "  ".join(f"{k} {v:.4g}" for k, v in logs.items()
                                                              if k not in ("epoch", "step", "seconds")))

        path = train_recipe(work, recipe, run=run, device=device, seed=seed, resume=resume, overwrite=overwrite,
                            on_epoch=on_epoch, on_step=on_step)
    out.print(f"checkpoint: {path}")
