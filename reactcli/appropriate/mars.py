"""The MARS protocol's appropriateness rule (REACT 2025/2026, data.md): by session.

In MARS every listener reaction of the same ``session<k>`` is appropriate for a speaker clip of
that session (10 per speaker at test time), so the matrices follow from the recordings' session
ids (:func:`reactcli.manifest.ids.group_of`) alone. The clip stage calls
:func:`session_appropriateness` for a MARS work directory once its items are known.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from reactcli.io import save_npy
from reactcli.manifest import AppropriateRecord, PairRecord, write_manifest
from reactcli.manifest.ids import group_of

__all__ = ["session_matrix", "session_appropriateness"]


def session_matrix(session_ids: list[str]) -> np.ndarray:
    """(N, N) 0/1: item j's listener is appropriate for item k when their recordings belong to the
    same MARS session (``session_ids`` in item order, ``MARS/<split>-session<k>-<clip>``)."""
    groups = np.array([group_of(s) for s in session_ids])
    return (groups[:, None] == groups[None, :]).astype(np.uint8)


def session_appropriateness(work: str | os.PathLike, pairs: list[PairRecord],
                            session_of: dict[str, str]) -> dict[str, dict[str, float]]:
    """Write ``appropriate/<split>.npy`` and ``manifests/appropriate_<split>.jsonl`` (source
    ``mars-session``) for every split of ``pairs``; ``session_of`` maps a clip id to its session id.
    Returns the appropriate-reactions-per-item statistics of each split."""
    work = Path(work)
    stats: dict[str, dict[str, float]] = {}
    for split in sorted({p.split for p in pairs}):
        items = [p for p in pairs if p.split == split]
        a = session_matrix([session_of[p.speaker] for p in items])
        save_npy(work / "appropriate" / f"{split}.npy", a)
        write_manifest(work / "manifests" / f"appropriate_{split}.jsonl", [
            AppropriateRecord(split=split, index=k, item=p.id, appropriate=np.flatnonzero(a[k]).tolist(),
                              source="mars-session") for k, p in enumerate(items)])
        counts = a.sum(1)
        stats[split] = {"mean": float(counts.mean()), "min": int(counts.min()), "max": int(counts.max())}
    return stats
