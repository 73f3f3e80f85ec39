"""The clip stage end to end: synthetic raw corpus -> prepare -> clip -> extract, frame accuracy
on videos whose frames encode their index, 1 job == 2 jobs, resume, and bad inputs via the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from typer.testing import CliRunner

from reactcli.corpora.common import load_emotion_csv, load_tdmm_npy
from reactcli.manifest import ClipRecord, PairRecord, read_manifest
from reactcli.media.clip import source_frame_indices
from reactcli.media.probe import probe
from reactcli.storage import FeatureStore
from tests.media.synth import decode_indices, write_index_video, write_ramp_wav

SEED = 5


def invoke(*args):
    from reactcli.cli.main import app

    res = CliRunner().invoke(app, [str(a) for a in args])
    return res, " ".join(res.output.split())


def make_session(root: Path, name: str, frames: int = 101, fps: int = 25, audio_s: float | None = None,
                 size: int = 64) -> Path:
    """A NoXI-layout session whose video frame i shows i and whose sidecar column 0 holds i."""
    for person in ("Expert", "Novice"):
        d = root / "NoXI" / name / person
        d.mkdir(parents=True, exist_ok=True)
        write_index_video(d / "video.mp4", frames, fps=fps, size=size)
        write_ramp_wav(d / "audio.wav", audio_s if audio_s is not None else frames / fps)
        emo = np.zeros((frames, 25), np.float32)
        emo[:, 0] = np.arange(frames)
        header = ",".join(f"c{k}" for k in range(25))
        np.savetxt(d / "emotion.csv", emo, fmt="%.9g", delimiter=",", header=header, comments="")
        td = np.zeros((frames, 58), np.float32)
        td[:, 0] = np.arange(frames)
        np.save(d / "3dmm.npy", td)
    return root / "NoXI" / name


SHORT = ("--clip-seconds", "2", "--stride", "2", "--frames", "51", "--preset", "ultrafast")


# ------------------------------------------------------------------ synthetic corpus end to end


def run_pipeline(root: Path, work: Path, synth_args: str, clip_args: str, jobs: int = 1, targets=("synth", "all")):
    """Run pipelines/rawsessions/Makefile unchanged (only its documented variables set)."""
    import shutil
    import subprocess
    import sys

    make = shutil.which("make")
    if make is None:
        pytest.skip("make not installed")
    pipe = Path(__file__).resolve().parents[2] / "pipelines" / "rawsessions"
    cmd = [make, "-C", str(pipe), *targets, f"ROOT={root}", f"WORK={work}", f"JOBS={jobs}",
           f"REACTCLI={sys.executable} -m reactcli.cli.main", f"SYNTH_ARGS={synth_args}", f"CLIP_ARGS={clip_args}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return " ".join(proc.stdout.split())


@pytest.fixture(scope="module")
def synth_runs(tmp_path_factory):
    """1 job: the rawsessions pipeline (synth -> prepare -> clip -> extract); 2 jobs: the CLI."""
    base = tmp_path_factory.mktemp("clipstage")
    root = base / "raw"
    works = {1: base / "work1", 2: base / "work2"}
    run_pipeline(root, works[1], f"--sessions 1 --minutes 1 --size 32 --seed {SEED} --workers 2",
                 "--preset ultrafast", jobs=1)
    work = works[2]
    for args in (("prepare", "synthetic", "--root", root, "--work", work),
                 ("clip", "--work", work, "--num-jobs", 2, "--preset", "ultrafast"),
                 ("extract", "--work", work, "--features", "mfcc,emotion,tdmm", "--num-jobs", 2)):
        res, flat = invoke(*args)
        assert res.exit_code == 0, flat
    return root, works


def test_synthetic_prepare_clip_extract(synth_runs) -> None:
    root, works = synth_runs
    work = works[1]
    clips = read_manifest(work / "manifests/clips.jsonl", ClipRecord)
    # 1 session x 2 people x 2 clips (1501 frames = 60.04 s: the 40 ms remainder is dropped)
    assert len(clips) == 4
    store = FeatureStore(work)
    for c in clips:
        assert c.num_frames == 751 and c.fps == 25.0
        info = probe(c.video)
        assert info.num_frames == 751 and info.fps == 25.0
        assert sf.info(c.audio).samplerate == 44100 and sf.info(c.audio).frames == round(751 / 25 * 44100)
        assert store.read(c.id, "mfcc").shape == (751, 78)
        assert store.read(c.id, "emotion").shape == (751, 25)
        assert store.read(c.id, "tdmm").shape == (751, 58)
    assert {c.start for c in clips} == {0.0, 30.0}
    pairs = read_manifest(work / "manifests/pairs.jsonl", PairRecord)
    by_split: dict[str, list[PairRecord]] = {}
    for p in pairs:
        by_split.setdefault(p.split, []).append(p)
    # synth: session 0 -> train (not mirrored): one item per clip, Expert speaks
    assert list(by_split) == ["train"] and len(by_split["train"]) == 2
    assert [(p.speaker, p.listener) for p in by_split["train"]] == [
        (f"NoXI/001_2016-03-17_Paris/Expert_video/{i}", f"NoXI/001_2016-03-17_Paris/Novice_video/{i}") for i in (1, 2)]


def test_one_job_equals_two_jobs(synth_runs) -> None:
    _, works = synth_runs
    for name in ("clips.jsonl", "pairs.jsonl"):
        a = (works[1] / "manifests" / name).read_text().replace(str(works[1]), "W")
        b = (works[2] / "manifests" / name).read_text().replace(str(works[2]), "W")
        assert a == b
    s1, s2 = FeatureStore(works[1]), FeatureStore(works[2])
    refs = s1.refresh()
    assert len(refs) == 4 * 3 and len(s2.refresh()) == 4 * 3
    for r in refs:
        assert s1.read(r.clip, r.feature).tobytes() == s2.read(r.clip, r.feature).tobytes()
    # the clip files themselves (H.264 videos, WAVs, sidecars) are byte-identical too
    files = {w: sorted(p.relative_to(w / "clips") for p in (w / "clips").rglob("*") if p.is_file())
             for w in works.values()}
    assert files[works[1]] == files[works[2]] and len(files[works[1]]) == 4 * 4
    for rel in files[works[1]]:
        assert (works[1] / "clips" / rel).read_bytes() == (works[2] / "clips" / rel).read_bytes(), rel


def test_sliced_sidecars_equal_react_layout_truth(synth_runs, tmp_path) -> None:
    """Clipping the raw sessions reproduces the clip features of the REACT layout (same seed)."""
    from reactcli.synthetic import synthesize

    root, works = synth_runs
    react = tmp_path / "react"
    synthesize(react, layout="react", sessions=3, minutes=1, size=32, seed=SEED, video=False)
    store = FeatureStore(works[1])
    checked = 0
    for c in read_manifest(works[1] / "manifests/clips.jsonl", ClipRecord):
        split = c.split
        folder = c.session.split("/", 1)[1]
        p12 = "P1" if c.person.startswith("Expert") else "P2"
        want_e = load_emotion_csv(react / split / "Emotion" / "NoXI" / folder / p12 / f"{c.index}.csv", 751)
        want_t = load_tdmm_npy(react / split / "3D_FV_files" / "NoXI" / folder / c.person / f"{c.index}.npy", 751)
        np.testing.assert_array_equal(store.read(c.id, "emotion"), want_e)
        np.testing.assert_array_equal(store.read(c.id, "tdmm"), want_t)
        checked += 1
    assert checked == 4


def test_rerun_reuses_clips(synth_runs) -> None:
    _, works = synth_runs
    work = works[2]
    vids = sorted((work / "clips" / "Video_files").rglob("*.mp4"))
    before = {p: p.stat().st_mtime_ns for p in vids}
    res, flat = invoke("clip", "--work", work)
    assert res.exit_code == 0, flat
    assert "cut 0, reused 4" in flat
    assert {p: p.stat().st_mtime_ns for p in vids} == before


# ------------------------------------------------------------------ frame accuracy on index videos


@pytest.fixture(scope="module")
def index_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("index")
    out = {}
    for fps, frames in ((25, 1501),):
        root = base / f"r{fps}"
        make_session(root, "001_2016-01-01_Paris", frames=frames, fps=fps)
        work = base / f"w{fps}"
        for args in (("prepare", "noxi", "--root", root, "--work", work, "--split-cycle", "val"),
                     ("clip", "--work", work, "--preset", "ultrafast")):
            res, flat = invoke(*args)
            assert res.exit_code == 0, flat
        out[fps] = work
    return out


def test_frame_at_30s_is_frame_0_of_clip_2(index_runs) -> None:
    """(30 fps input: see test_30fps_input_converted, same check on shorter clips.)"""
    fps = 25
    work = index_runs[fps]
    clips = {c.id: c for c in read_manifest(work / "manifests/clips.jsonl", ClipRecord)}
    c2 = clips["NoXI/001_2016-01-01_Paris/Expert_video/2"]
    got = decode_indices(Path(c2.video))
    want = source_frame_indices(30.0, 751, 25, fps)
    assert len(got) == 751
    assert got == want.tolist()
    assert got[0] == 750 and got[-1] == 1500
    # val is mirrored: items 0..1 Expert -> Novice, items 2..3 the same pairs swapped
    pairs = read_manifest(work / "manifests/pairs.jsonl", PairRecord)
    assert [p.index for p in pairs] == [0, 1, 2, 3] and {p.split for p in pairs} == {"val"}
    assert "Expert_video" in pairs[0].speaker and "Novice_video" in pairs[0].listener
    assert (pairs[2].speaker, pairs[2].listener, pairs[2].mirrored) == (pairs[0].listener, pairs[0].speaker, True)
    # the sliced sidecars follow the same frames as the video
    emo = load_emotion_csv(c2.sidecars["emotion"], 751)
    np.testing.assert_array_equal(emo[:, 0], want.astype(np.float32))
    np.testing.assert_array_equal(np.load(c2.sidecars["tdmm"])[:, 0], want.astype(np.float32))


# ------------------------------------------------------------------ the audio rate


def test_clip_defaults_give_the_challenge_mfcc_of_a_44k_session(tmp_path) -> None:
    """The official WAVs (and so the challenge's MFCC features) are 44.1 kHz: `clip` at its default
    rate keeps the session's samples, so extract gives the MFCC of the original audio of each span
    (computed here by the independent Kaldi reference of tests/features/test_mfcc.py)."""
    from tests.features.test_mfcc import challenge_feature_ref

    sr = 44100
    root = tmp_path / "r"
    make_session(root, "001_a", frames=101)
    rng = np.random.default_rng(SEED)
    t = np.arange(int(101 / 25 * sr)) / sr
    originals = {}
    for k, person in enumerate(("Expert", "Novice")):
        # voiced (harmonics of a gliding pitch, amplitude-modulated) + noise, written as 16-bit PCM
        f0 = 140 + 60 * k + 30 * np.sin(2 * np.pi * 0.7 * t)
        phase = 2 * np.pi * np.cumsum(f0) / sr
        x = sum(np.sin(h * phase) / h for h in range(1, 12)) * (0.5 + 0.5 * np.sin(2 * np.pi * 2.3 * t)) ** 2
        x = 0.25 * x + 0.01 * rng.standard_normal(t.size)
        path = root / "NoXI/001_a" / person / "audio.wav"
        sf.write(path, x, sr, subtype="PCM_16")
        originals[person] = sf.read(path, dtype="float32")[0]
    work = _prepared(tmp_path, root)
    res, flat = invoke("clip", "--work", work, *SHORT)  # short windows; audio options at their defaults
    assert res.exit_code == 0, flat
    res, flat = invoke("extract", "--work", work, "--features", "mfcc")
    assert res.exit_code == 0, flat
    store = FeatureStore(work)
    clips = read_manifest(work / "manifests/clips.jsonl", ClipRecord)
    assert len(clips) == 4
    for c in clips:
        y, rate = sf.read(c.audio, dtype="float32")
        span = originals["Expert" if "Expert" in c.person else "Novice"][round(c.start * sr):][:len(y)]
        assert rate == sr and len(y) == round(51 / 25 * sr) == len(span)
        np.testing.assert_array_equal(y, span)  # the session's own samples, not resampled
        ref = challenge_feature_ref(span, sr, 51)
        np.testing.assert_allclose(store.read(c.id, "mfcc"), ref, rtol=1e-3, atol=2e-3)
    # the old default (16 kHz clips) gives other features: the check above can tell them apart
    work16 = _prepared(tmp_path / "w16", root)
    res, flat = invoke("clip", "--work", work16, *SHORT, "--sample-rate", "16000")
    assert res.exit_code == 0, flat
    res, flat = invoke("extract", "--work", work16, "--features", "mfcc")
    assert res.exit_code == 0, flat
    c = clips[0]
    span = originals["Expert"][round(c.start * sr):][:round(51 / 25 * sr)]
    got16 = FeatureStore(work16).read(c.id, "mfcc")
    assert np.abs(got16 - challenge_feature_ref(span, sr, 51)).max() > 1.0


# ------------------------------------------------------------------ bad inputs through the CLI


@pytest.fixture(scope="module")
def good_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("good")
    make_session(root, "001_a")
    make_session(root, "002_b")
    return root


def _prepared(tmp_path: Path, root: Path) -> Path:
    work = tmp_path / "w"
    res, flat = invoke("prepare", "noxi", "--root", root, "--work", work)
    assert res.exit_code == 0, flat
    return work


def _no_temp_files(folder: Path) -> None:
    assert not [p for p in folder.rglob("*") if ".tmp" in p.name or p.name.endswith(".partial")]


def test_bad_corrupt_mp4_prepare_and_clip(good_root, tmp_path) -> None:
    import shutil

    root = tmp_path / "r"
    shutil.copytree(good_root, root)
    work = _prepared(tmp_path, root)
    bad = root / "NoXI/002_b/Novice/video.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video" * 10)
    # prepare names the file
    res, flat = invoke("prepare", "noxi", "--root", root, "--work", tmp_path / "w2")
    assert res.exit_code != 0 and str(bad) in flat and "not a readable media file" in flat
    # the clip stage (manifest from before the corruption): fail names it, nothing of 002 written
    res, flat = invoke("clip", "--work", work, *SHORT)
    assert res.exit_code != 0 and "video.mp4" in flat and "002_b" in flat
    assert not (work / "manifests/clips.jsonl").exists()
    assert not list((work / "clips").rglob("002_b/*/*.mp4"))
    _no_temp_files(work)
    # skip: reported by name, the good session clipped
    res, flat = invoke("clip", "--work", work, "--on-error", "skip", *SHORT)
    assert res.exit_code == 0, flat
    assert "skipped 1 bad sessions" in flat and "002_b" in flat
    clips = read_manifest(work / "manifests/clips.jsonl", ClipRecord)
    assert {c.session for c in clips} == {"NoXI/001_a"} and len(clips) == 4
    report = json.loads((work / "reports/clip.json").read_text())
    assert report["skipped"][0].startswith("NoXI/002_b:")


def test_bad_choice_is_a_usage_error(good_root, tmp_path) -> None:
    work = _prepared(tmp_path, good_root)
    for option, value, choices in (("--mode", "fast", "'reencode', 'copy'"), ("--remainder", "pad", "'drop', 'keep'"),
                                   ("--on-error", "ignore", "'fail', 'skip'")):
        res, flat = invoke("clip", "--work", work, option, value)
        assert res.exit_code == 2 and f"'{value}' is not one of {choices}" in flat.replace("│ ", ""), flat
    assert not (work / "clips").exists()


def test_bad_missing_audio_named(tmp_path) -> None:
    root = tmp_path / "r"
    make_session(root, "001_a")
    (root / "NoXI/001_a/Expert/audio.wav").unlink()
    res, flat = invoke("prepare", "noxi", "--root", root, "--work", tmp_path / "w")
    assert res.exit_code != 0
    assert "NoXI/001_a: no audio file for Expert" in flat and "Expert/audio.wav" in flat
    assert not (tmp_path / "w/manifests/sessions.jsonl").exists()
    res, flat = invoke("prepare", "noxi", "--root", root, "--work", tmp_path / "w", "--skip-bad")
    assert res.exit_code != 0 and "every session was bad" in flat


def test_bad_audio_shorter_than_video(tmp_path) -> None:
    root = tmp_path / "r"
    make_session(root, "001_a", frames=101, audio_s=2.5)  # video 4.04 s, audio 2.5 s
    work = _prepared(tmp_path, root)
    res, flat = invoke("clip", "--work", work, *SHORT)
    assert res.exit_code != 0
    assert "audio.wav: audio lasts 2.500 s" in flat and "missing" in flat
    assert not list((work / "clips").rglob("*.mp4")) and not list((work / "clips").rglob("*.wav"))


def test_30fps_input_converted(tmp_path) -> None:
    root = tmp_path / "r"
    make_session(root, "001_a", frames=121, fps=30)  # 4.03 s at 30 fps
    work = _prepared(tmp_path, root)
    res, flat = invoke("clip", "--work", work, *SHORT)
    assert res.exit_code == 0, flat
    c = {c.id: c for c in read_manifest(work / "manifests/clips.jsonl", ClipRecord)}["NoXI/001_a/Novice_video/2"]
    want = source_frame_indices(2.0, 51, 25, 30)
    assert decode_indices(Path(c.video)) == want.tolist()
    np.testing.assert_array_equal(load_emotion_csv(c.sidecars["emotion"], 51)[:, 0], want)


def test_bad_zero_length_file(tmp_path) -> None:
    root = tmp_path / "r"
    make_session(root, "001_a")
    (root / "NoXI/001_a/Novice/3dmm.npy").write_bytes(b"")
    res, flat = invoke("prepare", "noxi", "--root", root, "--work", tmp_path / "w")
    assert res.exit_code != 0 and "Novice/3dmm.npy: tdmm file is empty (0 bytes)" in flat


def test_bad_unwritable_output(good_root, tmp_path) -> None:
    work = _prepared(tmp_path, good_root)
    (work / "clips").write_text("a file where the clip folder should be")
    res, flat = invoke("clip", "--work", work, *SHORT)
    assert res.exit_code != 0 and "clip output folder is not writable" in flat and str(work / "clips") in flat
    assert not (work / "manifests/clips.jsonl").exists()


def test_bad_missing_model_asset(good_root, tmp_path) -> None:
    work = _prepared(tmp_path, good_root)
    res, flat = invoke("clip", "--work", work, *SHORT)
    assert res.exit_code == 0, flat
    res, _ = invoke("extract", "--work", work, "--features", "wav2vec2")
    assert res.exit_code != 0
    lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "wav2vec2 checkpoint" in lines[0] and "--wav2vec2-path" in lines[0]
    assert not list((work / "features").glob("*.h5"))


def test_bad_session_too_short_and_sidecar_too_short(tmp_path) -> None:
    root = tmp_path / "r"
    make_session(root, "001_a", frames=40)  # 1.6 s: no 2 s clip
    make_session(root, "002_b")
    td = np.load(root / "NoXI/002_b/Expert/3dmm.npy")
    np.save(root / "NoXI/002_b/Expert/3dmm.npy", td[:60])  # sidecar ends at 2.4 s
    work = _prepared(tmp_path, root)
    res, flat = invoke("clip", "--work", work, "--on-error", "skip", *SHORT)
    assert res.exit_code == 0, flat
    report = json.loads((work / "reports/clip.json").read_text())
    msgs = " ".join(report["skipped"])
    assert "NoXI/001_a: NoXI/001_a: too short for one 2 s clip" in msgs
    assert "002_b/Expert/3dmm.npy: has 60 frames" in msgs
    assert not list((work / "clips").rglob("*.mp4"))


def test_interrupted_run_resumes_to_same_result(good_root, tmp_path, monkeypatch) -> None:
    import reactcli.corpora.clip_stage as stage

    ref = _prepared(tmp_path / "ref", good_root)
    res, flat = invoke("clip", "--work", ref, *SHORT)
    assert res.exit_code == 0, flat

    work = _prepared(tmp_path / "int", good_root)
    real = stage.cut_clip
    calls = {"n": 0}

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-stage
        return real(*a, **k)

    monkeypatch.setattr(stage, "cut_clip", flaky)
    res, flat = invoke("clip", "--work", work, *SHORT)
    assert res.exit_code == 130 and "interrupted" in flat
    assert not (work / "manifests/clips.jsonl").exists()
    assert len(list((work / "clips").rglob("*.mp4"))) == 2
    _no_temp_files(work)
    monkeypatch.setattr(stage, "cut_clip", real)
    res, flat = invoke("clip", "--work", work, *SHORT)
    assert res.exit_code == 0, flat
    assert "cut 6, reused 2" in flat
    a = (ref / "manifests/clips.jsonl").read_text().replace(str(ref), "W")
    b = (work / "manifests/clips.jsonl").read_text().replace(str(work), "W")
    assert a == b
    assert (ref / "manifests/pairs.jsonl").read_bytes() == (work / "manifests/pairs.jsonl").read_bytes()
    for c in read_manifest(ref / "manifests/clips.jsonl", ClipRecord):
        other = Path(c.video.replace(str(ref), str(work)))
        assert decode_indices(Path(c.video)) == decode_indices(other)
        for f in (c.audio, *c.sidecars.values()):
            assert Path(f).read_bytes() == Path(f.replace(str(ref), str(work))).read_bytes()


# ------------------------------------------------------------------ the pipeline, rerun


def test_rawsessions_pipeline_rerun_is_noop(synth_runs) -> None:
    """``make all`` again: the clip manifest is up to date and extract finds everything stored."""
    root, works = synth_runs
    out = run_pipeline(root, works[1], "", "--preset ultrafast", targets=("all",))
    assert "extracted 0 " in out
    assert len(FeatureStore(works[1]).refresh()) == 4 * 3


# ------------------------------------------------------------------ changed inputs and settings (issue 27)


def test_clip_rerun_with_other_settings_stops_and_changed_input_is_cut_again(tmp_path) -> None:
    root = tmp_path / "r"
    make_session(root, "001_a")
    work = _prepared(tmp_path, root)
    res, flat = invoke("clip", "--work", work, *SHORT)
    assert res.exit_code == 0, flat
    wav = sorted((work / "clips/Audio_files").rglob("1.wav"))[0]
    assert sf.info(wav).samplerate == 44100
    res, flat = invoke("clip", "--work", work, *SHORT, "--sample-rate", "16000")
    assert res.exit_code == 1 and "sample_rate: stored 44100, now 16000" in flat and "--overwrite" in flat
    assert "Traceback" not in res.output and sf.info(wav).samplerate == 44100
    res, flat = invoke("clip", "--work", work, *SHORT, "--sample-rate", "16000", "--overwrite")
    assert res.exit_code == 0, flat
    assert sf.info(wav).samplerate == 16000
    # a corrected sidecar: the session is cut again and the clip's CSV follows it
    emo_in = root / "NoXI/001_a/Expert/emotion.csv"
    emo = np.loadtxt(emo_in, delimiter=",", skiprows=1)
    emo[:, 1] = 7.0
    np.savetxt(emo_in, emo, fmt="%.9g", delimiter=",", header=",".join(f"c{k}" for k in range(25)), comments="")
    res, flat = invoke("clip", "--work", work, *SHORT, "--sample-rate", "16000")
    assert res.exit_code == 0, flat
    clip_csv = sorted((work / "clips/Emotion").rglob("Expert_video/1.csv"))[0]
    assert np.all(load_emotion_csv(clip_csv)[:, 1] == 7.0)
    # nothing changed: everything reused
    res, flat = invoke("clip", "--work", work, *SHORT, "--sample-rate", "16000")
    assert res.exit_code == 0, flat
    assert json.loads((work / "reports/clip.json").read_text())["cut"] == 0
