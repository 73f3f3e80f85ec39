"""Import the per-clip feature files that come with a REACT corpus.

* ``emotion``: ``Emotion/.../<clip>.csv``, a header row then one row per frame of 25 numbers
  (order in :mod:`reactcli.features.graphau`); read as the challenge loader does (drop the
  header row, keep all 25 columns).
* ``tdmm``: ``3D_FV_files/.../<clip>.npy``, ``(751, 58)`` or ``(1, 751, 58)`` float
  (FaceVerse layout in :mod:`reactcli.features.faceverse`).

Each file must have exactly the expected width; frames beyond ``num_frames`` are dropped and up
to ``max_pad_frames`` missing final frames are filled by repeating the last one. Non-numeric
cells, NaN/inf, wrong widths and too few rows are :class:`InputError` s naming the file (and the
row for NaNs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reactcli.corpora.common import load_emotion_csv, load_tdmm_npy
from reactcli.errors import ConfigError
from reactcli.features.registry import ClipInputs, Extractor, fit_length, register_extractor

#: sidecar kind -> feature width
WIDTHS = {"emotion": 25, "tdmm": 58}


def read_emotion_csv(path: str | Path) -> np.ndarray:
    """A REACT emotion CSV -> ``(T, 25)`` float32 (header row skipped; NaN/inf rejected)."""
    return load_emotion_csv(path)


def read_3dmm_npy(path: str | Path) -> np.ndarray:
    """A REACT 3DMM ``.npy`` -> ``(T, 58)`` float32 (a leading axis of size 1 is dropped)."""
    return load_tdmm_npy(path)


@dataclass
class PrecomputedConfig:
    """Options of the ``precomputed`` extractor."""

    kinds: list[str] = field(default_factory=lambda: ["emotion", "tdmm"])
    """Sidecar kinds to import (each becomes a feature of the same name)."""
    fps: float = 25.0
    """Frame rate of the sidecar files (rows per second)."""
    max_pad_frames: int = 1
    """Missing final rows that may be filled by repeating the last one."""


@register_extractor("precomputed")
class PrecomputedExtractor(Extractor):
    """Validated import of corpus sidecar features (emotion CSV, 3DMM npy)."""

    requires = ("sidecar",)
    Config = PrecomputedConfig
    cfg: PrecomputedConfig

    def __init__(self, **options: object) -> None:
        super().__init__(**options)
        bad = [k for k in self.cfg.kinds if k not in WIDTHS]
        if bad or not self.cfg.kinds:
            raise ConfigError(f"precomputed: unknown kinds {bad}; known: {sorted(WIDTHS)}")

    @property
    def dims(self) -> dict[str, int]:
        return {k: WIDTHS[k] for k in self.cfg.kinds}

    def extract(self, inputs: ClipInputs) -> dict[str, np.ndarray]:
        out = {}
        for kind in self.cfg.kinds:
            p = inputs.need(kind)
            a = read_emotion_csv(p) if kind == "emotion" else read_3dmm_npy(p)
            out[kind] = np.ascontiguousarray(
                fit_length(a, inputs.num_frames, self.cfg.max_pad_frames, f"{inputs.clip_id}: {p}", mode="edge"))
        return out
