"""``reactcli demo``: the whole pipeline on a synthetic corpus, ending in report.html.

Thin layer over :func:`reactcli.demo.run_demo`: builds a :class:`~reactcli.demo.DemoConfig`
(``--quick`` for the tiny preset), shows one progress bar over the stages plus a bar for the
current stage's own progress, prints the metric table, and prints the report's path as the LAST
line on stdout (so ``reactcli demo | tail -1`` gives the file to open).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

import typer

from reactcli.cli.common import STATE, handle_errors, out, progress


@handle_errors
def command(
    out_dir: Path = typer.Option(Path("demo-output"), "--out", help="Output folder (report.html, metrics/, videos/, work/); a rerun resumes."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of the corpus, training and generation (default: the global --seed)."),
    quick: bool = typer.Option(False, "--quick", help="Tiny preset (3 short sessions, tiny models, 2 steps): checks the chain in about a minute; numbers are meaningless."),
    device: str = typer.Option("cpu", "--device", help="Torch device for training and generation: cpu, cuda or auto."),
    skip_render: bool = typer.Option(False, "--skip-render", help="Do not render videos (plots and the report are still made)."),
    recipes: Optional[str] = typer.Option(None, "--recipes", help="The recipes trained: a shipped set (default: synthetic; `reactcli recipes` lists them) or a folder with reactface.yaml, perfrdiff-gafrg.yaml, perfrdiff-pssl.yaml and perfrdiff-pwsg.yaml, and transvae.yaml, belfusion-ae.yaml and belfusion.yaml unless --no-challenge-baselines."),
    train_appropriate: Optional[Literal["built", "truth"]] = typer.Option(None, "--train-appropriate", help="Training appropriateness: built (from features) or truth (the synthetic corpus's)."),
    challenge_baselines: bool = typer.Option(True, "--challenge-baselines/--no-challenge-baselines", help="Also train, generate and score the REACT challenge's baselines Trans-VAE and BeLFusion (on by default; --no-challenge-baselines leaves them out for a shorter demo)."),
) -> None:
    """Synthetic corpus -> prepare -> features -> appropriateness -> ReactFace + PerFRDiff (+ Trans-VAE, BeLFusion) -> baselines -> metrics -> videos -> report."""
    from reactcli.io import check_output

    check_output(out_dir, "--out", "dir")
    from reactcli.demo import DEMO_STAGES, DemoConfig, quick_config, run_demo
    from reactcli.metrics.report import print_table

    cfg = quick_config() if quick else DemoConfig()
    cfg.seed = STATE.seed if seed is None else seed
    cfg.device = device
    cfg.skip_render = skip_render
    cfg.challenge_baselines = challenge_baselines
    if recipes is not None:
        cfg.recipes = recipes
    if train_appropriate is not None:
        cfg.train_appropriate = train_appropriate
    cfg.validate()  # bad options fail before any progress display

    with progress() as bar:
        overall = bar.add_task("demo", total=len(DEMO_STAGES))
        current: dict[str, int] = {}

        def on_stage(name: str, index: int, total: int) -> None:
            bar.update(overall, completed=index, description=f"demo: {name}")
            for task in current.values():  # the previous stage's own bars are done
                bar.remove_task(task)
            current.clear()

        def on_progress(task: str, done: int, total: int) -> None:
            if task not in current:
                current[task] = bar.add_task(f"  {task}", total=total)
            bar.update(current[task], completed=done, total=total)

        result = run_demo(out_dir, cfg, on_stage=on_stage, on_progress=on_progress)
        on_stage("done", len(DEMO_STAGES), len(DEMO_STAGES))
        bar.update(overall, completed=len(DEMO_STAGES), description="demo")

    print_table(result["metrics"], out, title=f"REACT metrics ({cfg.split} split, emotion protocol)")
    out.print(f"total: {result['total_wall_s']:.0f} s wall, {result['total_cpu_s']:.0f} s CPU; "
              f"metrics in {Path(out_dir) / 'metrics'}; report.md beside the HTML")
    typer.echo(str(Path(result["report_html"]).resolve()))
