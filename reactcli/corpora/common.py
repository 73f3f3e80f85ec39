"""Helpers shared by the corpus readers: validated loading of shipped per-frame features."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reactcli.errors import InputError

EMOTION_DIM = 25
TDMM_DIM = 58


def sidecar_settings(fps: float = 25.0, max_pad_frames: int = 1) -> str:
    """Settings fingerprint of an imported sidecar array (emotion, tdmm): the same whether
    ``prepare react`` or the ``precomputed`` extractor stores it (a test checks they agree)."""
    from reactcli.io import settings_fingerprint

    return settings_fingerprint({"extractor": "precomputed",
                                 "options": {"fps": float(fps), "max_pad_frames": int(max_pad_frames)}})


def load_emotion_csv(path: str | os.PathLike, frames: int | None = None) -> np.ndarray:
    """Read a REACT emotion CSV (header row + one row per frame x 25 columns).

    Some releases prepend an unnamed index column: a 26-column file whose first column counts
    0, 1, 2, ... is accepted and the index dropped. Raises ``InputError`` naming the file for a
    wrong column count, a wrong frame count (when ``frames`` is given), unparsable cells or NaNs.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: emotion CSV not found")
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read emotion CSV ({exc})") from exc
    if len(rows) < 2:
        raise InputError(f"{path}: emotion CSV is empty (expected a header row and frame rows)")
    body = [r for r in rows[1:] if r]
    try:
        arr = np.asarray(body, dtype=np.float64)
    except ValueError as exc:
        raise InputError(f"{path}: emotion CSV has non-numeric or ragged rows ({exc})") from exc
    if arr.ndim == 2 and arr.shape[1] == EMOTION_DIM + 1 and np.array_equal(arr[:, 0], np.arange(len(arr))):
        arr = arr[:, 1:]
    if arr.ndim != 2 or arr.shape[1] != EMOTION_DIM:
        raise InputError(f"{path}: emotion CSV has shape {arr.shape}, expected (frames, {EMOTION_DIM})")
    if frames is not None and arr.shape[0] != frames:
        raise InputError(f"{path}: emotion CSV has {arr.shape[0]} frames, expected {frames}")
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise InputError(f"{path}: emotion CSV has NaN/inf (first at frame {bad[0]}, column {bad[1]})")
    return arr.astype(np.float32)


def load_tdmm_npy(path: str | os.PathLike, frames: int | None = None, dims: int = TDMM_DIM) -> np.ndarray:
    """Read a 3DMM coefficient file: (frames, 58) or (1, frames, 58) float."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: 3DMM .npy not found")
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(f"{path}: cannot read 3DMM .npy ({exc})") from exc
    if arr.ndim == 3 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 2 or arr.shape[1] != dims:
        raise InputError(f"{path}: 3DMM array has shape {arr.shape}, expected (frames, {dims}) or (1, frames, {dims})")
    if frames is not None and arr.shape[0] != frames:
        raise InputError(f"{path}: 3DMM array has {arr.shape[0]} frames, expected {frames}")
    if not np.issubdtype(arr.dtype, np.number):
        raise InputError(f"{path}: 3DMM array has dtype {arr.dtype}, expected float")
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise InputError(f"{path}: 3DMM array has NaN/inf (first at frame {bad[0]}, dim {bad[1]})")
    return arr.astype(np.float32)


@dataclass
class ValidationReport:
    """What a reader found wrong, item by item (written to ``reports/`` with ``--skip-bad``)."""

    errors: list[str] = field(default_factory=list)
    skipped_items: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, message: str) -> None:
        self.errors.append(message)

    @property
    def ok(self) -> bool:
        return not self.errors
