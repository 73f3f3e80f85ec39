"""The session-to-split map of raw RECOLA / NoXI sessions (``reactcli clip --split-map FILE``).

Raw corpora carry no split; without a map ``prepare`` gives each session one by a rule (a cycle
over the sorted ids, or a hash: :func:`reactcli.corpora.raw.assign_splits`). A map names the split
of every session instead, e.g. the sessions the REACT challenge put in its train / val / test
folders. Two equivalent formats (JSON Schema: ``manifests/schemas/split-map.schema.json``):

* CSV with a header row naming the columns ``session`` and ``split`` (other columns are ignored)::

      session,split
      NoXI/001_2016-03-17_Paris,train
      RECOLA/group-1,test

* JSON: one object ``{"NoXI/001_2016-03-17_Paris": "train", "RECOLA/group-1": "test"}``.

A session is named by its id ``<site>/<session>`` (as in ``manifests/sessions.jsonl``) or by its
bare folder name (``001_2016-03-17_Paris``) when that is unambiguous. Every session of the work
directory must be in the map; entries for sessions it does not hold are allowed (one map serves a
subset of the corpus). The synthetic raw corpus's map is ``manifests/split-maps/synthetic.csv``.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Iterable

from reactcli.errors import InputError
from reactcli.manifest.schema import check_document

__all__ = ["read_split_map", "resolve_splits", "write_split_map"]


def read_split_map(path: str | os.PathLike) -> dict[str, str]:
    """Read a CSV or JSON split map; raises :class:`InputError` naming the file, line and field."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: split map not found (--split-map: a CSV session,split or a JSON object)")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the split map ({exc})") from None
    if path.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{exc.lineno}: split map is not valid JSON ({exc.msg})") from None
        check_document(data, "split-map", str(path))
        return {k.strip(): v for k, v in data.items()}
    rows = csv.reader(text.splitlines())
    header = next(rows, None)
    cols = [c.strip().lower() for c in header or []]
    if "session" not in cols or "split" not in cols:
        raise InputError(f"{path}:1: split map header: expected columns 'session' and 'split', got {header}")
    si, pi = cols.index("session"), cols.index("split")
    mapping: dict[str, str] = {}
    first: dict[str, int] = {}
    for lineno, row in enumerate(rows, 2):
        if not row or not any(c.strip() for c in row):
            continue
        if len(row) <= max(si, pi):
            raise InputError(f"{path}:{lineno}: expected {len(cols)} columns (session, split), got {len(row)}")
        session, split = row[si].strip(), row[pi].strip()
        where = f"{path}:{lineno}"
        if not session:
            raise InputError(f"{where}: field 'session': expected a session id, got an empty cell")
        check_document({session: split}, "split-map", where)
        if session in mapping and mapping[session] != split:
            raise InputError(f"{where}: session {session!r} is mapped to {split!r} here and to "
                             f"{mapping[session]!r} on line {first[session]}")
        mapping[session] = split
        first.setdefault(session, lineno)
    if not mapping:
        raise InputError(f"{path}: split map has no sessions (expected rows session,split)")
    return mapping


def resolve_splits(session_ids: Iterable[str], mapping: dict[str, str], path: str | os.PathLike) -> dict[str, str]:
    """The split of each session id under ``mapping`` (keys: ids ``<site>/<session>`` or bare
    session names). Raises :class:`InputError` naming the map and the first session it lacks, or a
    bare name that matches sessions of two sites."""
    ids = list(session_ids)
    by_name: dict[str, list[str]] = {}
    for sid in ids:
        by_name.setdefault(sid.rpartition("/")[2], []).append(sid)
    out: dict[str, str] = {}
    for key, split in mapping.items():
        if key in by_name and "/" not in key:
            if len(by_name[key]) > 1:
                raise InputError(f"{path}: session {key!r} is ambiguous ({', '.join(by_name[key])}): "
                                 "name it <site>/<session>")
            sid = by_name[key][0]
            if out.get(sid, split) != split:
                raise InputError(f"{path}: session {sid!r} is mapped to {out[sid]!r} and to {split!r}")
            out[sid] = split
    for sid in ids:
        if sid in mapping:
            if out.get(sid, mapping[sid]) != mapping[sid]:
                raise InputError(f"{path}: session {sid!r} is mapped to {out[sid]!r} and to {mapping[sid]!r}")
            out[sid] = mapping[sid]
    missing = [sid for sid in ids if sid not in out]
    if missing:
        raise InputError(f"{path}: no split for session {missing[0]!r} ({len(missing)} of {len(ids)} sessions "
                         f"missing); add a row '{missing[0]},<split>'")
    return out


def write_split_map(path: str | os.PathLike, mapping: dict[str, str]) -> Path:
    """Write ``mapping`` as a CSV split map (sorted by session; atomic)."""
    from reactcli.io import atomic_open

    path = Path(path)
    with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["session", "split"])
        for k in sorted(mapping):
            w.writerow([k, mapping[k]])
    return path
