"""Scoring a generation run stored in a work directory (``reactcli evaluate run``)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from reactcli.errors import InputError
from reactcli.generation.store import load_generated
from reactcli.io import file_lock
from reactcli.manifest.items import load_items
from reactcli.metrics.core import evaluate_with_items
from reactcli.metrics.report import write_report
from reactcli.metrics.tables import SUMMARY_NAME, items_frame, metrics_path, summary_frame, write_table
from reactcli.models.checkpoint import sha1_of, sha256_of
from reactcli.storage.items import real_arrays

log = logging.getLogger(__name__)


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
    if T < frames:  # the protocol option against the data: say so, the JSON records T
        log.warning("run %r has %d frames per reaction: scored on %d, not the %d of --frames", run, P.shape[2], T, frames)
    L, S, A = real_arrays(work, split, feature, T)
    if P.shape[0] != L.shape[0]:
        raise InputError(f"run {run!r} has {P.shape[0]} items but split {split!r} has {L.shape[0]}")
    return P[:, :, :T], L, S, A


def generation_record(work: str | os.PathLike, run: str, split: str) -> dict[str, Any] | None:
    """What made a stored run, for its metrics JSON: the checkpoint(s) and their SHA-256, the
    generation seed and options and the reactcli version that generated it (from
    ``runs/<run>/generate-<split>.json``; None for a run without one, e.g. imported arrays).

    Runs generated before the SHA-256 was recorded get it from the checkpoint file, but only when
    the file's SHA-1 is still the recorded one (a retrained checkpoint is another file)."""
    path = Path(work) / "runs" / run / f"generate-{split}.json"
    if not path.is_file():
        return None
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: generation settings are not valid JSON ({exc})") from None
    ckpt = settings.get("checkpoint")
    sha256 = settings.get("checkpoint_sha256")
    if sha256 is None and ckpt and Path(ckpt).is_file() and sha1_of(ckpt) == settings.get("checkpoint_sha1"):
        sha256 = sha256_of(ckpt)
    return {
        "model": settings.get("model"),
        "checkpoint": ckpt,
        "checkpoint_sha256": sha256,
        "checkpoint_sha256s": settings.get("checkpoint_sha256s"),
        "seed": settings.get("seed"),
        "num_samples": settings.get("num_samples"),
        "options": settings.get("config") or {k: v for k, v in settings.items()
                                              if isinstance(v, (int, float, str, bool)) and k not in ("run", "split")},
        "fingerprint": settings.get("fingerprint"),
        "reactcli_version": settings.get("reactcli_version"),
        "settings": str(path),
    }


def evaluate_run(
    work: str | os.PathLike,
    run: str,
    split: str,
    *,
    feature: str = "emotion",
    frames: int = 750,
    compat: str = "default",
    out: str | os.PathLike | None = None,
    out_dir: str | os.PathLike | None = None,
    fid: Any = None,
    summary: bool = True,
) -> dict:
    """Score the run's (N,K,T,D) reactions against the split's real listeners and appropriateness.

    Writes, in ``out_dir`` (default ``WORK/metrics``; names: :mod:`reactcli.metrics.tables`),
    ``<run>-<split>.json`` (or ``out``), ``<run>-<split>-items.csv`` beside it (one row per item
    with each metric's per-item terms) and, with ``summary``, refreshes the folder's ``summary.csv``.
    The JSON records what made the run (:func:`generation_record`) and the reactcli version.
    """
    P, L, S, A = run_arrays(work, run, split, feature, frames)
    res, items = evaluate_with_items(P, L, S, A, feature=protocol(feature), compat=compat, fid=fid)
    res.update(run=run, split=split, work=str(work), feature_name=feature)
    gen = generation_record(work, run, split)
    res["generation"] = gen
    res["seed"] = gen["seed"] if gen else None
    res["checkpoint_sha256"] = gen["checkpoint_sha256"] if gen else None
    if isinstance(fid, dict):
        res["FRRea_detail"] = fid
    folder = Path(out_dir) if out_dir else Path(work) / "metrics"
    path = Path(out) if out else metrics_path(folder, run, split)
    table = load_items(work, split)
    frame = items_frame(items, columns={"item_id": [p.id for p in table.pairs],
                                        "speaker": [p.speaker for p in table.pairs],
                                        "listener": [p.listener for p in table.pairs]})
    items_file = path.with_name(path.stem + "-items.csv")
    write_table(frame, items_file, parquet=False)
    res["items_table"] = items_file.name
    write_report(res, path)
    res["path"] = str(path)
    res["items_path"] = str(items_file)
    if summary:
        res["summary_path"] = str(write_summary(path.parent))
    return res


def write_summary(folder: str | os.PathLike) -> Path:
    """Write ``summary.csv`` (and ``summary.parquet`` with pyarrow) of every run stored in a metrics
    folder (:func:`reactcli.metrics.tables.summary_frame`); a lock keeps concurrent evaluations
    (``make -j``) from dropping each other's rows."""
    folder = Path(folder)
    target = folder / SUMMARY_NAME
    with file_lock(target):
        return write_table(summary_frame(folder), target)
