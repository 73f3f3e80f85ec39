"""Who is who: the participant identity behind each clip.

REACT names a clip ``<site>/<session>/<person>/<clip>`` and does not publish which persons of
different sessions are the same human (NoXI experts, for example, recur across many sessions and
across the splits). By default a person of one session is one identity. A corpus that knows better
gives a map to ``reactcli prepare react|noxi|recola|synthetic|mars --identities FILE``; it is kept
as ``<work>/manifests/identities.json`` (:func:`write_identity_map`) and read by every stage that
needs identities (the PSSL contrastive labels, the listener-history clips, the personal metrics).

The map is a JSON object whose keys are participants ``<site>/<session>/<person>`` (or single clip
ids, which win over their participant) and whose values are identity names::

    {"NoXI/001_2016-03-17_Paris/Expert_video": "NoXI/expert-1", ...}

The raw-session readers check the map before the clips exist: against the participants the clip
stage will name (``participants``), accepting the raw folder names of a participant too
(``aliases``: NoXI ``.../Expert`` for the clip ids' ``.../Expert_video``); the kept map uses the
clip ids' names, so it resolves the clips that ``reactcli clip`` writes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

from reactcli.errors import InputError
from reactcli.io import write_json
from reactcli.manifest.ids import participant_of

__all__ = ["identity_of", "read_identity_map", "write_identity_map", "count_identities", "IdentityResolver"]

MANIFEST_NAME = "identities.json"


def identity_of(clip_id: str, mapping: dict[str, str] | None = None) -> str:
    """The identity of a clip: its entry in ``mapping``, else its participant's, else the participant."""
    if mapping:
        if clip_id in mapping:
            return mapping[clip_id]
        part = participant_of(clip_id)
        return mapping.get(part, part)
    return participant_of(clip_id)


def read_identity_map(
    path: str | os.PathLike,
    clip_ids: Iterable[str] | None = None,
    participants: Iterable[str] | None = None,
    aliases: dict[str, str] | None = None,
) -> dict[str, str]:
    """Read and check an identity map; with ``clip_ids`` / ``participants``, keep only the entries they use.

    ``participants`` are ``<site>/<session>/<person>`` whose clips are not cut yet: a key naming
    one of them, or any ``<participant>/<clip>`` of one, is kept. ``aliases`` maps another name of
    a participant (a raw folder name) to the participant: such keys, and the clip keys under them,
    are rewritten to the participant's name.

    Raises InputError naming the file when it is not a JSON object of non-empty strings, when two
    keys that name the same participant or clip give different identities, or when none of its
    keys names a participant or clip of ``clip_ids`` / ``participants`` (a map of another corpus).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: identity map not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object {{participant or clip id: identity}}, got {type(data).__name__}")
    for k, v in data.items():
        if not isinstance(v, str) or not v.strip() or not k.strip():
            raise InputError(f"{path}: entry {k!r}: expected a non-empty identity string, got {v!r}")
    if clip_ids is None and participants is None:
        return dict(data)
    ids = set(clip_ids or ())
    parts = set(participants or ())
    wanted = ids | {participant_of(c) for c in ids} | parts
    aliases = aliases or {}
    used: dict[str, str] = {}
    source: dict[str, str] = {}
    for k, v in data.items():
        key = aliases.get(k, k)
        head, _, clip = k.rpartition("/")
        if key == k and head in aliases and clip:
            key = f"{aliases[head]}/{clip}"
        if not (key in wanted or (clip and participant_of(key) in parts)):
            continue
        if key in used and used[key] != v:
            raise InputError(f"{path}: entries {source[key]!r} and {k!r} name the same person ({key}) "
                             f"with different identities ({used[key]!r}, {v!r})")
        used.setdefault(key, v)
        source.setdefault(key, k)
    if data and not used:
        example = next(iter(data))
        raise InputError(f"{path}: none of its {len(data)} keys (e.g. {example!r}) names a participant "
                         f"<site>/<session>/<person> or clip of this corpus")
    return used


def write_identity_map(work: str | os.PathLike, mapping: dict[str, str] | None) -> Path:
    """Keep ``mapping`` as ``<work>/manifests/identities.json`` (atomic write), or, when ``None``,
    remove the map an earlier prepare of ``work`` left (so it cannot outlive a prepare without one)."""
    path = Path(work) / "manifests" / MANIFEST_NAME
    if mapping is None:
        path.unlink(missing_ok=True)
    else:
        write_json(path, mapping)
    return path


def count_identities(mapping: dict[str, str], clip_ids: Iterable[str] = (), participants: Iterable[str] = ()) -> int:
    """Distinct identities among ``clip_ids`` and ``participants`` (uncut: every clip key of the
    map under one of them counts too) under ``mapping``."""
    parts = set(participants)
    names = {identity_of(c, mapping) for c in clip_ids} | {mapping.get(p, p) for p in parts}
    names |= {v for k, v in mapping.items() if k not in parts and participant_of(k) in parts}
    return len(names)


class IdentityResolver:
    """Identities of a work directory (its ``manifests/identities.json`` when there is one)."""

    def __init__(self, mapping: dict[str, str] | None = None):
        self.mapping = dict(mapping or {})

    @classmethod
    def from_work(cls, work: str | os.PathLike) -> "IdentityResolver":
        path = Path(work) / "manifests" / MANIFEST_NAME
        return cls(read_identity_map(path) if path.is_file() else None)

    def __call__(self, clip_id: str) -> str:
        return identity_of(clip_id, self.mapping)
