"""Metric tables that load into pandas: the per-item table of a run and the summary of all runs.

One naming rule for every writer (``reactcli evaluate run``, ``evaluate personal``, the Makefiles
and the demo), in a metrics folder (default ``WORK/metrics``):

* ``<run>-<split>.json``           the metrics of a run (:func:`metrics_path`)
* ``<run>-<split>-items.csv``      one row per item: the item, its clips and each metric's per-item
  terms (:func:`items_path`, :func:`items_frame`)
* ``<run>-<split>-personal.json``  the same-listener metrics (:mod:`reactcli.metrics.personal`)
* ``summary.csv``                  one row per stored run, one column per metric (:func:`summary_frame`);
  also ``summary.parquet`` when pyarrow is installed

Files are plain CSV written with pandas (full precision, no terminal involved), atomically.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from reactcli.errors import InputError
from reactcli.io import atomic_path

__all__ = ["METRIC_ORDER", "INFO_COLUMNS", "metrics_path", "items_path", "personal_path", "items_frame",
           "summary_frame", "write_table", "read_metrics_dir", "SUMMARY_NAME"]

SUMMARY_NAME = "summary.csv"
#: The challenge metrics, in the order the summary shows them; any other numeric key a metrics
#: JSON holds (personal_*, new metrics) follows in alphabetical order.
METRIC_ORDER = ("FRCorr", "FRCorr_per_sample", "FRdist", "FRdist_per_sample", "FRDiv", "FRDvs", "FRVar",
                "FRSyn", "FRRea")
#: Columns that describe a run rather than score it (the summary puts them first).
INFO_COLUMNS = ("run", "split", "feature", "feature_name", "compat", "N", "K", "T", "D", "seed",
                "checkpoint_sha256", "reactcli_version")
#: Keys of a metrics JSON that are neither a metric nor a run description.
_SKIP = {"work", "path", "protocol", "timings_s", "FRRea_detail", "generation", "note", "FRCorr_note",
         "FRRea_note", "FRSyn_note", "FRSyn_undefined_samples"}


def metrics_path(folder: str | os.PathLike, run: str, split: str) -> Path:
    return Path(folder) / f"{run}-{split}.json"


def items_path(folder: str | os.PathLike, run: str, split: str) -> Path:
    return Path(folder) / f"{run}-{split}-items.csv"


def personal_path(folder: str | os.PathLike, run: str, split: str) -> Path:
    return Path(folder) / f"{run}-{split}-personal.json"


def items_frame(items: dict[str, np.ndarray], *, index: Iterable[int] | None = None,
                columns: dict[str, Iterable[Any]] | None = None) -> pd.DataFrame:
    """One row per item: ``item`` (its index in the split), the ``columns`` given (e.g. the
    speaker and listener clip ids) and one column per metric's per-item terms (NaN: undefined)."""
    n = len(next(iter(items.values()))) if items else 0
    df = pd.DataFrame({"item": list(index) if index is not None else list(range(n))})
    for key, values in (columns or {}).items():
        df[key] = list(values)
    for key, values in items.items():
        df[key] = np.asarray(values, dtype=np.float64)
    return df


def write_table(df: pd.DataFrame, path: str | os.PathLike, *, parquet: bool = True) -> Path:
    """Write ``df`` as CSV atomically (``float_format`` unset: full precision, round-trips) and,
    with ``parquet`` and pyarrow installed, a ``.parquet`` beside it."""
    path = Path(path)
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)
    if parquet:
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            return path
        with atomic_path(path.with_suffix(".parquet")) as tmp:
            df.to_parquet(tmp, index=False)
    return path


def _flat(prefix: str, value: Any, out: dict[str, Any]) -> None:
    """Numeric leaves of a metrics JSON value (nested dicts as ``a.b``), None kept (n/a)."""
    if isinstance(value, bool):
        return
    if value is None or isinstance(value, (int, float)):
        out[prefix] = value
    elif isinstance(value, dict):
        for k, v in value.items():
            _flat(f"{prefix}.{k}", v, out)


def _row(res: dict) -> dict[str, Any]:
    row: dict[str, Any] = {}
    gen = res.get("generation") or {}
    for key in INFO_COLUMNS:
        value = res.get(key, gen.get(key) if isinstance(gen, dict) else None)
        if value is not None:
            row[key] = value
    for key, value in res.items():
        if key in _SKIP or key in INFO_COLUMNS:
            continue
        _flat(key, value, row)
    return row


def read_metrics_dir(folder: str | os.PathLike) -> list[dict[str, Any]]:
    """The stored runs of a metrics folder: one dict per ``<run>-<split>.json`` (a JSON with
    ``run`` and ``split`` keys), with the numeric keys of its ``-personal.json`` merged in."""
    folder = Path(folder)
    rows: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.json")):
        if path.name.endswith("-personal.json"):
            continue
        try:
            res = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"{path}: not a readable metrics JSON ({exc})") from None
        if not isinstance(res, dict) or "run" not in res or "split" not in res or "FRCorr" not in res and "FRdist" not in res:
            continue  # a comparison, a selection, ...
        row = _row(res)
        pers = personal_path(folder, res["run"], res["split"])
        if pers.is_file():
            try:
                extra = json.loads(pers.read_text(encoding="utf-8"))
            except json.JSONDecodeError as exc:
                raise InputError(f"{pers}: not a readable metrics JSON ({exc})") from None
            for key, value in extra.items():
                if key.startswith(("personal_", "N_")):
                    _flat(key, value, row)
        rows.append(row)
    return rows


def summary_frame(folder: str | os.PathLike) -> pd.DataFrame:
    """One row per stored run of a metrics folder, the run's description first (:data:`INFO_COLUMNS`),
    then one column per metric: the challenge's in :data:`METRIC_ORDER`, then any other numeric
    key found (personal metrics, metrics added later), alphabetically. Empty cells: not computed."""
    rows = read_metrics_dir(folder)
    if not rows:
        raise InputError(f"{folder}: no metrics JSON of a run (<run>-<split>.json from `reactcli evaluate run`)")
    keys = {k for r in rows for k in r}
    info = [k for k in INFO_COLUMNS if k in keys]
    known = [k for k in METRIC_ORDER if k in keys]
    rest = sorted(keys - set(info) - set(known))
    rows.sort(key=lambda r: (str(r.get("run")), str(r.get("split"))))
    df = pd.DataFrame(rows, columns=info + known + rest)
    for col in known + rest:  # None -> NaN: a numeric column whatever the runs hold
        df[col] = pd.to_numeric(df[col], errors="coerce")
    return df
