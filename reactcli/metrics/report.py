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
        return f"{value * mult:.3g}"
    return str(value)


def metrics_table(metrics_by_name: dict[str, dict], title: str = "REACT metrics") -> Table:
    """A rich table with one row per model/baseline and one column per metric."""
    # Compact so that a whole row fits an 80-column terminal: two-line headers, 3 significant
    # digits, and a column that is n/a for every row (FRRea without Inception weights) is left
    # out; names and numbers are never cut. Every value is in the JSON.
    cols = [c for c in COLUMNS if any(m.get(c[0]) is not None for m in metrics_by_name.values())]
    table = Table(title=title, padding=(0, 1), collapse_padding=True,
                  caption="ΣK: official sum over the K samples; /K: per sample; diversity metrics x100"
                          + ("" if len(cols) == len(COLUMNS) else "; FRRea n/a (no Inception weights)"))
    table.add_column("model", style="bold", no_wrap=True)
    for _, header, _ in cols:
        name, _, rest = header.partition(" ")
        rest = rest.replace("(sum K)", "ΣK").replace("(/K)", "/K").replace("(FID)", "FID").replace("x100", "")
        table.add_column(f"{name}\n{' '.join(rest.split())}", justify="right", no_wrap=True)
    for name, m in metrics_by_name.items():
        table.add_row(name, *(_fmt(m.get(key), mult) for key, _, mult in cols))
    return table


def naturalness_table(metrics_by_name: dict[str, dict]) -> Table | None:
    """A rich table of the naturalness ratios (:mod:`reactcli.metrics.naturalness`), one row per
    run that has them; None if none has."""
    from reactcli.metrics.naturalness import HEADLINE

    rows = {n: m for n, m in metrics_by_name.items() if isinstance(m.get("naturalness"), dict)}
    if not rows:
        return None
    table = Table(title="Naturalness (ratios to the real listeners; 1 = as real)", padding=(0, 1),
                  collapse_padding=True,
                  caption="seam: worst window-edge jump at any period 8-75 / real (at period@phase); "
                          "motion, accel, jerk: 1st-3rd differences / real; var 2s: variance inside "
                          "2 s windows / real. Dims 15:25 (emotion).")
    table.add_column("model", style="bold", no_wrap=True)
    for _, header, _ in HEADLINE:
        table.add_column(header, justify="right", no_wrap=True)
    for name, m in rows.items():
        nat = m["naturalness"]
        cells = [_fmt(nat.get(key), 1.0) for key, _, _ in HEADLINE]
        if nat.get("seam_period"):
            cells[0] += f" ({nat['seam_period']}@{nat['seam_phase']})"
        table.add_row(name, *cells)
    return table


def print_table(metrics_by_name: dict[str, dict], console, title: str = "REACT metrics") -> None:
    """Print :func:`metrics_table` to a rich ``console`` (the CLI passes its stdout console), then
    :func:`naturalness_table` when the results have naturalness numbers."""
    console.print(metrics_table(metrics_by_name, title=title))
    nat = naturalness_table(metrics_by_name)
    if nat is not None:
        console.print(nat)
