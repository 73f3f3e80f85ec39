"""Raw session readers (NoXI, RECOLA, synthetic layouts) and the MARS reader."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from reactcli.corpora.mars import MarsConfig, prepare_mars
from reactcli.manifest.ids import group_of
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


# ------------------------------------------------------------------ identity maps
def _identity_map(tmp_path: Path, mapping) -> Path:
    path = tmp_path / "identities.json"
    path.write_text(json.dumps(mapping) if not isinstance(mapping, str) else mapping)
    return path


def _nothing_written(work: Path) -> bool:
    return not work.exists() or not any(work.rglob("*"))


@pytest.fixture(scope="module")
def recurring_corpus(tmp_path_factory) -> Path:
    """A tiny raw synthetic corpus: 2 NoXI sessions of 2.4 s whose Expert is one recurring person."""
    from reactcli.synthetic import SynthConfig, synthesize

    root = tmp_path_factory.mktemp("idraw") / "corpus"
    synthesize(root, config=SynthConfig(layout="raw", sessions=2, minutes=0.04, clip_seconds=1, size=16, seed=3,
                                        workers=1, recurring_experts=1))
    return root


def test_raw_identity_map_joins_recurring_expert_after_clip(cli, recurring_corpus, tmp_path) -> None:
    from reactcli.manifest.identities import IdentityResolver
    from reactcli.manifest.items import load_items

    root, work = recurring_corpus, tmp_path / "work"
    ids = root / "truth" / "identities.json"  # raw folder names: NoXI/<session>/Expert
    a, b = "NoXI/001_2016-03-17_Paris", "NoXI/002_2016-03-18_Nottingham"
    assert json.loads(ids.read_text())[f"{a}/Expert"] == json.loads(ids.read_text())[f"{b}/Expert"]
    # every session in val: mirrored items make both Experts listeners
    res = cli("prepare", "synthetic", "--root", root, "--work", work, "--split-rule", "cycle", "--split-cycle", "val",
              "--identities", ids)
    assert res.exit_code == 0, res.output
    assert f"identities: 3 persons (from {ids})" in " ".join(res.output.split())  # expert-1 + two novices
    kept = json.loads((work / "manifests/identities.json").read_text())
    assert sorted(kept) == [f"{s}/{p}_video" for s in (a, b) for p in ("Expert", "Novice")]  # as clip ids name them
    assert json.loads((work / "reports/prepare-synthetic.json").read_text())["identities"] == 3
    res = cli("clip", "--work", work, "--clip-seconds", "1", "--stride", "1", "--frames", "26", "--preset", "ultrafast")
    assert res.exit_code == 0, res.output
    val = load_items(work, "val")  # 2 sessions x 2 clips = 4 items, then 4 mirrored (Expert listens)
    assert val.n == 8
    experts = [i for i in range(val.n) if "/Expert_video/" in val.pairs[i].listener]
    assert {val.pairs[i].listener.rsplit("/", 2)[0] for i in experts} == {a, b}
    assert len({val.listener_id(i) for i in experts}) == 1  # one person across both sessions
    assert len({val.listener_id(i) for i in range(val.n)}) == 3
    resolve = IdentityResolver.from_work(work)
    assert resolve(f"{a}/Expert_video/1") == resolve(f"{b}/Expert_video/2") == "NoXI/expert-1"
    # prepared again without a map: the old one must not linger
    res = cli("prepare", "synthetic", "--root", root, "--work", work, "--split-rule", "cycle", "--split-cycle", "val")
    assert res.exit_code == 0, res.output
    assert "identities:" not in res.output
    assert not (work / "manifests/identities.json").exists()
    assert json.loads((work / "reports/prepare-synthetic.json").read_text())["identities"] is None
    val = load_items(work, "val")
    assert len({val.listener_id(i) for i in experts}) == 2


@pytest.mark.parametrize("content, expected", [
    ("{not json", "identities.json: not valid JSON"),
    ('["a", "b"]', "identities.json: expected a JSON object"),
    ('{"NoXI/001_2016-03-17_Paris/Expert": ""}',
     "identities.json: entry 'NoXI/001_2016-03-17_Paris/Expert': expected a non-empty identity string"),
    ('{"RECOLA/group-1/P25": "a"}', "identities.json: none of its 1 keys (e.g. 'RECOLA/group-1/P25') names a participant"),
    ('{"NoXI/001_2016-03-17_Paris/Expert": "a", "NoXI/001_2016-03-17_Paris/Expert_video": "b"}',
     "identities.json: entries 'NoXI/001_2016-03-17_Paris/Expert' and 'NoXI/001_2016-03-17_Paris/Expert_video' "
     "name the same person"),
    (None, "missing.json: identity map not found"),
])
def test_raw_bad_identity_map_named_error_nothing_written(cli, recurring_corpus, tmp_path, content, expected) -> None:
    work = tmp_path / "work"
    ids = _identity_map(tmp_path, content) if content is not None else tmp_path / "missing.json"
    res = cli("prepare", "synthetic", "--root", recurring_corpus, "--work", work, "--identities", ids)
    assert res.exit_code != 0
    flat = " ".join(res.output.split())
    assert expected in flat, res.output
    assert "Traceback" not in res.output
    assert _nothing_written(work)


def test_raw_identity_map_names_aliases_and_clip_keys(tmp_path) -> None:
    """Raw folder names are rewritten to the clip ids' names; clip keys of a participant are kept."""
    root, work = tmp_path / "r", tmp_path / "w"
    noxi_session(root, "010_2016-03-25_Paris")
    noxi_session(root, "003_2016-03-19_Augsburg")
    recola_group(root, "group-1")
    ids = _identity_map(tmp_path, {
        "NoXI/010_2016-03-25_Paris/Expert": "host",             # raw folder name
        "NoXI/003_2016-03-19_Augsburg/Expert_video": "host",    # clip ids' name
        "NoXI/003_2016-03-19_Augsburg/Novice/2": "guest",       # one clip, raw folder name
        "RECOLA/group-1/P25/3": "host",                         # one clip
        "NoXI/003_2016-03-19_Augsburg": "not a participant",
        "Other/corpus/person": "z",
    })
    s = prepare_raw(root, work, [NOXI_LAYOUT, RECOLA_LAYOUT], RawConfig(identities=str(ids), **NOPROBE))
    kept = json.loads((work / "manifests/identities.json").read_text())
    assert kept == {"NoXI/010_2016-03-25_Paris/Expert_video": "host", "NoXI/003_2016-03-19_Augsburg/Expert_video": "host",
                    "NoXI/003_2016-03-19_Augsburg/Novice_video/2": "guest", "RECOLA/group-1/P25/3": "host"}
    # 6 participants, two of them one host; the guest clip adds a person, P25's clip joins the host
    assert s.identities == 6
    assert json.loads(Path(s.report_path).read_text())["identities"] == 6


