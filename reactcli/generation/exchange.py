"""Reactions in and out of a work directory, in the REACT challenge's array conventions.

The authors' evaluators (the challenge's ``evaluate.py`` and REGNN's ``evaluation.py``, the
``metric/`` package) take the split's items in the challenge's mirrored order (the pairs as the
split CSV lists them, then the same pairs with roles swapped) as stacked arrays:

    predictions (N, K, 750, D), real listeners (N, 750, D), speakers (N, 750, D), and the
    appropriateness matrix (N, N) that they read as ``neighbour_emotion_<split>.npy``.

:func:`export_run` writes a stored run that way (a folder anyone can hand to those evaluators,
or to ``reactcli evaluate arrays``); :func:`import_predictions` takes someone else's (N, K, T, D)
predictions into a run, so that ``evaluate run``, the report and ``render`` work on them.
reactcli's own item order *is* the challenge's (``manifests/pairs.jsonl``), so no reordering is
needed either way; ``items.csv`` lists the order with the clip paths.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

import reactcli
from reactcli.errors import ConfigError, InputError
from reactcli.generation.store import (
    check_stored_run,
    finalize_run,
    load_generated,
    manifest_path,
    pending_items,
    write_generated,
)
from reactcli.io import settings_fingerprint, write_json
from reactcli.manifest import GeneratedRecord, read_manifest
from reactcli.manifest.items import load_items
from reactcli.storage.items import real_arrays

__all__ = ["export_run", "import_predictions", "FEATURE_DIMS", "CHALLENGE_FRAMES"]

FEATURE_DIMS = {"emotion": 25, "tdmm": 58}
CHALLENGE_FRAMES = 750
"""Frames the challenge scores (its clips have 751; models and metrics use the first 750)."""


def _sha1(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _run_features(work: Path, run: str, split: str) -> list[str]:
    path = manifest_path(work, run, split)
    if not path.is_file():
        raise InputError(f"{path}: generation run {run!r} for split {split!r} not found or incomplete")
    recs = read_manifest(path, GeneratedRecord)
    return sorted({f for r in recs for f in r.features}, key=lambda f: (f != "emotion", f))


def export_run(work: str | os.PathLike, run: str, split: str, out_dir: str | os.PathLike, *,
               frames: int = CHALLENGE_FRAMES, features: list[str] | None = None) -> dict[str, Any]:
    """Write run ``run`` of ``split`` and the split's real data as the challenge's arrays.

    ``out_dir`` receives, per feature ``F`` the run has (emotion first): ``predictions_F.npy``
    (N, K, frames, D), ``listener_F.npy`` and ``speaker_F.npy`` (N, frames, D); then
    ``neighbour_emotion_<split>.npy`` (N, N, 0/1), ``items.csv`` (index, speaker_path,
    listener_path, mirrored) and ``export.json`` (the run's settings, the shapes and SHA-1 of
    every file). The folder is written whole or not at all. Returns the export record."""
    work, out = Path(work), Path(out_dir)
    if frames < 1:
        raise ConfigError(f"--frames must be >= 1, got {frames}")
    table = load_items(work, split, require_appropriate=True)
    feats = features or _run_features(work, run, split)
    unknown = sorted(set(feats) - set(FEATURE_DIMS))
    if unknown:
        raise ConfigError(f"features {unknown}: the challenge's arrays are emotion (25-d) and tdmm (58-d)")
    if out.exists() and any(out.iterdir()):
        raise InputError(f"{out}: exists and is not empty; choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.export-", dir=out.parent))
    record: dict[str, Any] = {"work": str(work.resolve()), "run": run, "split": split, "frames": frames,
                              "reactcli_version": reactcli.__version__, "files": {}}
    try:
        appropriate = None
        for f in feats:
            P = load_generated(work, run, split, f)
            if P.shape[2] < frames:
                raise InputError(f"run {run!r} has {P.shape[2]} frames per item; the export needs {frames} "
                                 f"(generate with --frames {frames}, or export with --frames {P.shape[2]})")
            L, S, appropriate = real_arrays(work, split, f, frames)
            if L.shape[1] < frames:
                raise InputError(f"split {split!r}: the stored {f} clips have {L.shape[1]} frames, fewer than {frames}")
            for name, arr in ((f"predictions_{f}", P[:, :, :frames]), (f"listener_{f}", L), (f"speaker_{f}", S)):
                np.save(tmp / f"{name}.npy", np.ascontiguousarray(arr, dtype=np.float32))
        np.save(tmp / f"neighbour_emotion_{split}.npy", np.asarray(appropriate, dtype=np.uint8))
        with open(tmp / "items.csv", "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["index", "speaker_path", "listener_path", "mirrored"])
            for p in table.pairs:
                w.writerow([p.index, p.speaker, p.listener, int(p.mirrored)])
        settings = work / "runs" / run / f"generate-{split}.json"
        if settings.is_file():
            record["generation"] = json.loads(settings.read_text(encoding="utf-8"))
        for path in sorted(tmp.iterdir()):
            entry: dict[str, Any] = {"sha1": _sha1(path)}
            if path.suffix == ".npy":
                arr = np.load(path, mmap_mode="r")
                entry.update(shape=list(arr.shape), dtype=str(arr.dtype))
            record["files"][path.name] = entry
        write_json(tmp / "export.json", record)
        if out.exists():
            out.rmdir()  # empty (checked above)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return {**record, "path": str(out)}


def import_predictions(work: str | os.PathLike, run: str, split: str, predictions: dict[str, str | os.PathLike], *,
                       frames: int | None = None, source: str = "", overwrite: bool = False) -> Path:
    """Store someone else's predictions ``{feature: path to (N, K, T, D) .npy}`` as run ``run``.

    N must be the split's item count (in the challenge's order), D the feature's width, every
    value finite; ``frames`` keeps the first frames only (e.g. 750 of 751). The run records the
    files' SHA-1, so re-importing the same files resumes and other files need ``overwrite``.
    Returns the run's manifest path."""
    work = Path(work)
    table = load_items(work, split)
    if not predictions:
        raise ConfigError("give at least one predictions file")
    arrays: dict[str, np.ndarray] = {}
    digests: dict[str, str] = {}
    for f, path in predictions.items():
        path = Path(path)
        if f not in FEATURE_DIMS:
            raise ConfigError(f"--feature {f!r}: expected one of {sorted(FEATURE_DIMS)}")
        if not path.is_file():
            raise InputError(f"{path}: predictions file not found (expected a .npy array)")
        try:
            arr = np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise InputError(f"{path}: cannot read the predictions as a .npy array ({exc})") from None
        n, d = table.n, FEATURE_DIMS[f]
        if arr.ndim != 4 or arr.shape[0] != n or arr.shape[3] != d:
            raise InputError(f"{path}: predictions have shape {arr.shape}, expected ({n}, K, T, {d}) for the "
                             f"{n} items of split {split!r} ({f})")
        if frames is not None:
            if arr.shape[2] < frames:
                raise InputError(f"{path}: {arr.shape[2]} frames per item, fewer than --frames {frames}")
            arr = arr[:, :, :frames]
        if not np.isfinite(arr).all():
            bad = np.argwhere(~np.isfinite(arr))[0]
            raise InputError(f"{path}: predictions contain NaN/inf (first at item {bad[0]}, sample {bad[1]}, "
                             f"frame {bad[2]}, dim {bad[3]})")
        arrays[f] = arr.astype(np.float32)
        digests[f] = _sha1(path)
    ks = {a.shape[1] for a in arrays.values()}
    ts = {a.shape[2] for a in arrays.values()}
    if len(ks) > 1 or len(ts) > 1:
        raise InputError(f"the features' predictions differ in K or T: {({f: a.shape for f, a in arrays.items()})}")
    k = ks.pop()
    settings = {"imported": digests, "frames": frames}
    meta = {"model": "imported", "source": source or {f: str(p) for f, p in predictions.items()},
            "sha1": digests, "fingerprint": settings_fingerprint(settings)}
    check_stored_run(work, run, split, meta["fingerprint"], overwrite=overwrite)
    if not pending_items(work, run, split, table, list(arrays)):  # the same files again: nothing to store
        return finalize_run(work, run, split, table, num_samples=k, seed=0, meta=meta, features=list(arrays))
    return write_generated(work, run, split, table, [(list(range(table.n)), arrays)], num_samples=k, seed=0, meta=meta)
