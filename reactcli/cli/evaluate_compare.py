"""``reactcli evaluate compare``: is one generator better than another beyond sampling noise?"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

import typer

from reactcli.cli.common import handle_errors


@handle_errors
def compare_command(
    work: Path = typer.Option(..., "--work", help="Work directory."),
    base: list[str] = typer.Option(..., "--base", help="Run of the reference model (repeat the option for the same "
                                   "model sampled with other seeds; per-item scores are averaged over them)."),
    run: list[str] = typer.Option(..., "--run", help="Run of the model being compared (repeatable, as --base)."),
    split: str = typer.Option("test", help="Split all the runs generated (the same items on both sides)."),
    personal: bool = typer.Option(False, "--personal", help="Score against each listener's own appropriate reactions "
                                  "(as `evaluate personal`) and also compare within seen / unseen listeners."),
    feature: Literal["emotion", "tdmm"] = typer.Option("emotion", help="emotion (challenge protocol) or tdmm."),
    n_boot: int = typer.Option(10000, "--boot", help="Bootstrap resamples of the items for the interval."),
    level: float = typer.Option(0.95, help="Coverage of the interval of the mean difference."),
    seed: int = typer.Option(0, help="Seed of the bootstrap (the same seed gives the same interval)."),
    out_file: Optional[Path] = typer.Option(None, "--out", help="JSON to write (default "
                                            "WORK/metrics/compare-<run>-vs-<base>-<split>[-personal].json)."),
) -> None:
    """Paired, item-level comparison of FRCorr and FRdist: mean difference (run - base), its
    bootstrap interval over items, items where the run is better, and a verdict that is
    "better" or "worse" only when the interval excludes 0."""
    from reactcli.io import check_output

    if out_file is not None:
        check_output(out_file, "--out")
    from reactcli.metrics.compare import compare_runs

    res = compare_runs(work, split, base, run, feature=feature, personal=personal, n_boot=n_boot, seed=seed,
                       level=level, out=out_file)
    kind = "personal " if personal else ""
    repeats = len(base) > 1 or len(run) > 1
    typer.echo(f"{', '.join(run)} vs {', '.join(base)} ({kind}{split})")
    head = f"{'items':<12} {'metric':<6} {'base':>8} {'run':>8} {'diff':>8} {f'{level:.0%} interval':>17} {'better':>6}"
    typer.echo(head + (f" {'seed sd':>13}" if repeats else "") + "  verdict")
    for group, metrics in res["groups"].items():
        for metric, r in metrics.items():
            d = 4 if metric == "FRCorr" else 1
            ci = f"{r['ci'][0]:+.{d}f}..{r['ci'][1]:+.{d}f}"
            label, better = f"{group} ({r['N']})", f"{r['items_better']}/{r['N']}"
            line = (f"{label:<12} {metric:<6} {r['base']:>8.{d}f} {r['run']:>8.{d}f} "
                    f"{r['diff']:>+8.{d}f} {ci:>17} {better:>6}")
            if repeats:
                line += f" {r['repeat_sd'][0]:>6.{d}f}/{r['repeat_sd'][1]:<6.{d}f}"
            typer.echo(f"{line}  {r['verdict']}")
    typer.echo("diff = run - base, the mean of the per-item differences; the verdict is better or worse only "
               "when the interval excludes 0")
    typer.echo(f"-> {res['path']}")
