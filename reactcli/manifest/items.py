"""The items of a split: speaker-listener pairs in challenge order and their appropriateness.

An :class:`ItemTable` is what every stage after feature extraction iterates over: the split's
items (``manifests/pairs.jsonl``, mirrored for val/test) in challenge order, their
appropriateness matrix (``appropriate/<split>.npy``; without one, each item's only appropriate
reaction is its own listener) and who is who (``manifests/identities.json``). Training, generation,
appropriateness building and the metrics all read it through :func:`load_items`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reactcli.errors import InputError
from reactcli.io import check_name
from reactcli.manifest.identities import IdentityResolver
from reactcli.manifest.io import read_manifest
from reactcli.manifest.records import PairRecord

__all__ = ["ItemTable", "load_items", "check_matrix"]


@dataclass
class ItemTable:
    split: str
    pairs: list[PairRecord]
    appropriate: np.ndarray  # (N, N) uint8
    identities: dict[str, int] = field(default_factory=dict)  # identity -> id
    resolver: IdentityResolver = field(default_factory=IdentityResolver)
    """clip id -> identity (the work directory's ``manifests/identities.json``, see
    :mod:`reactcli.manifest.identities`)."""

    @property
    def n(self) -> int:
        return len(self.pairs)

    def listener_id(self, i: int) -> int:
        return self.identities[self.resolver(self.pairs[i].listener)]

    def rows(self) -> list[np.ndarray]:
        return [np.flatnonzero(self.appropriate[i]) for i in range(self.n)]


def load_items(work: str | os.PathLike, split: str, appropriate: str | os.PathLike | None = None,
               require_appropriate: bool = False) -> ItemTable:
    """The items of ``split`` and their appropriateness matrix from a work directory."""
    work = Path(work)
    check_name(split, "--split")
    pairs = [p for p in read_manifest(work / "manifests/pairs.jsonl", PairRecord) if p.split == split]
    if not pairs:
        raise InputError(f"{work}/manifests/pairs.jsonl: no items of split {split!r}")
    pairs.sort(key=lambda p: p.index)
    if [p.index for p in pairs] != list(range(len(pairs))):
        raise InputError(f"{work}/manifests/pairs.jsonl: item indices of split {split!r} are not 0..{len(pairs) - 1}")
    mpath = Path(appropriate) if appropriate else work / "appropriate" / f"{split}.npy"
    if mpath.is_file():
        try:
            m = np.load(mpath, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise InputError(f"{mpath}: cannot read appropriateness matrix ({exc}); rebuild or re-import it") from exc
        if m.shape != (len(pairs), len(pairs)):
            raise InputError(f"{mpath}: appropriateness matrix is {m.shape}, expected ({len(pairs)}, {len(pairs)}) for split {split!r}")
        m = (m > 0).astype(np.uint8)
        empty = np.flatnonzero(m.sum(1) == 0)
        if empty.size:
            raise InputError(f"{mpath}: appropriateness row {int(empty[0])} (item {split}/{int(empty[0])}) is empty")
    elif require_appropriate:
        raise InputError(f"{mpath}: appropriateness matrix not found (run `reactcli appropriate build --split {split}`)")
    else:
        m = np.eye(len(pairs), dtype=np.uint8)
    resolver = IdentityResolver.from_work(work)
    idents = sorted({resolver(c) for p in pairs for c in (p.speaker, p.listener)})
    return ItemTable(split=split, pairs=pairs, appropriate=m, identities={k: i for i, k in enumerate(idents)},
                     resolver=resolver)



def check_matrix(m: np.ndarray, path: str | os.PathLike, n_items: int, split: str | None = None) -> str | None:
    """Why an appropriateness matrix is unusable for ``n_items`` items (None if it is fine).

    It must be square, ``n_items`` x ``n_items``, hold only 0/1, and have no empty row (every
    item's own listener is appropriate).
    """
    for_split = f" for split {split!r}" if split else ""
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        return f"{path}: appropriateness matrix has shape {m.shape}, expected square ({n_items}, {n_items})"
    if not np.isfinite(m).all() or not np.isin(m, (0, 1)).all():
        return f"{path}: appropriateness matrix must hold only 0/1 values"
    if m.shape[0] != n_items:
        return f"{path}: appropriateness matrix is {m.shape[0]}x{m.shape[0]}, expected {n_items}x{n_items}{for_split}"
    empty = np.flatnonzero(m.sum(1) == 0)
    if empty.size:
        item = f" (item {split}/{int(empty[0])})" if split else ""
        return (f"{path}: appropriateness row {int(empty[0])}{item} is empty ({empty.size} empty rows; "
                "every item needs at least its own listener)")
    return None
