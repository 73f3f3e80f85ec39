"""Model selection on a validation split: keep the candidate run with the best metric.

Used to choose among checkpoints (training seeds, epochs, settings) without looking at the test
split: each candidate is generated and scored on ``val`` (``reactcli generate`` + ``evaluate
run``), then :func:`select_run` reads the scores and the checkpoint each run was generated from
(``runs/<run>/generate-<split>.json``) and returns the winner. Lower is better for FRdist, FRVar
is not a quality score, everything else is higher-is-better.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Sequence

from reactcli.errors import ConfigError, InputError
from reactcli.io import write_json
from reactcli.metrics.tables import metrics_path

LOWER_IS_BETTER = {"FRdist", "FRdist_per_sample", "FRRea"}
SELECTABLE = ("FRdist", "FRCorr", "FRDiv", "FRDvs", "FRdist_per_sample", "FRCorr_per_sample", "FRRea")


def _read(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise InputError(f"{path}: {what} not found")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: {what} is not valid JSON ({exc})") from None


def select_run(
    work: str | os.PathLike,
    runs: Sequence[str],
    *,
    split: str = "val",
    metric: str = "FRdist",
    metrics_dir: str | os.PathLike | None = None,
    require_diversity: bool = True,
    out: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """The best of ``runs`` on ``metric`` (scores from ``<metrics_dir>/<run>-<split>.json``,
    default ``metrics_dir``: ``WORK/metrics``). With ``require_diversity`` a run whose FRDiv is 0
    (K identical samples) cannot win. Ties go to the run named first. Writes ``out`` (JSON) if given.
    """
    if metric not in SELECTABLE:
        raise ConfigError(f"--metric {metric!r}: expected one of {', '.join(SELECTABLE)}")
    if not runs:
        raise ConfigError("give at least one --run to choose from")
    work = Path(work)
    sign = 1.0 if metric in LOWER_IS_BETTER else -1.0
    rows = []
    for run in runs:
        path = metrics_path(Path(metrics_dir) if metrics_dir else work / "metrics", run, split)
        scores = _read(path, f"scores of run {run!r} (run `reactcli evaluate run` on split {split!r} first)")
        value = scores.get(metric)
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InputError(f"{path}: no finite {metric} in the scores of run {run!r}")
        settings = _read(work / "runs" / run / f"generate-{split}.json", f"generation settings of run {run!r}")
        if settings.get("split", split) != split:
            raise InputError(f"run {run!r} was generated for split {settings.get('split')!r}, not {split!r}")
        rows.append({"run": run, metric: float(value), "FRDiv": scores.get("FRDiv"), "K": scores.get("K"),
                     "T": scores.get("T"), "feature": scores.get("feature"),
                     "checkpoint": settings.get("checkpoint"), "scores": str(path)})
    for key, what in (("K", "samples per item (K)"), ("T", "frames per item (T)"), ("feature", "feature")):
        if len({r[key] for r in rows}) > 1:  # the official sums over K (and FRdist over T) would decide
            listed = ", ".join(f"{r['run']}: {r[key]}" for r in rows)
            raise InputError(f"candidates differ in {what} ({listed}): their scores are not comparable")
    eligible = [r for r in rows if not require_diversity or (r["FRDiv"] or 0) > 0]
    if not eligible:
        raise InputError(f"no candidate has FRDiv > 0 among {', '.join(runs)} (use --no-require-diversity)")
    best = min(eligible, key=lambda r: sign * r[metric])
    result = {"split": split, "metric": metric, "lower_is_better": sign > 0, "require_diversity": require_diversity,
              "chosen": best["run"], "checkpoint": best["checkpoint"], "value": best[metric], "candidates": rows}
    if out is not None:
        write_json(out, result)
    return result
