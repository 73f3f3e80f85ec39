"""``reactcli generate``: K reactions per speaker item from a checkpoint or a naive baseline.

The options come in panels: the common ones, then each model family's sampler options (a
sampler option left out takes the value the checkpoint was trained for, i.e. its recipe), the
naive baselines' options and the shared execution options.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

import typer

from reactcli.cli.common import STATE, StageProgress, handle_errors, out, progress
from reactcli.cli.execution import execution_options
from reactcli.execution import ExecConfig

REACTFACE = "ReactFace and Trans-VAE sampler"
PERFRDIFF = "PerFRDiff sampler"
BELFUSION = "BeLFusion sampler"
PERSONAL = "PerFRDiff personalisation"
BASELINES = "Naive baselines (--baseline)"


@handle_errors
@execution_options("the batches of items")
def command(
    work: Path = typer.Option(..., "--work", help="Work directory."),
    checkpoint: Optional[Path] = typer.Option(None, "--checkpoint", help="A trained or imported generator's model.pt (ReactFace, PerFRDiff GAFRG or PWSG, Trans-VAE, BeLFusion diffusion); its model decides the sampler."),
    baseline: Optional[Literal["gt", "mime", "random", "meanseq", "meanfr"]] = typer.Option(None, "--baseline", help="Instead of a checkpoint, a naive baseline: gt (the real listener), mime (the speaker, lagged), random, meanseq or meanfr (training means)."),
    split: str = typer.Option("test", help="Split whose speaker items get reactions."),
    num_samples: int = typer.Option(10, "--num-samples", help="K reactions per item (one batch inside the model)."),
    run: Optional[str] = typer.Option(None, "--run", help="Run name in the store (default: the checkpoint's run or the baseline's name)."),
    batch_size: int = typer.Option(4, "--batch-size", help="Clips per model call."),
    frames: int = typer.Option(750, help="Frames per clip."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Noise seed (default: the global --seed)."),
    device: str = typer.Option("cpu", help="cpu, cuda or auto."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the items this run name already holds if they were made with other settings (another checkpoint, seed or option); without it such a rerun stops. Items made with the same settings are always kept (resume)."),
    window: Optional[int] = typer.Option(None, help="Online window size w in frames, ReactFace and online Trans-VAE (default: the checkpoint's generate_window).", rich_help_panel=REACTFACE),
    momentum: Optional[float] = typer.Option(None, help="ReactFace: latent momentum alpha in [0, 1] (default: the checkpoint's).", rich_help_panel=REACTFACE),
    decoder_band: Optional[int] = typer.Option(None, "--decoder-band", help="Frames each output frame's decoder attention sees before it, across window edges (continuous decoding; 0 = the paper's window-local decoder, which jumps at every window edge). Default: the checkpoint's (25 for new recipes, 0 for checkpoints made before it existed); works with any checkpoint.", rich_help_panel=REACTFACE),
    steps: Optional[int] = typer.Option(None, help="DDIM steps, PerFRDiff and BeLFusion (default: the checkpoint's diffusion.num_inference_steps; BeLFusion: every training step, as the authors).", rich_help_panel=PERFRDIFF),
    eta: Optional[float] = typer.Option(None, "--eta", help="DDIM stochasticity eta >= 0 (default: the checkpoint's, the authors' 0: deterministic given the initial noise). The DDIM steps are --steps.", rich_help_panel=BELFUSION),
    guidance: Optional[float] = typer.Option(None, help="Classifier-free guidance scale; 1 = conditional only (default: the checkpoint's diffusion.guidance_scale).", rich_help_panel=PERFRDIFF),
    overlap: Optional[bool] = typer.Option(None, "--overlap/--no-overlap", help="Overlapping windows (stride w/2, shared noise, blended every step; the paper's render variant) to avoid seams; not strictly online. Implies --context 0 unless --context is given. Default: the checkpoint's diffusion.overlap (on in the shipped recipes), off when --context N > 0 is given.", rich_help_panel=PERFRDIFF),
    context: Optional[int] = typer.Option(None, "--context", rich_help_panel=PERFRDIFF, help="Frames of the reaction generated so far that each window continues (windows start every w - c frames and are sampled in turn; online, no seams at window edges); 0 = independent windows (a step at every window edge). Default: the checkpoint's diffusion.context_frames."),
    timestep_spacing: Optional[Literal["leading", "trailing", "linspace"]] = typer.Option(
        None, "--timestep-spacing", rich_help_panel=PERFRDIFF,
        help="Where the DDIM steps sit among the training steps: trailing (the first step at the last training step, "
             "right for few steps), leading or linspace (default: the checkpoint's)."),
    precision: Literal["fp32", "bf16"] = typer.Option("fp32", "--precision", rich_help_panel=PERFRDIFF, help="The dtype the denoiser runs in: fp32 (the same output on every machine) or bf16 (several times faster on CPUs with AVX512-BF16/AMX and on bf16 GPUs; noise and DDIM updates stay fp32, outputs differ from fp32 by bf16 rounding)."),
    personalised: bool = typer.Option(False, "--personalised", rich_help_panel=PERSONAL, help="Per-listener weight editing by a PWSG: style from its PSSL, or, for a PWSG with listener codes, the listener's own code if it was trained on them (see --own-codes), else the code that best explains their history clip (readings are kept in WORK/cache/code-readings/ and reused by later runs). Implied by a PWSG --checkpoint."),
    pwsg_checkpoint: Optional[Path] = typer.Option(None, "--pwsg-checkpoint", rich_help_panel=PERSONAL, help="The trained PWSG (its checkpoint names its GAFRG and PSSL)."),
    new_listeners: Literal["read", "generic"] = typer.Option("read", "--new-listeners", rich_help_panel=PERSONAL, help="With listener codes and --own-codes: what a listener the PWSG was not trained on gets: read (the code that best explains their history clip) or generic (no edit: the generic GAFRG's reaction)."),
    own_codes: bool = typer.Option(True, "--own-codes/--read-all-codes", rich_help_panel=PERSONAL, help="With listener codes: a listener the PWSG was trained on (same identity in manifests/identities.json) gets their own learned code; --read-all-codes reads every listener's code from their history clip."),
    mime_lag: int = typer.Option(25, "--mime-lag", rich_help_panel=BASELINES, help="Mime: frames of lag."),
    train_split: str = typer.Option("train", "--train-split", rich_help_panel=BASELINES, help="MeanSeq/MeanFr: split the means come from."),
    exec_cfg: ExecConfig = None,  # the execution options (@execution_options)
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
                                 momentum=momentum, decoder_band=decoder_band, steps=steps, guidance=guidance, overlap=overlap, context=context,
                                 timestep_spacing=timestep_spacing,
                                 personalised=personalised, pwsg_checkpoint=str(pwsg_checkpoint) if pwsg_checkpoint else None,
                                 own_codes=own_codes, new_listeners=new_listeners, precision=precision, eta=eta, seed=seed,
                                 device=device)
            path = generate_run(work, checkpoint, cfg, run=run, on_progress=StageProgress(bar), exec_cfg=exec_cfg,
                                overwrite=overwrite)
    out.print(f"generated: {path}")
