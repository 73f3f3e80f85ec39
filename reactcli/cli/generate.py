"""``reactcli generate``: K reactions per speaker item from a checkpoint or a naive baseline."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from reactcli.cli.common import STATE, StageProgress, handle_errors, out, progress
from reactcli.cli.execution import SLURM_GPUS, SLURM_PARTITION, SLURM_TIME, SLURM_TIMEOUT, exec_options


@handle_errors
def command(
    work: Path = typer.Option(..., "--work", help="Work directory."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="A ReactFace, GAFRG or PWSG checkpoint (model.pt)."),
    baseline: Optional[str] = typer.Option(None, "--baseline", help="Instead of a checkpoint: gt, mime, random, meanseq or meanfr."),
    model: Optional[str] = typer.Option(None, "--model", help="Accepted for symmetry with train (reactface/perfrdiff); the checkpoint decides."),
    split: str = typer.Option("test", help="Split whose speaker items get reactions."),
    num_samples: int = typer.Option(10, "--num-samples", help="K reactions per item (one batch inside the model)."),
    run: Optional[str] = typer.Option(None, "--run", help="Run name in the store (default: the checkpoint's run or the baseline's name)."),
    batch_size: int = typer.Option(4, "--batch-size", help="Clips per model call."),
    frames: int = typer.Option(750, help="Frames per clip."),
    window: Optional[int] = typer.Option(None, help="ReactFace: online window size."),
    momentum: Optional[float] = typer.Option(None, help="ReactFace: latent momentum alpha in [0, 1]."),
    steps: int = typer.Option(50, help="PerFRDiff: DDIM steps."),
    guidance: float = typer.Option(7.5, help="PerFRDiff: classifier-free guidance scale."),
    overlap: bool = typer.Option(False, help="PerFRDiff: overlapping windows (stride w/2) to avoid seams."),
    timestep_spacing: Optional[str] = typer.Option(
        None, "--timestep-spacing",
        help="PerFRDiff: where the DDIM steps sit among the training steps: trailing (the first step at the "
             "last training step, right for few steps), leading or linspace. Default: the checkpoint's."),
    personalised: bool = typer.Option(False, "--personalised", help="PerFRDiff: per-listener weight editing by a PWSG: style from its PSSL, or, for a PWSG with listener codes, the listener's own code if it was trained on them (see --own-codes), else the code that best explains their history clip (readings are kept in WORK/cache/code-readings/ and reused by later runs)."),
    pwsg_checkpoint: Optional[Path] = typer.Option(None, "--pwsg-checkpoint", help="PerFRDiff personalised: trained PWSG."),
    new_listeners: str = typer.Option("read", "--new-listeners", help="PerFRDiff personalised with listener codes and --own-codes: what a listener the PWSG was not trained on gets: read (the code that best explains their history clip) or generic (no edit: the generic GAFRG's reaction)."),
    own_codes: bool = typer.Option(True, "--own-codes/--read-all-codes", help="PerFRDiff personalised with listener codes: a listener the PWSG was trained on (same identity in manifests/identities.json) gets their own learned code; --read-all-codes reads every listener's code from their history clip."),
    precision: str = typer.Option("fp32", "--precision", help="PerFRDiff: the dtype the denoiser runs in: fp32 (the same output on every machine) or bf16 (several times faster on CPUs with AVX512-BF16/AMX and on bf16 GPUs; noise and DDIM updates stay fp32, outputs differ from fp32 by bf16 rounding)."),
    mime_lag: int = typer.Option(25, "--mime-lag", help="Mime baseline: frames of lag."),
    train_split: str = typer.Option("train", "--train-split", help="MeanSeq/MeanFr baselines: split the means come from."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Noise seed (default: the global --seed)."),
    device: str = typer.Option("cpu", help="cpu, cuda or auto."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the items this run name already holds if they were made with other settings (another checkpoint, seed or option); without it such a rerun stops. Items made with the same settings are always kept (resume)."),
    num_jobs: int = typer.Option(1, "--num-jobs", help="Parallel local processes over whole batches (or Slurm array tasks with --executor slurm)."),
    shard: Optional[str] = typer.Option(None, "--shard", help="Generate only shard i/N of the batches; rerun without --shard (and --num-jobs N) to merge."),
    executor: str = typer.Option("local", help="local (process pool) or slurm (job array through submitit)."),
    slurm_partition: Optional[str] = SLURM_PARTITION,
    slurm_time: int = SLURM_TIME,
    slurm_gpus: int = SLURM_GPUS,
    slurm_timeout: float = SLURM_TIMEOUT,
) -> None:
    """Write (N, K, T, D) reactions to the store with a manifest (resumable, seeded)."""
    from reactcli.errors import ConfigError
    from reactcli.generation.run import GenerateConfig, generate_run

    if (checkpoint is None) == (baseline is None):
        raise ConfigError("give exactly one of --checkpoint or --baseline")
    seed = STATE.seed if seed is None else seed
    with progress() as bar:
        if baseline:
            from reactcli.generation.baselines import generate_baseline

            path = generate_baseline(work, baseline, split=split, num_samples=num_samples, run=run, seed=seed,
                                     frames=frames, mime_lag=mime_lag, train_split=train_split, overwrite=overwrite)
        else:
            cfg = GenerateConfig(split=split, num_samples=num_samples, batch_size=batch_size, frames=frames, window=window,
                                 momentum=momentum, steps=steps, guidance=guidance, overlap=overlap,
                                 timestep_spacing=timestep_spacing,
                                 personalised=personalised, pwsg_checkpoint=str(pwsg_checkpoint) if pwsg_checkpoint else None,
                                 own_codes=own_codes, new_listeners=new_listeners, precision=precision, seed=seed,
                                 device=device)
            ex = exec_options(num_jobs, shard, executor, slurm_partition, slurm_time, slurm_gpus, slurm_timeout)
            path = generate_run(work, checkpoint, cfg, run=run, on_progress=StageProgress(bar), exec_cfg=ex, overwrite=overwrite)
    out.print(f"generated: {path}")
