"""JSONL manifests: lazy reading, atomic writing, sharding and merging.

A manifest is a text file with one JSON record per line (``.jsonl``; ``.jsonl.gz`` is gzip
compressed). Reading is lazy (a generator), so a 6,000-clip manifest never needs to be held in
memory by a stage that streams it. Writing goes to a temp file that is renamed into place, so a
manifest either exists complete or not at all.
"""

from __future__ import annotations

import gzip
import io
import json
import os
from pathlib import Path
from typing import Iterable, Iterator, Sequence, TypeVar

from reactcli.errors import InputError
from reactcli.io import atomic_path, dumps
from reactcli.manifest.records import Record
from reactcli.manifest.schema import check_record, schema_for_file, validate_on_write

R = TypeVar("R", bound=Record)


def _open_text(path: Path, mode: str):
    if path.name.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, mode.replace("t", "") + "b"), encoding="utf-8")
    return open(path, mode, encoding="utf-8")


def iter_manifest(path: str | os.PathLike, cls: type[R] = Record) -> Iterator[R]:  # type: ignore[assignment]
    """Yield the records of a manifest one at a time.

    Raises ``InputError`` naming the file and line for a missing file or a malformed line.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: manifest not found (run the stage that writes it first)")
    with _open_text(path, "rt") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            try:
                yield cls.from_dict(json.loads(line))  # type: ignore[misc]
            except (json.JSONDecodeError, TypeError, ValueError) as exc:
                raise InputError(f"{path}:{lineno}: bad manifest record ({exc})") from exc


def read_manifest(path: str | os.PathLike, cls: type[R] = Record) -> list[R]:  # type: ignore[assignment]
    """Read a whole manifest into a list."""
    return list(iter_manifest(path, cls))


def write_manifest(path: str | os.PathLike, records: Iterable[Record]) -> int:
    """Write records atomically; returns how many were written. With ``REACTCLI_VALIDATE_MANIFESTS``
    set (the tests set it), every record is first checked against its shipped JSON Schema."""
    path = Path(path)
    n = 0
    suffix = ".tmp.jsonl.gz" if path.name.endswith(".gz") else ".tmp.jsonl"
    check = validate_on_write()
    expected = schema_for_file(path) if check else None
    with atomic_path(path, suffix=suffix) as tmp:
        with _open_text(tmp, "wt") as fh:
            for rec in records:
                line = dumps(rec.to_dict())
                if check:  # against the shipped JSON Schema (reactcli.manifest.schema)
                    check_record(json.loads(line), f"{path}: record {n + 1} (line {n + 1})", expected, shipped=False)
                fh.write(line)
                fh.write("\n")
                n += 1
    return n


def parse_shard(spec: str) -> tuple[int, int]:
    """Parse ``"i/N"`` (0-based ``i``) into ``(i, N)``."""
    try:
        i_s, n_s = spec.split("/")
        i, n = int(i_s), int(n_s)
    except ValueError:
        raise InputError(f"--shard {spec!r}: expected i/N with integers, e.g. 0/4") from None
    if n < 1 or not 0 <= i < n:
        raise InputError(f"--shard {spec!r}: need 0 <= i < N and N >= 1")
    return i, n


def shard_records(records: Sequence[R], index: int, count: int) -> list[R]:
    """Deterministic contiguous partition of ``records`` into ``count`` shards; returns one.

    Contiguous blocks (not round-robin) keep clips of one session together, which keeps shard
    outputs local. The partition depends only on the order of ``records`` and ``count``.
    """
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"bad shard {index}/{count}")
    n = len(records)
    lo = (n * index) // count
    hi = (n * (index + 1)) // count
    return list(records[lo:hi])


def split_manifest(records: Sequence[R], count: int) -> list[list[R]]:
    """All ``count`` shards of ``records`` (see :func:`shard_records`)."""
    return [shard_records(records, i, count) for i in range(count)]


def merge_manifests(paths: Iterable[str | os.PathLike], out: str | os.PathLike, key: str = "id") -> int:
    """Concatenate shard manifests into ``out`` (atomically), dropping exact duplicate ids.

    A duplicate id with different content is an error: two shards disagree about one item.
    """
    seen: dict[str, dict] = {}
    records: list[Record] = []
    for p in paths:
        for rec in iter_manifest(p):
            d = rec.to_dict()
            ident = str(d.get(key)) if key in d else dumps(d, sort_keys=True)
            if ident in seen:
                if seen[ident] != d:
                    raise InputError(f"{p}: record {ident!r} conflicts with another shard's record")
                continue
            seen[ident] = d
            records.append(rec)
    return write_manifest(out, records)