def test_mars_identity_map(tmp_path) -> None:
    root, work = tmp_path / "mars", tmp_path / "w"
    for session, clip in (("session1", "1"), ("session1", "2"), ("session2", "1")):
        for side in ("speaker", "listener"):
            touch(root / "val/video-face-crop" / side / session / f"{clip}.mp4")
            touch(root / "val/audio" / side / session / f"{clip}.wav")
    ids = _identity_map(tmp_path, {"MARS/val-session1-1/speaker": "s1", "MARS/val-session1-2/speaker": "s1"})
    s = prepare_mars(root, work, MarsConfig(probe=False, identities=str(ids)))
    assert s.identities == 5  # 6 participants, the speaker of session1 in two recordings
    assert json.loads((work / "manifests/identities.json").read_text()) == json.loads(ids.read_text())
    assert json.loads(Path(s.report_path).read_text())["identities"] == 5
    bad = _identity_map(tmp_path, {"MARS/val-session3-1/speaker": "x"})
    with pytest.raises(InputError, match=r"identities\.json: none of its 1 keys"):
        prepare_mars(root, tmp_path / "w2", MarsConfig(probe=False, identities=str(bad)))
    assert _nothing_written(tmp_path / "w2")
    prepare_mars(root, work, MarsConfig(probe=False))
    assert not (work / "manifests/identities.json").exists()
