"""A changed input or other settings are never silently mixed into a work dir (issue 27 items 1-2)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import soundfile as sf

from reactcli.errors import ConfigError
from reactcli.execution import ExecConfig
from reactcli.features.stage import ExtractConfig, run_extract
from reactcli.manifest import ClipRecord, write_manifest
from reactcli.storage import FeatureStore

N = 8  # frames per clip: 0.32 s of audio


def _work(tmp_path, name="w"):
    work = tmp_path / name
    recs = []
    for i in (1, 2, 3):
        wav = tmp_path / "media" / f"a{i}.wav"
        if not wav.exists():
            wav.parent.mkdir(parents=True, exist_ok=True)
            t = np.arange(int(16000 * N / 25)) / 16000
            sf.write(wav, (0.3 * np.sin(2 * np.pi * 220 * i * t)).astype(np.float32), 16000)
        recs.append(ClipRecord(id=f"NoXI/s/Expert_video/{i}", site="NoXI", session="NoXI/s", person="Expert_video",
                               index=i, start=0.0, end=N / 25, num_frames=N, split="train", audio=str(wav)))
    write_manifest(work / "manifests/clips.jsonl", recs)
    return work


def _mfcc(work, clip="NoXI/s/Expert_video/2"):
    return FeatureStore(work).read(clip, "mfcc")


def _arrays_lines(work):
    return [json.loads(x) for x in (work / "manifests/arrays.jsonl").read_text().splitlines()]


def _cfg(rate=None, overwrite=False):
    return ExtractConfig(features=["mfcc"], options={"mfcc": {"sample_rate": rate}} if rate else {}, overwrite=overwrite)


def test_shards_with_other_sample_rate_are_refused_then_redone(tmp_path):
    ref = _work(tmp_path, "ref")
    run_extract(ref, _cfg(), ExecConfig(num_jobs=2))
    work = _work(tmp_path)
    run_extract(work, _cfg(8000), ExecConfig(shard=(0, 2)))
    run_extract(work, _cfg(8000), ExecConfig(shard=(1, 2)))
    with pytest.raises(ConfigError, match=r"0000-of-0002\.h5.*sample_rate: stored 8000, now None.*--overwrite"):
        run_extract(work, _cfg(), ExecConfig(num_jobs=2))
    assert not list((work / "features").glob("*.h5"))  # nothing merged
    s = run_extract(work, _cfg(overwrite=True), ExecConfig(num_jobs=2))
    assert sum(r["extracted"] for r in s["shards"]) == 3
    for c in (1, 2, 3):
        clip = f"NoXI/s/Expert_video/{c}"
        assert _mfcc(work, clip).tobytes() == _mfcc(ref, clip).tobytes()
    lines = _arrays_lines(work)
    assert len(lines) == 3 and len({(r["clip"], r["feature"]) for r in lines}) == 3


def test_extract_with_other_settings_on_extracted_work_stops_or_redoes(tmp_path):
    work = _work(tmp_path)
    run_extract(work, _cfg(), ExecConfig())
    plain = _mfcc(work)
    with pytest.raises(ConfigError, match=r"mfcc.*NoXI/s/Expert_video/1.*sample_rate: stored None, now 8000"):
        run_extract(work, _cfg(8000), ExecConfig())
    assert _mfcc(work).tobytes() == plain.tobytes()
    run_extract(work, _cfg(8000, overwrite=True), ExecConfig())
    ref = _work(tmp_path, "ref8k")
    run_extract(ref, _cfg(8000), ExecConfig())
    assert _mfcc(work).tobytes() == _mfcc(ref).tobytes() != plain.tobytes()
    lines = _arrays_lines(work)
    assert len(lines) == 3 and {r["version"] for r in lines} == {1}
    # the same settings again: nothing to do
    s = run_extract(work, _cfg(8000), ExecConfig())
    assert sum(r["extracted"] for r in s["shards"]) == 0


def test_changed_audio_is_extracted_again(tmp_path):
    work = _work(tmp_path)
    run_extract(work, _cfg(), ExecConfig())
    before = _mfcc(work)
    wav = tmp_path / "media/a2.wav"
    # same bytes, new mtime: not redone
    os.utime(wav, ns=(1_000_000_000, 1_000_000_000))
    s = run_extract(work, _cfg(), ExecConfig())
    assert sum(r["extracted"] for r in s["shards"]) == 0
    x, sr = sf.read(wav, dtype="float32")
    sf.write(wav, x[::-1].copy(), sr)  # new content
    s = run_extract(work, _cfg(), ExecConfig())
    assert sum(r["extracted"] for r in s["shards"]) == 1 and sum(r["redone"] for r in s["shards"]) == 1
    ref = _work(tmp_path, "ref")
    run_extract(ref, _cfg(), ExecConfig())
    assert _mfcc(work).tobytes() == _mfcc(ref).tobytes() != before.tobytes()
    assert len(_arrays_lines(work)) == 3
