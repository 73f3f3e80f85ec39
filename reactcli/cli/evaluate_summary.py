"""``reactcli evaluate summary``: the table of every run scored in a work directory."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal, Optional

import typer

from reactcli.cli.common import handle_errors, out


@handle_errors
def summary_command(
    work: Path = typer.Option(..., "--work", help="Work directory (its runs' metrics are in WORK/metrics)."),
    metrics_dir: Optional[Path] = typer.Option(None, "--metrics-dir", help="Folder of <run>-<split>.json files (default WORK/metrics; e.g. the folder given to `evaluate run --out-dir`)."),
    out_path: Optional[Path] = typer.Option(None, "--out", help="CSV to write (default METRICS_DIR/summary.csv; a .parquet is written beside it when pyarrow is installed)."),
    fmt: Optional[Literal["table", "csv"]] = typer.Option(None, "--format", help="What to print: table (rich, for a terminal) or csv (the file's text). Default: table on a terminal, csv when piped, so a redirected output never depends on the terminal's width."),
) -> None:
    """Write and print one row per stored run, one column per metric (loads with pandas.read_csv)."""
    from rich.table import Table

    from reactcli.io import check_output
    from reactcli.metrics.tables import SUMMARY_NAME, summary_frame, write_table

    if out_path is not None:
        check_output(out_path, "--out")
    folder = metrics_dir or work / "metrics"
    df = summary_frame(folder)
    path = write_table(df, out_path or folder / SUMMARY_NAME)
    if (fmt or ("table" if out.is_terminal else "csv")) == "csv":
        sys.stdout.write(df.to_csv(index=False))
        sys.stdout.flush()
        return
    table = Table(title=f"{len(df)} run(s) in {folder}", padding=(0, 1), collapse_padding=True)
    for col in df.columns:
        table.add_column(str(col), justify="left" if df[col].dtype == object else "right", no_wrap=col == "run")
    for row in df.itertuples(index=False):
        table.add_row(*("" if v != v or v is None else f"{v:.4g}" if isinstance(v, float) else str(v) for v in row))
    out.print(table)
    typer.echo(f"wrote {path}", err=True)
