"""Arrays of a split's items read from the feature store, stacked in item order."""

from __future__ import annotations

import os

import numpy as np

from reactcli.manifest.items import load_items
from reactcli.storage.store import FeatureStore

__all__ = ["real_arrays"]


def real_arrays(work: str | os.PathLike, split: str, feature: str, frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """L (N,T,D) real listeners, S (N,T,D) speakers, A (N,N) of a split, in item order."""
    table = load_items(work, split, require_appropriate=True)
    store = FeatureStore(work)
    L = np.stack([np.asarray(store.read(p.listener, feature), np.float32)[:frames] for p in table.pairs])
    S = np.stack([np.asarray(store.read(p.speaker, feature), np.float32)[:frames] for p in table.pairs])
    return L, S, table.appropriate
