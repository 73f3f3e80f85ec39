"""Manifests name media by absolute paths: a later stage run from another directory reads the same
files, never a same-named folder there (issue 27 item 7, issue 31 item 6)."""

import json

import numpy as np
from typer.testing import CliRunner

from reactcli.cli.main import app
from reactcli.corpora.react import ReactConfig, prepare_react
from reactcli.manifest import ClipRecord, read_manifest
from reactcli.manifest.records import resolve_path
from reactcli.storage import FeatureStore
from reactcli.synthetic.react_layout import write_tiny_react


def test_extract_from_another_directory(tmp_path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    write_tiny_react(a / "r", pairs_per_split=2, seed=0)
    write_tiny_react(b / "r", pairs_per_split=2, seed=1)  # same names, other values
    monkeypatch.chdir(a)
    prepare_react("r", "../w", ReactConfig(import_features=False))
    clips = read_manifest(tmp_path / "w/manifests/clips.jsonl", ClipRecord)
    assert all(c.sidecars["emotion"].startswith(str(a)) for c in clips)
    monkeypatch.chdir(b)
    res = CliRunner().invoke(app, ["extract", "--work", "../w", "--features", "emotion,tdmm"])
    assert res.exit_code == 0, res.output
    store = FeatureStore(tmp_path / "w")
    c = clips[0]
    want = np.loadtxt(c.sidecars["emotion"], delimiter=",", skiprows=1, dtype=np.float32)
    assert np.array_equal(store.read(c.id, "emotion"), want)
    other = np.loadtxt(str(c.sidecars["emotion"]).replace(str(a), str(b)), delimiter=",", skiprows=1, dtype=np.float32)
    assert not np.array_equal(want, other)


def test_relative_manifest_paths_resolve_against_the_work_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_path("w", "clips/x.mp4") == str(tmp_path / "w/clips/x.mp4")
    assert resolve_path("w", "/data/x.mp4") == "/data/x.mp4"
    rec = ClipRecord.from_dict(json.loads(json.dumps({
        "type": "clip", "id": "S/s/P1/1", "site": "S", "session": "S/s", "person": "P1", "index": 1, "start": 0.0,
        "end": 1.0, "video": "clips/v.mp4", "sidecars": {"emotion": "clips/e.csv"}})))
    r = rec.resolved(tmp_path / "w")
    assert r.video == str(tmp_path / "w/clips/v.mp4") and r.sidecars["emotion"] == str(tmp_path / "w/clips/e.csv")
