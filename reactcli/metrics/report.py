"""Writing and printing evaluation results (shared by ``reactcli evaluate`` commands)."""

from __future__ import annotations

import json

from reactcli.io import atomic_open
import math
from pathlib import Path
from typing import Any

from rich.table import Table

#: Table columns: (result key, header, multiplier). Diversity metrics are printed x100 as papers do.
COLUMNS: tuple[tuple[str, str, float], ...] = (
    ("FRCorr", "FRCorr (sum K) ↑", 1.0),
    ("FRCorr_per_sample", "FRCorr (/K) ↑", 1.0),
    ("FRdist", "FRdist (sum K) ↓", 1.0),
    ("FRdist_per_sample", "FRdist (/K) ↓", 1.0),
    ("FRDiv", "FRDiv x100 ↑", 100.0),
    ("FRDvs", "FRDvs x100 ↑", 100.0),
    ("FRVar", "FRVar x100 ↑", 100.0),
    ("FRSyn", "FRSyn ↓", 1.0),
    ("FRRea", "FRRea (FID) ↓", 1.0),
)


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"refusing to write a non-finite metric value {value}")
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return _jsonable(value.item())
    return value


def write_report(metrics: dict, path: str | Path) -> Path:
    """Write ``metrics`` as indented JSON atomically (temp file in the same dir, then os.replace)."""
    path = Path(path)
    text = json.dumps(_jsonable(metrics), indent=2, sort_keys=False) + "\n"
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    return path


def _fmt(value: Any, mult: float) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, (int, float)):
        return f"{value * mult:.4g}" if mult != 1.0 else f"{value:.4g}"
    return str(value)


def metrics_table(metrics_by_name: dict[str, dict], title: str = "REACT metrics") -> Table:
    """A rich table with one row per model/baseline and one column per metric."""
    table = Table(title=title)
    table.add_column("model", style="bold")
    for _, header, _ in COLUMNS:
        table.add_column(header, justify="right")
    for name, m in metrics_by_name.items():
        table.add_row(name, *(_fmt(m.get(key), mult) for key, _, mult in COLUMNS))
    return table


def print_table(metrics_by_name: dict[str, dict], title: str = "REACT metrics", console=None) -> None:
    """Print :func:`metrics_table` to the CLI's stdout console (``reactcli.cli.common.out``)."""
    if console is None:
        from reactcli.cli.common import out as console
    console.print(metrics_table(metrics_by_name, title=title))
