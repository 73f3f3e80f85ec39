"""Helpers shared by the corpus readers: validated loading of shipped per-frame features."""

from __future__ import annotations

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


#: the challenge's Emotion CSV columns, in the order of the 25-d feature (data.md)
EMOTION_COLUMNS = ("AU1", "AU2", "AU4", "AU6", "AU7", "AU9", "AU10", "AU12", "AU14", "AU15", "AU17", "AU23", "AU24",
                   "AU25", "AU26", "valence", "arousal", "Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust",
                   "Anger", "Contempt")


def load_emotion_csv(path: str | os.PathLike, frames: int | None = None) -> np.ndarray:
    """Read a REACT emotion CSV (header row + one row per frame x 25 columns) with pandas.

    When the header names the challenge's columns (:data:`EMOTION_COLUMNS`, any order), the
    columns are taken by name, so a file with valence and arousal swapped is read right; a header
    that names some of them but not all is an error listing the missing ones. A header of other
    names (``c0..c24``, numbers) is read by position. Some releases prepend an unnamed index
    column: a 26-column file whose first column counts 0, 1, 2, ... is accepted and the index
    dropped. Raises ``InputError`` naming the file for a wrong column count, a wrong frame count
    (when ``frames`` is given), unparsable cells or NaNs.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: emotion CSV not found")
    try:
        df = pd.read_csv(path, header=0, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: emotion CSV is empty (expected a header row and frame rows)") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, ValueError) as exc:
        raise InputError(f"{path}: cannot read emotion CSV ({' '.join(str(exc).split())})") from exc
    if len(df) == 0:
        raise InputError(f"{path}: emotion CSV is empty (expected a header row and frame rows)")
    names = [str(c).strip() for c in df.columns]
    named = [c for c in EMOTION_COLUMNS if c in names]
    if named:
        missing = [c for c in EMOTION_COLUMNS if c not in names]
        if missing:
            raise InputError(f"{path}: emotion CSV header names {len(named)} of the challenge's 25 columns but lacks "
                             f"{missing} (expected {','.join(EMOTION_COLUMNS)})")
        df.columns = names
        df = df[list(EMOTION_COLUMNS)]
    try:
        arr = df.to_numpy(dtype=np.float64)
    except (ValueError, TypeError) as exc:
        raise InputError(f"{path}: emotion CSV has non-numeric or ragged rows ({exc})") from exc
    if not named and arr.ndim == 2 and arr.shape[1] == EMOTION_DIM + 1 and np.array_equal(arr[:, 0], np.arange(len(arr))):
        arr = arr[:, 1:]
    if arr.ndim != 2 or arr.shape[1] != EMOTION_DIM:
        raise InputError(f"{path}: emotion CSV has shape {arr.shape}, expected (frames, {EMOTION_DIM})")
    if frames is not None and arr.shape[0] != frames:
        raise InputError(f"{path}: emotion CSV has {arr.shape[0]} frames, expected {frames}")
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise InputError(f"{path}: emotion CSV has NaN/inf (first at frame {bad[0]}, column {bad[1]}) (an empty cell reads as NaN)")
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
