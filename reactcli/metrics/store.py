"""Scoring a generation run stored in a work directory (``reactcli evaluate run``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from reactcli.errors import InputError
from reactcli.generation.store import load_generated
from reactcli.metrics.core import evaluate_arrays
from reactcli.metrics.report import write_report
from reactcli.storage.items import real_arrays


def protocol(feature: str) -> str:
    """The metrics' feature protocol of a stored feature: ``emotion`` (the challenge's weighted
    three-group DTW) or ``tdmm`` (any other feature: one DTW over all dims)."""
    return "emotion" if feature == "emotion" else "tdmm"


def run_arrays(work: str | os.PathLike, run: str, split: str, feature: str,
               frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A stored run's reactions P (N,K,T,D) with the split's real L, S (N,T,D) and A (N,N), all cut
    to T = min(frames, the run's length); raises InputError naming the run when its item count is
    not the split's."""
    P = load_generated(work, run, split, feature)
    T = min(frames, P.shape[2])
    L, S, A = real_arrays(work, split, feature, T)
    if P.shape[0] != L.shape[0]:
        raise InputError(f"run {run!r} has {P.shape[0]} items but split {split!r} has {L.shape[0]}")
    return P[:, :, :T], L, S, A


def evaluate_run(
    work: str | os.PathLike,
    run: str,
    split: str,
    *,
    feature: str = "emotion",
    frames: int = 750,
    compat: str = "default",
    out: str | os.PathLike | None = None,
    fid: Any = None,
) -> dict:
    """Score the run's (N,K,T,D) reactions against the split's real listeners and appropriateness."""
    P, L, S, A = run_arrays(work, run, split, feature, frames)
    res = evaluate_arrays(P, L, S, A, feature=protocol(feature), compat=compat, fid=fid)
    res.update(run=run, split=split, work=str(work), feature_name=feature)
    if isinstance(fid, dict):
        res["FRRea_detail"] = fid
    path = Path(out) if out else Path(work) / "metrics" / f"{run}-{split}.json"
    write_report(res, path)
    res["path"] = str(path)
    return res
