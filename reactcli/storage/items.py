"""Arrays of a split's items read from the feature store, stacked in item order."""

from __future__ import annotations

import os

import numpy as np

from reactcli.errors import InputError
from reactcli.manifest.items import load_items
from reactcli.storage.store import FeatureStore

__all__ = ["real_arrays", "stack_clips"]


def stack_clips(store: FeatureStore, clips: list[str], feature: str, frames: int) -> np.ndarray:
    """(N, T, D) float32 of ``feature`` of ``clips``, each cut to its first ``frames`` frames
    (T = ``frames``, or the clips' common length when they are all shorter). A clip whose length
    or width differs from the first clip's is an :class:`InputError` naming both (never a ragged
    stack or a traceback)."""
    out: list[np.ndarray] = []
    for c in clips:
        a = np.asarray(store.read(c, feature), np.float32)
        if a.ndim != 2:
            raise InputError(f"feature {feature!r} of clip {c!r} has shape {a.shape}, expected (frames, dims)")
        a = a[:frames]
        if out and a.shape != out[0].shape:
            raise InputError(f"feature {feature!r} of clip {c!r} gives {a.shape} for {frames} frames, but clip "
                             f"{clips[0]!r} gives {out[0].shape}: the clips differ in length or width")
        out.append(a)
    return np.stack(out)


def real_arrays(work: str | os.PathLike, split: str, feature: str, frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """L (N,T,D) real listeners, S (N,T,D) speakers, A (N,N) of a split, in item order."""
    table = load_items(work, split, require_appropriate=True)
    store = FeatureStore(work)
    L = stack_clips(store, [p.listener for p in table.pairs], feature, frames)
    S = stack_clips(store, [p.speaker for p in table.pairs], feature, frames)
    return L, S, table.appropriate
