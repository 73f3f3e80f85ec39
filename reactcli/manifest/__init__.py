"""Manifests: typed records in JSONL files that carry data from stage to stage."""

from reactcli.manifest.io import (
    iter_manifest,
    merge_manifests,
    parse_shard,
    read_manifest,
    shard_records,
    split_manifest,
    write_manifest,
)
from reactcli.manifest.records import (
    AppropriateRecord,
    ArrayRef,
    ClipRecord,
    GeneratedRecord,
    PairRecord,
    ParticipantRecord,
    Record,
    SessionRecord,
)

__all__ = [
    "AppropriateRecord",
    "ArrayRef",
    "ClipRecord",
    "GeneratedRecord",
    "PairRecord",
    "ParticipantRecord",
    "Record",
    "SessionRecord",
    "iter_manifest",
    "merge_manifests",
    "parse_shard",
    "read_manifest",
    "shard_records",
    "split_manifest",
    "write_manifest",
]
