"""The session-to-split map (reactcli.manifest.splitmap) and `reactcli clip --split-map`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reactcli.errors import InputError
from reactcli.manifest.splitmap import read_split_map, resolve_splits

ROOT = Path(__file__).resolve().parents[2]
IDS = ["NoXI/001_2016-03-17_Paris", "NoXI/002_2016-03-18_Nottingham", "RECOLA/group-1"]


def test_csv_and_json_maps_read_the_same(tmp_path):
    (tmp_path / "m.csv").write_text("split,session,note\ntrain,NoXI/001_2016-03-17_Paris,x\n\n"
                                    "test,002_2016-03-18_Nottingham,\nval,RECOLA/group-1,\n")
    (tmp_path / "m.json").write_text(json.dumps({"NoXI/001_2016-03-17_Paris": "train",
                                                 "002_2016-03-18_Nottingham": "test", "RECOLA/group-1": "val"}))
    a, b = read_split_map(tmp_path / "m.csv"), read_split_map(tmp_path / "m.json")
    assert a == b
    assert resolve_splits(IDS, a, "m.csv") == {IDS[0]: "train", IDS[1]: "test", IDS[2]: "val"}


@pytest.mark.parametrize("text, message", [
    ("sess,split\na,train\n", r"m.csv:1: split map header: expected columns 'session' and 'split'"),
    ("session,split\nNoXI/a,train\nNoXI/a,test\n", r"m.csv:3: session 'NoXI/a' is mapped to 'test' here and to 'train' on line 2"),
    ("session,split\nNoXI/a,tr ain\n", r"m.csv:2: field 'NoXI/a': expected a string matching"),
    ("session,split\n,train\n", r"m.csv:2: field 'session': expected a session id, got an empty cell"),
    ("session,split\n", r"m.csv: split map has no sessions"),
])
def test_bad_maps_are_named(tmp_path, text, message):
    (tmp_path / "m.csv").write_text(text)
    with pytest.raises(InputError, match=message):
        read_split_map(tmp_path / "m.csv")


def test_every_session_must_be_mapped_and_bare_names_unambiguous():
    with pytest.raises(InputError, match=r"m.csv: no split for session 'RECOLA/group-1' \(1 of 3 sessions missing\)"):
        resolve_splits(IDS, {IDS[0]: "train", IDS[1]: "val"}, "m.csv")
    with pytest.raises(InputError, match=r"session 'x' is ambiguous \(A/x, B/x\)"):
        resolve_splits(["A/x", "B/x"], {"x": "train"}, "m.csv")
    # sessions the work directory does not hold are allowed (one map for a whole corpus)
    assert resolve_splits(IDS[:1], {IDS[0]: "val", "NoXI/999": "test"}, "m.csv") == {IDS[0]: "val"}


def test_the_shipped_synthetic_map_is_the_synthetic_truth():
    from reactcli.synthetic.corpus import SPLIT_CYCLE

    m = read_split_map(ROOT / "manifests" / "split-maps" / "synthetic.csv")
    assert len(m) == 12 and set(m.values()) == {"train", "val", "test"}
    assert m["NoXI/001_2016-03-17_Paris"] == SPLIT_CYCLE[0] and m["RECOLA/group-1"] == SPLIT_CYCLE[2]


def test_clip_with_a_split_map_puts_sessions_where_it_says(tmp_path, cli):
    from reactcli.corpora.raw import RawConfig, prepare_synthetic
    from reactcli.manifest import PairRecord, SessionRecord, read_manifest
    from reactcli.synthetic import SynthConfig, synthesize

    root, work = tmp_path / "root", tmp_path / "work"
    synthesize(root, config=SynthConfig(layout="raw", sessions=2, minutes=0.04, size=32, clip_seconds=1, workers=1))
    prepare_synthetic(root, work, RawConfig(split_rule="cycle", split_cycle=("train",)))  # both in train
    (tmp_path / "map.csv").write_text("session,split\n001_2016-03-17_Paris,test\nNoXI/002_2016-03-18_Nottingham,val\n")
    short = ["--clip-seconds", "1", "--stride", "1", "--frames", "26", "--preset", "ultrafast"]
    res = cli("clip", "--work", work, *short, "--split-map", tmp_path / "nope.csv")
    assert res.exit_code == 1 and "nope.csv: split map not found" in res.output and "Traceback" not in res.output
    (tmp_path / "half.csv").write_text("session,split\n001_2016-03-17_Paris,test\n")
    res = cli("clip", "--work", work, *short, "--split-map", tmp_path / "half.csv")
    assert res.exit_code == 1 and "no split for session 'NoXI/002_2016-03-18_Nottingham'" in " ".join(res.output.split())
    res = cli("clip", "--work", work, *short, "--split-map", tmp_path / "map.csv")
    assert res.exit_code == 0, res.output
    pairs = read_manifest(work / "manifests" / "pairs.jsonl", PairRecord)
    assert {p.split for p in pairs} == {"test", "val"}
    assert all(p.speaker.startswith("NoXI/001") for p in pairs if p.split == "test" and not p.mirrored)
    assert {s.id: s.split for s in read_manifest(work / "manifests" / "sessions.jsonl", SessionRecord)} == \
        {"NoXI/001_2016-03-17_Paris": "test", "NoXI/002_2016-03-18_Nottingham": "val"}
    assert cli("validate", work).exit_code == 0
