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
from reactcli.storage import FeatureStore
from reactcli.training.data import load_items


def real_arrays(work: str | os.PathLike, split: str, feature: str, frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """L (N,T,D) real listeners, S (N,T,D) speakers, A (N,N) of a split, in item order."""
    table = load_items(work, split, require_appropriate=True)
    store = FeatureStore(work)
    L = np.stack([np.asarray(store.read(p.listener, feature), np.float32)[:frames] for p in table.pairs])
    S = np.stack([np.asarray(store.read(p.speaker, feature), np.float32)[:frames] for p in table.pairs])
    return L, S, table.appropriate


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
    P = load_generated(work, run, split, feature)
    T = min(frames, P.shape[2])
    L, S, A = real_arrays(work, split, feature, T)
    if P.shape[0] != L.shape[0]:
        raise InputError(f"run {run!r} has {P.shape[0]} items but split {split!r} has {L.shape[0]}")
    res = evaluate_arrays(P[:, :, :T], L, S, A, feature="emotion" if feature == "emotion" else "tdmm", compat=compat, fid=fid)
    res.update(run=run, split=split, work=str(work), feature_name=feature)
    path = Path(out) if out else Path(work) / "metrics" / f"{run}-{split}.json"
    write_report(res, path)
    res["path"] = str(path)
    return res
