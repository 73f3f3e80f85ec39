"""Raw session readers (NoXI, RECOLA, synthetic layouts) and the MARS reader."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from reactcli.corpora.mars import MarsConfig, group_of, prepare_mars
from reactcli.corpora.raw import (
    NOXI_LAYOUT,
    RawConfig,
    assign_splits,
    prepare_noxi,
    prepare_raw,
    prepare_recola,
    RECOLA_LAYOUT,
)
from reactcli.errors import ConfigError, InputError
from reactcli.manifest import SessionRecord, read_manifest


def touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def noxi_session(root: Path, name: str, sidecars: bool = True) -> None:
    for p in ("Expert", "Novice"):
        touch(root / "NoXI" / name / p / "video.mp4")
        touch(root / "NoXI" / name / p / "audio.wav")
        if sidecars:
            touch(root / "NoXI" / name / p / "emotion.csv")
            touch(root / "NoXI" / name / p / "3dmm.npy")


def recola_group(root: Path, group: str, persons=("P26", "P25")) -> None:
    for p in persons:  # created listener-first: the reader must still put P25 first
        for f in (f"{p}.mp4", f"{p}.wav", f"{p}_emotion.csv", f"{p}_3dmm.npy"):
            touch(root / "RECOLA" / group / p / f)


NOPROBE = dict(probe=False)


def test_noxi_and_recola_layouts(tmp_path) -> None:
    root = tmp_path / "r"
    noxi_session(root, "010_2016-03-25_Paris")
    noxi_session(root, "003_2016-03-19_Augsburg", sidecars=False)
    recola_group(root, "group-1")
    recola_group(root, "group-2", ("P42", "P41"))
    s = prepare_raw(root, tmp_path / "w", [NOXI_LAYOUT, RECOLA_LAYOUT], RawConfig(**NOPROBE))
    assert s.sessions == 4 and not s.skipped
    sess = read_manifest(tmp_path / "w/manifests/sessions.jsonl", SessionRecord)
    assert [x.id for x in sess] == ["NoXI/003_2016-03-19_Augsburg", "NoXI/010_2016-03-25_Paris",
                                   "RECOLA/group-1", "RECOLA/group-2"]
    assert [p.person for p in sess[1].participants] == ["Expert", "Novice"]
    assert [p.person for p in sess[2].participants] == ["P25", "P26"]
    assert [p.person for p in sess[3].participants] == ["P41", "P42"]
    assert sess[0].participants[0].sidecars == {}  # sidecars are optional
    assert sess[2].participants[0].sidecars == {
        "emotion": str(root / "RECOLA/group-1/P25/P25_emotion.csv"), "tdmm": str(root / "RECOLA/group-1/P25/P25_3dmm.npy")}
    assert sess[1].participants[1].audio == str(root / "NoXI/010_2016-03-25_Paris/Novice/audio.wav")
    # default cycle over sorted ids: train, val, test, train
    assert [x.split for x in sess] == ["train", "val", "test", "train"]


def test_unmatched_session_named_and_skip_bad(tmp_path) -> None:
    root = tmp_path / "r"
    noxi_session(root, "001_a")
    noxi_session(root, "002_b")
    (root / "NoXI/002_b/Novice/video.mp4").unlink()
    with pytest.raises(InputError) as err:
        prepare_noxi(root, tmp_path / "w", RawConfig(**NOPROBE))
    msg = str(err.value)
    assert "NoXI/002_b: no video file for Novice" in msg and "Novice/video.mp4" in msg and "--skip-bad" in msg
    assert not (tmp_path / "w/manifests/sessions.jsonl").exists()
    s = prepare_noxi(root, tmp_path / "w", RawConfig(skip_bad=True, **NOPROBE))
    assert s.sessions == 1 and s.skipped[0].startswith("NoXI/002_b: ")
    report = json.loads(Path(s.report_path).read_text())
    assert report["skipped"] == s.skipped
    # require_sidecars turns a missing sidecar into a problem
    (root / "NoXI/001_a/Expert/3dmm.npy").unlink()
    with pytest.raises(InputError, match="NoXI/001_a: no tdmm file for Expert"):
        prepare_noxi(root, tmp_path / "w", RawConfig(require_sidecars=True, skip_bad=False, **NOPROBE))


def test_custom_patterns_and_glob(tmp_path) -> None:
    root = tmp_path / "r"
    for p in ("Expert", "Novice"):
        touch(root / "sessions" / "s1" / f"{p}_face.mp4")
        touch(root / "sessions" / "s1" / f"{p}_mic.wav")
    touch(root / "sessions" / "s1" / "Expert" / "video.mp4")  # first alternative wins
    with pytest.raises(InputError, match="no session folders matching NoXI"):
        prepare_noxi(root, tmp_path / "w", RawConfig(**NOPROBE))
    cfg = RawConfig(session_glob="sessions/*", probe=False,
                    patterns={"video": ("{person}/video.mp4", "{person}_face.mp4"), "audio": ("{person}_mic.wav",)})
    s = prepare_noxi(root, tmp_path / "w", cfg)
    sess = read_manifest(tmp_path / "w/manifests/sessions.jsonl", SessionRecord)[0]
    assert s.sessions == 1 and sess.id == "NoXI/s1"
    assert sess.participants[0].video == str(root / "sessions/s1/Expert/video.mp4")
    assert sess.participants[1].video == str(root / "sessions/s1/Novice_face.mp4")
    assert sess.participants[1].audio == str(root / "sessions/s1/Novice_mic.wav")


def test_splits_deterministic() -> None:
    ids = [f"NoXI/{k:03d}" for k in range(7)]
    cyc = ("train", "val", "test", "train", "train")
    got = assign_splits(list(reversed(ids)), "cycle", cyc)
    assert [got[i] for i in ids] == ["train", "val", "test", "train", "train", "train", "val"]
    h = assign_splits(ids, "hash", cyc)
    assert assign_splits(ids[:3], "hash", cyc) == {i: h[i] for i in ids[:3]}  # stable under removal
    assert set(assign_splits(ids, "cycle", ("test",)).values()) == {"test"}
    with pytest.raises(ConfigError):
        assign_splits(ids, "truth", cyc)
    with pytest.raises(ConfigError):
        assign_splits(ids, "random", cyc)


def test_recola_wrong_person_count(tmp_path) -> None:
    root = tmp_path / "r"
    recola_group(root, "group-3", ("P45",))
    with pytest.raises(InputError, match="group-3: expected 2 participant folders"):
        prepare_recola(root, tmp_path / "w", RawConfig(**NOPROBE))


# ------------------------------------------------------------------ MARS


def mars_clip(root: Path, split: str, session: str, clip: str, frames: int = 61, fps: int = 30) -> None:
    from tests.media.synth import write_index_video, write_ramp_wav

    for side in ("speaker", "listener"):
        v = root / split / "video-face-crop" / side / session / f"{clip}.mp4"
        v.parent.mkdir(parents=True, exist_ok=True)
        write_index_video(v, frames, fps=fps, size=64)
        a = root / split / "audio" / side / session / f"{clip}.wav"
        a.parent.mkdir(parents=True, exist_ok=True)
        write_ramp_wav(a, frames / fps)
        for folder, d in (("facial-attributes", 25), ("coefficients", 58)):
            f = root / split / folder / side / session / f"{clip}.npy"
            f.parent.mkdir(parents=True, exist_ok=True)
            arr = np.zeros((frames, d), np.float32)
            arr[:, 0] = np.arange(frames)
            np.save(f, arr)


def test_mars_reader_and_session_appropriateness(tmp_path, cli) -> None:
    root = tmp_path / "mars"
    mars_clip(root, "val", "session1", "1")
    mars_clip(root, "val", "session1", "2")
    mars_clip(root, "val", "session2", "1")
    work = tmp_path / "w"
    res = cli("prepare", "mars", "--root", root, "--work", work)
    assert res.exit_code == 0, res.output
    sess = read_manifest(work / "manifests/sessions.jsonl", SessionRecord)
    assert [s.id for s in sess] == ["MARS/val-session1-1", "MARS/val-session1-2", "MARS/val-session2-1"]
    assert sess[0].fps == 30.0 and abs(sess[0].duration - 61 / 30) < 1e-6
    assert [p.person for p in sess[0].participants] == ["speaker", "listener"]
    assert group_of(sess[1].id) == "val/session1"
    res = cli("clip", "--work", work, "--clip-seconds", "1", "--stride", "1", "--frames", "26", "--preset", "ultrafast")
    assert res.exit_code == 0, res.output
    a = np.load(work / "appropriate/val.npy")
    # 3 recordings x 2 clips = 6 items, mirrored = 12; items of session1 are 0..3 and 6..9
    g = np.array([1, 1, 1, 1, 2, 2] * 2)
    np.testing.assert_array_equal(a, (g[:, None] == g[None, :]).astype(np.uint8))
    # sidecars: 30 fps rows sliced to 25 fps clip frames (nearest frame)
    from reactcli.corpora.common import load_emotion_csv
    from reactcli.media.clip import source_frame_indices

    emo = load_emotion_csv(work / "clips/Emotion/MARS/val-session1-2/listener/2.csv", 26)
    np.testing.assert_array_equal(emo[:, 0], source_frame_indices(1.0, 26, 25, 30))


def test_mars_missing_side_named(tmp_path) -> None:
    root = tmp_path / "mars"
    touch(root / "train/video-face-crop/speaker/session4/3.mp4")
    touch(root / "train/audio/speaker/session4/3.wav")
    with pytest.raises(InputError, match=r"listener/session4/3\.mp4: video not found"):
        prepare_mars(root, tmp_path / "w", MarsConfig(probe=False))
    with pytest.raises(InputError, match="not a MARS session id"):
        group_of("NoXI/001")
