"""``reactcli evaluate personal``: appropriateness against each listener's own reactions."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

import typer

from reactcli.cli.common import handle_errors, out


@handle_errors
def personal_command(
    work: Path = typer.Option(..., "--work", help="Work directory."),
    run: list[str] = typer.Option(..., "--run", help="Generation run name(s) (repeat the option for several)."),
    split: str = typer.Option("test", help="Split the runs generated."),
    feature: Literal["emotion", "tdmm"] = typer.Option("emotion", help="emotion or tdmm."),
    out_dir: Optional[Path] = typer.Option(None, "--out-dir", help="Folder for <run>-<split>-personal.json (default WORK/metrics)."),
) -> None:
    """FRCorr/FRdist where A is restricted to reactions of the item's own listener identity."""
    from reactcli.io import check_output

    if out_dir is not None:
        check_output(out_dir, "--out-dir", "dir")
    from reactcli.metrics.personal import evaluate_personal
    from reactcli.metrics.tables import personal_path

    for r in run:
        dest = personal_path(out_dir, r, split) if out_dir else None
        res = evaluate_personal(work, r, split, feature=feature, out=dest)
        groups = "".join(f"  {g} ({res[f'N_{g}']} items) {res[f'personal_FRCorr_{g}']:.4g} / {res[f'personal_FRdist_{g}']:.4g}"
                         for g in ("seen", "unseen") if f"personal_FRCorr_{g}" in res)
        out.print(f"{r}: personal FRCorr {res['personal_FRCorr']:.4g}  personal FRdist {res['personal_FRdist']:.4g}"
                  f"{groups}  -> {res['path']}")
