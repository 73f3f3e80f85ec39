"""Typed manifest records.

Stages talk to each other through small JSON records on disk (one per line, JSONL). Records
describe media, time spans, pairs, appropriateness sets and *references* to arrays; the arrays
themselves live in the HDF5 feature store (``reactcli.storage``), never in a manifest.

Every record class is a dataclass registered under a ``type`` tag, written as the first key of
each JSON line, so a manifest can be read back into the right classes without a schema file.
"""

from __future__ import annotations

import dataclasses
import types
import typing
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

RECORD_TYPES: dict[str, type] = {}


def record(tag: str):
    """Class decorator: make a dataclass a manifest record under ``tag``."""

    def wrap(cls):
        cls = dataclass(cls)
        cls.record_type = tag
        RECORD_TYPES[tag] = cls
        return cls

    return wrap


class Record:
    """Base behaviour of all records (to/from plain dicts)."""

    record_type: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.record_type}
        out.update(dataclasses.asdict(self))  # type: ignore[arg-type]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Record":
        data = dict(data)
        tag = data.pop("type", None)
        target = RECORD_TYPES.get(tag, cls) if tag else cls
        if cls is not Record and target is not cls and not issubclass(target, cls):
            raise ValueError(f"record of type {tag!r} where {cls.record_type!r} was expected")
        names = {f.name for f in dataclasses.fields(target)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown fields {sorted(unknown)} for record type {target.record_type!r}")
        checks = _field_checks(target)
        for name, value in data.items():  # cheap type check of what a line holds (the schema's types)
            ok, what = checks[name]
            if not ok(value):
                raise ValueError(f"field {name!r}: expected {what}, got {value!r:.60}")
        for name, sub in getattr(target, "nested", {}).items():
            if name in data and data[name] is not None:
                data[name] = [x if isinstance(x, sub) else sub.from_dict(x) for x in data[name]]
        return target(**data)


_CHECKS: dict[type, dict[str, tuple[Any, str]]] = {}
_SIMPLE = {str: (lambda v: isinstance(v, str), "a string"),
           int: (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
           float: (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), "a number"),
           bool: (lambda v: isinstance(v, bool), "true or false")}


def _field_checks(cls: type) -> dict[str, tuple[Any, str]]:
    """Per field of a record class, (value -> ok, what is expected) from its type hints: the
    scalar types exactly, lists and dicts by kind, ``X | None`` also None (cached per class)."""
    if cls not in _CHECKS:
        hints = typing.get_type_hints(cls)
        checks = {}
        for f in dataclasses.fields(cls):
            tp = hints[f.name]
            args = typing.get_args(tp)
            optional = type(None) in args and typing.get_origin(tp) in (typing.Union, types.UnionType)
            if optional:
                rest = [a for a in args if a is not type(None)]
                tp = rest[0] if len(rest) == 1 else Any
            origin = typing.get_origin(tp) or tp
            if origin in _SIMPLE:
                ok, what = _SIMPLE[origin]
            elif origin in (list, dict):
                ok, what = (lambda v, o=origin: isinstance(v, o)), ("a list" if origin is list else "an object")
            else:
                ok, what = (lambda v: True), "any value"
            if optional:
                ok, what = (lambda v, f=ok: v is None or f(v)), f"{what} or null"
            checks[f.name] = (ok, what)
        _CHECKS[cls] = checks
    return _CHECKS[cls]


def resolve_path(work: str | os.PathLike, path: str | None) -> str | None:
    """A media path as a manifest stores it, made usable from any working directory: absolute
    paths stay, a relative one is relative to the work directory (the clip stage's own outputs,
    ``clips/...``, so a work directory can be moved with its clips). Every stage resolves paths
    through this function."""
    if path is None or path == "":
        return path
    p = Path(path)
    return str(p if p.is_absolute() else Path(work).absolute() / p)


@record("participant")
class ParticipantRecord(Record):
    """One person of a raw session and their media (absolute paths)."""

    person: str  # as named by the corpus: Expert / Novice, P25 / P26, ...
    video: str | None = None
    audio: str | None = None
    sidecars: dict[str, str] = field(default_factory=dict)  # feature name -> file


@record("session")
class SessionRecord(Record):
    """A whole (unclipped) recording of two people."""

    id: str  # e.g. "NoXI/010_2016-03-25_Paris"
    corpus: str  # noxi | recola | synthetic | mars
    site: str  # NoXI | RECOLA | ...
    participants: list[ParticipantRecord] = field(default_factory=list)
    duration: float | None = None  # seconds
    fps: float | None = None
    split: str | None = None

    nested: ClassVar[dict[str, type]] = {"participants": ParticipantRecord}

    def resolved(self, work: str | os.PathLike) -> "SessionRecord":
        """A copy whose media paths are absolute (:func:`resolve_path`)."""
        parts = [dataclasses.replace(p, video=resolve_path(work, p.video), audio=resolve_path(work, p.audio),
                                     sidecars={k: resolve_path(work, v) for k, v in p.sidecars.items()})
                 for p in self.participants]
        return dataclasses.replace(self, participants=parts)

    def participant(self, person: str) -> ParticipantRecord:
        for p in self.participants:
            if p.person == person:
                return p
        raise KeyError(f"session {self.id} has no participant {person!r}")


@record("clip")
class ClipRecord(Record):
    """A clip of one participant: a time span of a session, with its media and sidecars.

    ``id`` follows the REACT path convention without extension:
    ``<site>/<session>/<person>/<index>`` (e.g. ``NoXI/065_2016-04-14_Nottingham/Expert_video/1``).
    """

    id: str
    site: str
    session: str
    person: str
    index: int  # 1-based clip number inside the session
    start: float  # seconds, inclusive
    end: float  # seconds, exclusive
    fps: float = 25.0
    num_frames: int = 751
    split: str | None = None
    video: str | None = None
    audio: str | None = None
    sidecars: dict[str, str] = field(default_factory=dict)
    corpus: str = "react"

    def resolved(self, work: str | os.PathLike) -> "ClipRecord":
        """A copy whose media paths are absolute (:func:`resolve_path`)."""
        return dataclasses.replace(self, video=resolve_path(work, self.video), audio=resolve_path(work, self.audio),
                                   sidecars={k: resolve_path(work, v) for k, v in self.sidecars.items()})


@record("pair")
class PairRecord(Record):
    """A speaker/listener item in the challenge's (mirrored) item order of a split."""

    id: str  # "<split>/<index>"
    split: str
    index: int  # item index: 0..n-1 as listed, n..2n-1 mirrored (val/test)
    speaker: str  # clip id
    listener: str  # clip id
    mirrored: bool = False
    row: int = 0  # row of the split CSV this item comes from


@record("array")
class ArrayRef(Record):
    """Where an array lives in the feature store: file (relative to the work dir) + dataset key."""

    clip: str
    feature: str
    store: str  # path relative to the work directory
    key: str  # HDF5 dataset path inside ``store``
    fps: float
    shape: list[int]
    dtype: str = "float32"
    extractor: str = ""
    settings: str = ""
    """Fingerprint (16 hex digits) of what determines the values: the extractor and its options
    but the run-time ones (device, batch size, threads); "" when not recorded (older stores)."""
    inputs: dict[str, str] = field(default_factory=dict)
    """Content digest (SHA-1 hex) of each input file the array was computed from, by kind
    (``audio``, ``video``, ``emotion``, ``tdmm``); a stage redoes the array when one changes."""
    version: int = 0
    """Write generation of this (clip, feature): a redo (changed input, ``--overwrite``) writes
    ``version + 1`` into a new store file, and the highest version is the one read."""


@record("appropriate")
class AppropriateRecord(Record):
    """The appropriate real listener reactions of one speaker item."""

    split: str
    index: int  # item index (row of the matrix)
    item: str  # pair id
    appropriate: list[int] = field(default_factory=list)  # item indices j whose listener fits
    source: str = ""  # "official", "built:<rule>", "synthetic-truth"


@record("generated")
class GeneratedRecord(Record):
    """K generated reactions of one speaker item, stored as (K, T, D) arrays per feature."""

    run: str  # generation run name (a model or baseline + settings)
    split: str
    index: int  # item index
    item: str  # pair id
    speaker: str  # clip id
    listener: str  # clip id
    clip: str  # key of the arrays in the store ("gen/<run>/<split>/<index>")
    features: list[str] = field(default_factory=list)
    num_samples: int = 10
    seed: int = 0
