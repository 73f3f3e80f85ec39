"""The JSON Schemas of the manifest formats (manifests/schemas/, package data) and their validation."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from reactcli.errors import InputError
from reactcli.manifest import PairRecord, SessionRecord, ParticipantRecord, write_manifest
from reactcli.manifest.records import RECORD_TYPES
from reactcli.manifest.schema import all_schemas, check_record, schema_text, validate_file, validate_work

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "manifests" / "golden"


def test_shipped_schemas_are_the_record_classes():
    """A record class changed without `python manifests/regenerate.py` fails here, naming the file."""
    for name, schema in all_schemas().items():
        text = schema_text(schema)
        for folder in (ROOT / "manifests" / "schemas", ROOT / "reactcli" / "manifest" / "schemas"):
            path = folder / f"{name}.schema.json"
            assert path.is_file() and path.read_text() == text, f"{path} is stale: run python manifests/regenerate.py"
    nested = {"participant"}
    assert set(all_schemas()) == (set(RECORD_TYPES) - nested) | {"identities", "split-map"}


def test_schema_follows_types_defaults_and_docs():
    pair = all_schemas()["pair"]
    assert pair["required"] == ["type", "id", "split", "index", "speaker", "listener"]
    assert pair["properties"]["index"] == {"description": "item index: 0..n-1 as listed, n..2n-1 mirrored (val/test)",
                                           "type": "integer", "minimum": 0}
    assert pair["properties"]["mirrored"] == {"type": "boolean", "default": False}
    assert pair["additionalProperties"] is False
    sess = all_schemas()["session"]
    assert sess["properties"]["duration"]["type"] == ["number", "null"]
    assert sess["properties"]["participants"]["items"] == {"$ref": "#/$defs/participant"}
    assert "type" not in sess["$defs"]["participant"]["required"]  # nested records carry no tag


GOOD = {"type": "pair", "id": "val/3", "split": "val", "index": 3, "speaker": "a/b/c/1", "listener": "a/b/d/1"}


@pytest.mark.parametrize("change, message", [
    ({"index": -1}, "field 'index': expected an integer >= 0, got -1"),
    ({"index": "3"}, "field 'index': expected an integer >= 0, got \"3\""),
    ({"index": True}, "field 'index': expected an integer >= 0, got true"),
    ({"speaker": None}, "field 'speaker': expected a string non-empty, got null"),
    ({"id": "val-3"}, "field 'id': expected a string matching"),
    ({"colour": "red"}, "unexpected field 'colour' (expected only: id, index, listener, mirrored, row, speaker, split, type)"),
    ({"type": "clip"}, "field 'type': expected \"pair\", got \"clip\""),
])
def test_a_bad_record_is_named_with_the_field_and_what_was_expected(change, message):
    check_record(GOOD, "f:1", "pair")
    with pytest.raises(InputError) as exc:
        check_record({**GOOD, **change}, "pairs.jsonl:7", "pair")
    assert str(exc.value).startswith("pairs.jsonl:7: ") and message in str(exc.value)
    missing = dict(GOOD)
    del missing["listener"]
    with pytest.raises(InputError, match=r"^pairs.jsonl:2: field 'listener': missing \(required\)$"):
        check_record(missing, "pairs.jsonl:2", "pair")


def test_nested_participants_are_checked_inside_their_session():
    s = SessionRecord(id="NoXI/1", corpus="noxi", site="NoXI", participants=[ParticipantRecord(person="Expert")])
    check_record(s.to_dict(), "s:1", "session")
    bad = s.to_dict()
    bad["participants"][0]["video"] = 3
    with pytest.raises(InputError, match=r"field 'participants\[0\].video': expected a string or null, got 3"):
        check_record(bad, "s:1", "session")


def test_write_manifest_validates_what_it_writes_in_tests(tmp_path, monkeypatch):
    monkeypatch.setenv("REACTCLI_VALIDATE_MANIFESTS", "1")
    good = PairRecord(id="val/0", split="val", index=0, speaker="a", listener="b")
    assert write_manifest(tmp_path / "pairs.jsonl", [good]) == 1
    with pytest.raises(InputError, match=r"pairs.jsonl: record 2 \(line 2\): field 'index': expected an integer >= 0, got -2"):
        write_manifest(tmp_path / "pairs.jsonl", [good, PairRecord(id="val/1", split="val", index=-2, speaker="a", listener="b")])
    assert (tmp_path / "pairs.jsonl").read_text().count("\n") == 1  # the old file is untouched
    monkeypatch.setenv("REACTCLI_VALIDATE_MANIFESTS", "0")  # off: written as given
    assert write_manifest(tmp_path / "x.jsonl", [PairRecord(id="val/1", split="val", index=-2, speaker="a", listener="b")]) == 1


def _copy_golden(tmp_path: Path, corpus: str) -> Path:
    work = tmp_path / "w"
    (work / "manifests").mkdir(parents=True)
    for p in (GOLDEN / corpus).iterdir():
        (work / "manifests" / p.name).write_text(p.read_text())
    return work


def test_validate_accepts_the_golden_corpora_and_names_a_broken_line(tmp_path, cli):
    for corpus in ("react", "raw"):
        work = _copy_golden(tmp_path / corpus, corpus)
        report = validate_work(work)
        assert report["pairs.jsonl"] == {"pair": len((GOLDEN / corpus / "pairs.jsonl").read_text().splitlines())}
    res = cli("validate", tmp_path / "react" / "w")
    assert res.exit_code == 0, res.output
    assert "arrays.jsonl: 32 array" in res.output and "ok: 6 manifests" in res.output
    pairs = tmp_path / "react" / "w" / "manifests" / "pairs.jsonl"
    lines = pairs.read_text().splitlines()
    rec = json.loads(lines[4])
    rec["index"] = "five"
    lines[4] = json.dumps(rec)
    pairs.write_text("\n".join(lines) + "\n")
    res = cli("validate", tmp_path / "react" / "w")
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert f"{pairs}:5: field 'index': expected an integer >= 0, got \"five\"" in " ".join(res.output.split()).replace(" ", "") or \
        "pairs.jsonl:5: field 'index': expected an integer >= 0" in " ".join(res.output.split())


def test_validate_checks_references_gzip_and_json_syntax(tmp_path):
    work = _copy_golden(tmp_path, "raw")
    pairs = work / "manifests" / "pairs.jsonl"
    text = pairs.read_text()
    pairs.write_text(text.replace('"listener": "NoXI/001_2016-03-17_Paris/Novice_video/1"',
                                  '"listener": "NoXI/001_2016-03-17_Paris/Novice_video/99"', 1))
    with pytest.raises(InputError, match=r"pairs.jsonl:1: field 'listener': expected a clip id of clips.jsonl, got "
                                         r"\"NoXI/001_2016-03-17_Paris/Novice_video/99\""):
        validate_work(work)
    pairs.write_text(text)
    with gzip.open(work / "manifests" / "generated-x-val.jsonl.gz", "wt") as fh:
        fh.write('{"type": "generated", "run": "x", "split": "val", "index": 0, "item": "val/0", "speaker": "a", '
                 '"listener": "b", "clip": "gen/x/val/0", "num_samples": 0}\n')
    with pytest.raises(InputError, match=r"generated-x-val.jsonl.gz:1: field 'num_samples': expected an integer >= 1, got 0"):
        validate_work(work)
    (work / "manifests" / "generated-x-val.jsonl.gz").unlink()
    (work / "manifests" / "clips.jsonl").write_text('{"type": "clip", "id": \n')
    with pytest.raises(InputError, match=r"clips.jsonl:1: not valid JSON"):
        validate_file(work / "manifests" / "clips.jsonl")
    (work / "manifests" / "identities.json").write_text('{"NoXI/001/Expert": ""}')
    with pytest.raises(InputError, match=r"identities.json: field 'NoXI/001/Expert': expected a string non-empty"):
        validate_file(work / "manifests" / "identities.json")
    with pytest.raises(InputError, match="no manifests folder"):
        validate_work(tmp_path / "nowhere")


def test_readers_check_field_types_cheaply(tmp_path):
    from reactcli.manifest import read_manifest

    good = dict(GOOD)
    (tmp_path / "pairs.jsonl").write_text(json.dumps(good) + "\n" + json.dumps({**good, "index": "five"}) + "\n")
    with pytest.raises(InputError, match=r"pairs.jsonl:2: bad manifest record \(field 'index': expected an integer, got 'five'\)"):
        read_manifest(tmp_path / "pairs.jsonl", PairRecord)
    (tmp_path / "pairs.jsonl").write_text(json.dumps({**good, "mirrored": None}) + "\n")
    with pytest.raises(InputError, match=r"field 'mirrored': expected true or false, got None"):
        read_manifest(tmp_path / "pairs.jsonl", PairRecord)
    s = {"type": "session", "id": "a", "corpus": "c", "site": "s", "fps": 25, "split": None,
         "participants": [{"person": "E", "video": 3}]}
    (tmp_path / "sessions.jsonl").write_text(json.dumps(s) + "\n")
    with pytest.raises(InputError, match=r"sessions.jsonl:1: .*field 'video': expected a string or null, got 3"):
        read_manifest(tmp_path / "sessions.jsonl", SessionRecord)
    s["participants"][0]["video"] = None
    (tmp_path / "sessions.jsonl").write_text(json.dumps(s) + "\n")
    assert read_manifest(tmp_path / "sessions.jsonl", SessionRecord)[0].fps == 25  # an int is a number
