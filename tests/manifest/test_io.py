import gzip
import json

import pytest

from reactcli.errors import InputError
from reactcli.manifest import (
    ArrayRef,
    ClipRecord,
    PairRecord,
    ParticipantRecord,
    Record,
    SessionRecord,
    iter_manifest,
    merge_manifests,
    parse_shard,
    read_manifest,
    shard_records,
    split_manifest,
    write_manifest,
)


def _clips(n):
    return [ClipRecord(id=f"NoXI/s/Expert_video/{i}", site="NoXI", session="NoXI/s", person="Expert_video",
                       index=i, start=30.0 * (i - 1), end=30.0 * i) for i in range(1, n + 1)]


@pytest.mark.parametrize("name", ["m.jsonl", "m.jsonl.gz"])
def test_round_trip_all_record_types(tmp_path, name):
    recs = [
        SessionRecord(id="NoXI/a", corpus="noxi", site="NoXI",
                      participants=[ParticipantRecord(person="Expert", video="/v.mp4", audio="/a.wav",
                                                      sidecars={"emotion": "/e.csv"})], duration=60.0, fps=25.0),
        *_clips(2),
        PairRecord(id="val/0", split="val", index=0, speaker="x", listener="y"),
        ArrayRef(clip="x", feature="mfcc", store="features/a.h5", key="x/mfcc", fps=25.0, shape=[751, 78]),
    ]
    path = tmp_path / name
    assert write_manifest(path, recs) == len(recs)
    back = read_manifest(path)
    assert back == recs
    assert isinstance(back[0].participants[0], ParticipantRecord)
    assert back[0].participant("Expert").audio == "/a.wav"
    if name.endswith(".gz"):
        with gzip.open(path, "rt") as fh:
            assert json.loads(fh.readline())["type"] == "session"


def test_reading_is_lazy(tmp_path):
    path = tmp_path / "m.jsonl"
    write_manifest(path, _clips(3))
    with open(path, "a") as fh:
        fh.write("{not json\n")
    it = iter_manifest(path, ClipRecord)
    assert next(it).index == 1  # the bad last line is not touched yet
    with pytest.raises(InputError, match=r"m.jsonl:4: bad manifest record"):
        list(it)


def test_wrong_record_type_and_missing_file(tmp_path):
    path = tmp_path / "m.jsonl"
    write_manifest(path, _clips(1))
    with pytest.raises(InputError, match="where 'pair' was expected"):
        read_manifest(path, PairRecord)
    with pytest.raises(InputError, match="manifest not found"):
        read_manifest(tmp_path / "nope.jsonl")


def test_atomic_write_keeps_old_file_on_error(tmp_path):
    path = tmp_path / "m.jsonl"
    write_manifest(path, _clips(2))

    def boom():
        yield from _clips(1)
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        write_manifest(path, boom())
    assert len(read_manifest(path)) == 2
    assert [p.name for p in tmp_path.iterdir()] == ["m.jsonl"]  # no temp file left behind


def test_shards_partition_and_merge(tmp_path):
    recs = _clips(10)
    shards = split_manifest(recs, 3)
    assert [len(s) for s in shards] == [3, 3, 4]
    assert sum(shards, []) == recs
    assert shard_records(recs, 1, 3) == shards[1]
    paths = []
    for i, s in enumerate(shards):
        p = tmp_path / f"s{i}.jsonl"
        write_manifest(p, s)
        paths.append(p)
    paths.append(paths[0])  # the same shard twice: duplicates with equal content collapse
    assert merge_manifests(paths, tmp_path / "all.jsonl") == 10
    assert read_manifest(tmp_path / "all.jsonl") == recs


def test_merge_conflict_is_named(tmp_path):
    a, b = _clips(1)[0], _clips(1)[0]
    b.end = 99.0
    write_manifest(tmp_path / "a.jsonl", [a])
    write_manifest(tmp_path / "b.jsonl", [b])
    with pytest.raises(InputError, match="conflicts"):
        merge_manifests([tmp_path / "a.jsonl", tmp_path / "b.jsonl"], tmp_path / "o.jsonl")


@pytest.mark.parametrize("spec,ok", [("0/1", True), ("3/4", True), ("4/4", False), ("x/2", False), ("1", False)])
def test_parse_shard(spec, ok):
    if ok:
        i, n = parse_shard(spec)
        assert 0 <= i < n
    else:
        with pytest.raises(InputError):
            parse_shard(spec)


def test_unknown_field_rejected():
    with pytest.raises(ValueError, match="unknown fields"):
        Record.from_dict({"type": "pair", "id": "a", "split": "v", "index": 0, "speaker": "s", "listener": "l", "bogus": 1})
