"""``reactcli prepare <corpus>``: read a corpus layout into manifests and the feature store."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from reactcli.cli.common import handle_errors, out, progress

app = typer.Typer(help="Read a corpus (REACT clips, RECOLA/NoXI sessions, synthetic) into a work directory.", no_args_is_help=True)


class _Bar:
    """Adapter from the library's on_progress(stage, done, total) callback to rich."""

    def __init__(self, bar):
        self.bar = bar
        self.tasks: dict[str, int] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage not in self.tasks:
            self.tasks[stage] = self.bar.add_task(stage, total=total)
        self.bar.update(self.tasks[stage], completed=done, total=total)


@app.command("react")
@handle_errors
def react(
    root: Path = typer.Option(..., "--root", help="REACT 2023/2024 root (holds train.csv, val.csv, test.csv and the split folders)."),
    work: Path = typer.Option(..., "--work", help="Work directory: manifests, feature store, reports are written here."),
    frames: int = typer.Option(751, help="Frames per clip in the release (751 for REACT 2023/24)."),
    fps: float = typer.Option(25.0, help="Frame rate of the clips."),
    splits: str = typer.Option("train,val,test", help="Comma-separated splits to read."),
    mirror: bool = typer.Option(True, help="Mirror a split (roles swapped as items n..2n-1) when no neighbour matrix fixes its size."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Drop bad items (listed in reports/prepare-react.json) instead of failing."),
    require_media: bool = typer.Option(True, help="Require each clip's video and audio file to exist."),
) -> None:
    """Read the REACT clip layout: clips, mirrored items, neighbour matrices, shipped emotion/3DMM features."""
    from reactcli.corpora.react import ReactConfig, prepare_react

    cfg = ReactConfig(frames=frames, fps=fps, splits=tuple(s.strip() for s in splits.split(",") if s.strip()),
                      mirror=mirror, skip_bad=skip_bad, require_media=require_media)
    with progress() as bar:
        summary = prepare_react(root, work, cfg, on_progress=_Bar(bar))
    table = Table(title=f"prepare react: {root}")
    for col in ("split", "pairs", "items", "mirrored", "appropriate/item (mean, min, max)"):
        table.add_column(col)
    for split, n in summary.pairs.items():
        a = summary.appropriate.get(split)
        table.add_row(split, str(n), str(summary.items[split]), str(summary.mirrored[split]),
                      f"{a['mean']:.2f}, {a['min']}, {a['max']}" if a else "-")
    out.print(table)
    out.print(f"clips: {summary.clips}  imported: {summary.imported}  already stored: {summary.already_stored}  "
              f"skipped items: {len(summary.skipped_items)}  problems: {len(summary.errors)}")
    if summary.skipped_items:
        out.print(f"[yellow]skipped {len(summary.skipped_items)} bad items; see {summary.report_path}[/]")
    out.print(f"report: {summary.report_path}")
