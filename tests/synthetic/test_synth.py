"""The synthetic corpus: layout, validity, determinism, and that its truth is really in the data."""

from __future__ import annotations

import csv
import json
import filecmp
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from reactcli.errors import ConfigError, InputError
from reactcli.media.encode import VideoWriter, ffmpeg_exe, write_wav
from reactcli.render.face2d import render_sequence
from reactcli.synthetic import (
    AU_TABLE,
    EMOTION_COLUMNS,
    VA_TABLE,
    MEAN_FACE,
    PERSON_P1P2,
    read_truth,
    synthesize,
)

SPLITS = ("train", "val", "test")


def _rows(root: Path, split: str) -> list[dict]:
    with open(root / f"{split}.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _emotion_path(root: Path, split: str, rel: str) -> Path:
    site, session, person, clip = rel.split("/")
    return root / split / "Emotion" / site / session / PERSON_P1P2[person] / f"{clip}.csv"


def _load_emotion(path: Path) -> np.ndarray:
    return np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64)


@pytest.fixture(scope="module")
def react(tmp_path_factory):
    """3 sessions x 1 minute, 64 px videos: 6 clip pairs, 12 videos."""
    root = tmp_path_factory.mktemp("react")
    return synthesize(root, layout="react", sessions=3, minutes=1, size=64, seed=7, workers=2)


@pytest.fixture(scope="module")
def stats(tmp_path_factory):
    """Features only, enough clips for statistics: 6 sessions x 2 min = 24 clip pairs."""
    root = tmp_path_factory.mktemp("stats")
    s = synthesize(root, layout="react", sessions=6, minutes=2, seed=11, video=False,
                   n_patterns=3, audio_rate=8000)
    spk, lis, keys = [], [], []
    for c in s.truth["clips"]:
        spk.append(_load_emotion(_emotion_path(root, c["split"], c["speaker_path"])))
        lis.append(_load_emotion(_emotion_path(root, c["split"], c["listener_path"])))
        keys.append(c)
    return s, np.stack(spk), np.stack(lis), keys


# ---- layout -----------------------------------------------------------------------------------
def test_react_layout_every_file_exists_with_the_right_shape(react) -> None:
    root = react.root
    shapes = set()
    n_pairs = 0
    for split in SPLITS:
        rows = _rows(root, split)
        assert rows, f"{split}.csv is empty"
        assert list(rows[0].keys()) == ["index", "speaker_path", "listener_path"]
        for i, row in enumerate(rows):
            assert int(row["index"]) == i
            n_pairs += 1
            for rel in (row["speaker_path"], row["listener_path"]):
                site, session, person, clip = rel.split("/")
                assert site in ("NoXI", "RECOLA") and not rel.endswith((".mp4", ".csv"))
                base = Path(site) / session / person
                assert (root / split / "Video_files" / base / f"{clip}.mp4").is_file()
                wav, rate = sf.read(root / split / "Audio_files" / base / f"{clip}.wav")
                assert rate == 16000 and wav.shape == (30 * 16000,)
                with open(_emotion_path(root, split, rel)) as fh:
                    lines = fh.read().splitlines()
                assert lines[0].split(",") == list(EMOTION_COLUMNS)
                assert len(lines) == 752 and all(len(x.split(",")) == 25 for x in lines[1:])
                arr = np.load(root / split / "3D_FV_files" / base / f"{clip}.npy")
                shapes.add(arr.shape)
                assert arr.dtype == np.float32 and np.isfinite(arr).all()
    assert shapes == {(751, 58), (1, 751, 58)}, "both 3DMM layouts must be exercised"
    assert n_pairs == 6 == len(react.truth["clips"])
    sites = {c["site"] for c in react.truth["clips"]}
    assert sites == {"NoXI", "RECOLA"}
    np.testing.assert_array_equal(np.load(react.paths["mean_face"]), MEAN_FACE)


def test_recola_and_noxi_person_names(react) -> None:
    speakers = {c["speaker_path"].split("/")[2] for c in react.truth["clips"]}
    listeners = {c["listener_path"].split("/")[2] for c in react.truth["clips"]}
    assert speakers == {"Expert_video", "P25"} and listeners == {"Novice_video", "P26"}
    emo_dirs = {p.parent.name for p in react.root.glob("*/Emotion/*/*/*/*.csv")}
    assert emo_dirs == {"P1", "P2"}


def test_neighbour_matrices_follow_the_truth(react) -> None:
    root, truth = react.root, react.truth
    for split in SPLITS:
        clips = [c for c in truth["clips"] if c["split"] == split]
        n = len(clips)
        pats = np.array([c["speaker"]["pattern"] for c in clips] + [c["listener"]["pattern"] for c in clips])
        expect = (pats[:, None] == pats[None, :]).astype(np.float32)
        A = np.load(root / "truth" / f"appropriate_{split}.npy")
        assert A.shape == (2 * n, 2 * n)
        np.testing.assert_array_equal(A, expect)
        assert (np.diag(A) == 1).all() and (A == A.T).all()
        if split != "train":
            np.testing.assert_array_equal(np.load(root / f"neighbour_emotion_{split}.npy"), A)
    # the CSV order is the truth order
    val = _rows(root, "val")
    assert [r["speaker_path"] for r in val] == [c["speaker_path"] for c in truth["clips"] if c["split"] == "val"]
    assert read_truth(root)["clips"] == truth["clips"]


# ---- validity ---------------------------------------------------------------------------------
def test_features_are_valid(stats) -> None:
    _, spk, lis, _ = stats
    e = np.concatenate([spk, lis])
    assert set(np.unique(e[..., :15])) <= {0.0, 1.0}
    assert np.abs(e[..., 15:17]).max() <= 1.0
    np.testing.assert_allclose(e[..., 17:].sum(-1), 1.0, atol=1e-4)
    assert (e[..., 17:] >= 0).all()
    rates = e[..., :15].mean((0, 1))
    # AUs are neither dead nor always on: most occur in 2-80 % of frames
    assert ((rates > 0.02) & (rates < 0.8)).sum() >= 9, rates
    # consistency: each AU occurs when the expressions that drive it are probable (AU_TABLE),
    # e.g. AU12 with Happy/Contempt; valence follows the circumplex table
    drive = e[..., 17:] @ AU_TABLE  # (clips, T, 15)
    corr = [np.corrcoef(e[..., j].ravel(), drive[..., j].ravel())[0, 1]
            for j in range(13) if 0.02 < rates[j] < 0.98]
    assert len(corr) >= 8 and np.mean(corr) > 0.4, np.round(corr, 2)
    assert np.corrcoef((e[..., 17:] @ VA_TABLE)[..., 0].ravel(), e[..., 15].ravel())[0, 1] > 0.8


def test_same_pattern_and_mode_reactions_are_alike(stats) -> None:
    # A listener's features are dominated by its *own* pattern (it is the speaker of the mirrored
    # item, and appropriateness must be recoverable from it), so the reaction is compared between
    # listeners doing the same thing themselves: same own pattern, and the same (speaker pattern,
    # listener mode) vs a different speaker pattern.
    _, _, lis, keys = stats
    feat = lis[:, :750].mean(1)
    D = np.linalg.norm(feat[:, None] - feat[None], axis=-1)
    pm = np.array([(c["speaker"]["pattern"], c["listener"]["mode"]) for c in keys])
    own = np.array([c["listener"]["pattern"] for c in keys])
    same_own = (own[:, None] == own[None]) & ~np.eye(len(pm), dtype=bool)
    same_pm = (pm[:, None] == pm[None]).all(-1) & same_own
    diff_p = (pm[:, None, 0] != pm[None, :, 0]) & same_own
    assert same_pm.sum() >= 4 and diff_p.sum() >= 20
    assert D[same_pm].mean() < 0.7 * D[diff_p].mean()


def test_listener_reacts_after_its_delay(stats) -> None:
    _, spk, lis, keys = stats
    delays = [c["listener"]["delay"] for c in keys]
    assert min(delays) >= 8 and max(delays) <= 12

    def z(x):
        return (x - x.mean(0)) / (x.std(0) + 1e-6)

    lags = np.arange(0, 31)
    score = np.zeros(len(lags))
    for s, l in zip(spk, lis):
        for k, lag in enumerate(lags):
            a, b = z(s[: 750 - lag]), z(l[lag:750])
            score[k] += ((a.T @ b / len(a)) ** 2).sum()
    # speaker -> listener coupling is strongest a few hundred ms later, not at lag 0 or 1 s
    best = int(lags[np.argmax(score)])
    assert 6 <= best <= 14, (best, np.round(score / score[0], 3))
    assert score[best] > score[0] and score[best] > score[30]


def test_personal_style_identifies_the_listener(stats) -> None:
    s, _, _, keys = stats
    root = s.root
    means, people = [], []
    for c in keys:
        site, session, person, clip = c["listener_path"].split("/")
        arr = np.load(root / c["split"] / "3D_FV_files" / site / session / person / f"{clip}.npy").reshape(751, 58)
        means.append(arr[:, :52].mean(0))
        people.append(c["listener"]["person"])
    means = np.stack(means)
    D = np.linalg.norm(means[:, None] - means[None], axis=-1) + np.eye(len(means)) * 1e9
    nn = D.argmin(1)
    acc = np.mean([people[i] == people[j] for i, j in enumerate(nn)])
    assert acc >= 0.8, acc


def test_audio_energy_follows_the_mouth(stats) -> None:
    s, spk, _, keys = stats
    rate, hop = 8000, 8000 // 25
    rms, mouth, brow = [], [], []
    for c, e in zip(keys, spk):
        site, session, person, clip = c["speaker_path"].split("/")
        wav, r = sf.read(s.root / c["split"] / "Audio_files" / site / session / person / f"{clip}.wav")
        assert r == rate
        frames = wav[: 750 * hop].reshape(750, hop)
        rms.append(np.sqrt((frames**2).mean(1)))
        mouth.append(e[:750, 13] + e[:750, 14])
        brow.append(e[:750, 2])
    rms, mouth, brow = (np.concatenate(x) for x in (rms, mouth, brow))
    r_mouth = np.corrcoef(rms, mouth)[0, 1]
    assert r_mouth > 0.3
    assert r_mouth > abs(np.corrcoef(rms, brow)[0, 1]) + 0.2


# ---- video ------------------------------------------------------------------------------------
def test_video_decodes_with_right_frames_and_matches_the_features(react) -> None:
    av = pytest.importorskip("av")
    c = react.truth["clips"][0]
    site, session, person, clip = c["listener_path"].split("/")
    mp4 = react.root / c["split"] / "Video_files" / site / session / person / f"{clip}.mp4"
    with av.open(str(mp4)) as container:
        stream = container.streams.video[0]
        assert stream.average_rate == 25 and stream.codec_context.name == "h264"
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    assert len(frames) == 751 and frames[0].shape == (64, 64, 3)
    emo = _load_emotion(_emotion_path(react.root, c["split"], c["listener_path"]))
    tdmm = np.load(react.root / c["split"] / "3D_FV_files" / site / session / person / f"{clip}.npy")
    expect = render_sequence(emo[[0, 400, 750]], tdmm.reshape(751, 58)[[0, 400, 750]], 64)
    for got, ref in zip([frames[0], frames[400], frames[750]], expect):
        assert np.abs(got.astype(int) - ref).mean() < 8  # lossy x264 + yuv420p, but the same face


# ---- determinism ------------------------------------------------------------------------------
def test_same_seed_same_bytes_other_seed_differs(tmp_path) -> None:
    kw = dict(layout="react", sessions=3, minutes=0.5, size=32, workers=1)
    a = synthesize(tmp_path / "a", seed=3, **kw)
    b = synthesize(tmp_path / "b", seed=3, **kw)
    c = synthesize(tmp_path / "c", seed=4, video=False, **{k: v for k, v in kw.items()})
    files = sorted(p.relative_to(a.root) for p in a.root.rglob("*") if p.is_file())
    assert any(str(f).endswith(".mp4") for f in files) and len(files) > 20
    for f in files:
        assert filecmp.cmp(a.root / f, b.root / f, shallow=False), f"{f} differs between identical runs"
    e_a = (a.root / "val.csv").read_text()
    assert e_a == (c.root / "val.csv").read_text()  # same plan ...
    rel = _rows(a.root, "val")[0]["listener_path"]
    assert not np.array_equal(_load_emotion(_emotion_path(a.root, "val", rel)),
                              _load_emotion(_emotion_path(c.root, "val", rel)))  # ... other behaviour


def test_raw_layout_names_and_clipping_reproduces_the_react_clips(tmp_path) -> None:
    raw = synthesize(tmp_path / "raw", layout="raw", sessions=3, minutes=1, size=16, seed=5, video=True, workers=1)
    rc = synthesize(tmp_path / "react", layout="react", sessions=3, minutes=1, seed=5, video=False)
    root = raw.root
    expert = root / "NoXI" / "001_2016-03-17_Paris" / "Expert"
    for name in ("video.mp4", "audio.wav", "emotion.csv", "3dmm.npy"):
        assert (expert / name).is_file(), name
        assert (root / "NoXI" / "001_2016-03-17_Paris" / "Novice" / name).is_file()
    for p in ("P25", "P26"):
        d = root / "RECOLA" / "group-1" / p
        for name in (f"{p}.mp4", f"{p}.wav", f"{p}_emotion.csv", f"{p}_3dmm.npy"):
            assert (d / name).is_file(), name
    emo = _load_emotion(expert / "emotion.csv")
    tdmm = np.load(expert / "3dmm.npy")
    wav, rate = sf.read(expert / "audio.wav", dtype="float32")
    assert emo.shape == (1501, 25) and tdmm.shape == (1501, 58)
    assert wav.shape == (60 * rate + rate // 25,)
    sess = raw.truth["sessions"][0]
    assert sess["frames"] == 1501 and [(g["start"], g["end"]) for g in sess["segments"]] == [(0, 750), (750, 1501)]
    # cutting the raw session at [750, 1501) gives exactly the REACT clip 2 of the same session
    clip2 = _load_emotion(rc.root / "train" / "Emotion" / "NoXI" / "001_2016-03-17_Paris" / "P1" / "2.csv")
    np.testing.assert_array_equal(emo[750:1501], clip2)
    clip_wav, _ = sf.read(rc.root / "train" / "Audio_files" / "NoXI" / "001_2016-03-17_Paris" / "Expert_video" / "2.wav", dtype="float32")
    np.testing.assert_array_equal(wav[30 * rate : 60 * rate], clip_wav)
    assert sess["segments"][1]["pattern"][0] == rc.truth["clips"][1]["speaker"]["pattern"]


# ---- errors and media helpers -----------------------------------------------------------------
def test_config_errors(tmp_path) -> None:
    with pytest.raises(ConfigError, match="sessions >= 3"):
        synthesize(tmp_path, layout="react", sessions=2, video=False)
    with pytest.raises(ConfigError, match="layout"):
        synthesize(tmp_path, layout="udiva", video=False)
    with pytest.raises(ConfigError, match="shorter than one clip"):
        synthesize(tmp_path, layout="raw", sessions=1, minutes=0.2, video=False)
    with pytest.raises(ConfigError, match="unknown synth option"):
        synthesize(tmp_path, sessions=3, video=False, colour="blue")


def test_video_writer_failure_leaves_no_file_and_carries_stderr(tmp_path) -> None:
    out = tmp_path / "x.mp4"
    frames = np.zeros((3, 16, 16, 3), np.uint8)
    with pytest.raises(InputError, match="ffmpeg failed") as exc:
        with VideoWriter(out, 16, 16, 25, preset="no-such-preset") as vw:
            vw.write(frames)
    assert "preset" in str(exc.value).lower()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(InputError, match="expected uint8"):
        with VideoWriter(out, 16, 16, 25) as vw:
            vw.write(np.zeros((2, 8, 8, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_ffmpeg_env_override_and_wav_checks(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("REACTCLI_FFMPEG", str(tmp_path / "nope"))
    with pytest.raises(InputError, match="REACTCLI_FFMPEG"):
        ffmpeg_exe()
    monkeypatch.delenv("REACTCLI_FFMPEG")
    assert Path(ffmpeg_exe()).is_file()
    with pytest.raises(InputError, match="NaN"):
        write_wav(tmp_path / "a.wav", np.array([0.0, np.nan]), 16000)
    with pytest.raises(InputError, match="exceeds"):
        write_wav(tmp_path / "a.wav", np.array([0.0, 1.5]), 16000)
    assert not (tmp_path / "a.wav").exists()
    x = np.linspace(-0.5, 0.5, 100)
    write_wav(tmp_path / "a.wav", x, 16000)
    back, r = sf.read(tmp_path / "a.wav")
    assert r == 16000 and np.abs(back - x).max() < 1e-4


def test_cli_command(tmp_path) -> None:
    import typer
    from typer.testing import CliRunner

    from reactcli.cli.synth import command

    app = typer.Typer()
    app.command("synth")(command)

    @app.callback()
    def _root() -> None:  # a group, as in the real CLI
        pass

    res = CliRunner().invoke(app, ["synth", "--out", str(tmp_path / "c"), "--sessions", "3", "--minutes", "0.5", "--no-video"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "c" / "truth" / "truth.json").is_file()
    assert "clips_val 1" in res.output.replace("\n", " ")
    bad = CliRunner().invoke(app, ["synth", "--out", str(tmp_path / "d"), "--sessions", "2", "--no-video"])
    assert bad.exit_code == 1 and "sessions >= 3" in bad.output


def _between_listener_share(s) -> np.ndarray:
    """Share of the variance of clip-mean valence/arousal and expression (per group) between listeners."""
    means, people = [], []
    for c in s.truth["clips"]:
        means.append(_load_emotion(_emotion_path(s.root, c["split"], c["listener_path"])).mean(0))
        people.append(c["listener"]["person"])
    means, people = np.stack(means), np.asarray(people)
    out = []
    for a, b in ((15, 17), (17, 25)):
        x = means[:, a:b]
        within = sum(((x[people == p] - x[people == p].mean(0)) ** 2).sum() for p in set(people))
        out.append(1 - within / ((x - x.mean(0)) ** 2).sum())
    return np.asarray(out)


def test_personal_affect_makes_listeners_differ_in_affect_and_changes_nothing_else(tmp_path) -> None:
    kw = dict(layout="react", sessions=6, minutes=2, seed=11, video=False, n_patterns=3, audio_rate=8000)
    plain = synthesize(tmp_path / "plain", **kw)
    strong = synthesize(tmp_path / "strong", personal_affect=0.5, **kw)
    ps, ss = plain.truth["persons"], strong.truth["persons"]
    assert all(p["expr_logit_bias"] == [0.0] * 8 for p in ps.values())
    assert all(np.abs(p["expr_logit_bias"]).max() > 0 for p in ss.values())
    for pid in ps:  # the other style values are drawn as before
        assert {k: v for k, v in ps[pid].items() if k not in ("va_bias", "expr_logit_bias")} == \
               {k: v for k, v in ss[pid].items() if k not in ("va_bias", "expr_logit_bias")}
        assert np.abs(np.subtract(ss[pid]["va_bias"], ps[pid]["va_bias"])).max() <= 0.5 + 1e-4
    # listeners now differ in their valence/arousal and expression levels far more than by chance
    plain_share, strong_share = _between_listener_share(plain), _between_listener_share(strong)
    assert (strong_share > plain_share + 0.15).all() and (strong_share > 0.4).all(), (plain_share, strong_share)
    # speaker patterns and the appropriateness truth are unchanged
    assert (plain.root / "val.csv").read_text() == (strong.root / "val.csv").read_text()
    np.testing.assert_array_equal(np.load(plain.root / "neighbour_emotion_val.npy"),
                                  np.load(strong.root / "neighbour_emotion_val.npy"))


def test_recurring_experts_keep_one_style_across_sessions_and_splits(tmp_path) -> None:
    kw = dict(layout="react", sessions=6, minutes=1, seed=5, video=False, n_patterns=3, audio_rate=8000)
    plain = synthesize(tmp_path / "plain", **kw)
    rec = synthesize(tmp_path / "rec", recurring_experts=2, **kw)
    # default: every participant is their own identity
    plain_ids = json.loads(plain.paths["identities"].read_text())
    assert len(plain_ids) == 12 and len(set(plain_ids.values())) == 12
    # NoXI sessions 0, 1, 3, 4 (train, val, train, train) take experts 1, 2, 1, 2; RECOLA and novices stay unique
    ids = json.loads(rec.paths["identities"].read_text())
    experts = {k.split("/")[1][:3]: v for k, v in ids.items() if k.endswith("Expert_video")}
    assert experts == {"001": "NoXI/expert-1", "002": "NoXI/expert-2", "004": "NoXI/expert-1", "005": "NoXI/expert-2"}
    assert len(set(ids.values())) == 4 + 2 + 4  # novices, experts, RECOLA persons
    assert set(rec.truth["persons"]) == set(ids.values())
    clip_people = {(c["split"], c["speaker"]["person"]) for c in rec.truth["clips"]}
    assert {("val", "NoXI/expert-2"), ("train", "NoXI/expert-2")} <= clip_people  # seen in train and val
    # the style is really one person's: an expert's 3DMM expression mean in one session is nearer
    # to their own mean in another session than to any other participant's
    means: dict[tuple[str, str], list[np.ndarray]] = {}
    for c in rec.truth["clips"]:
        for role in ("speaker", "listener"):
            folder = "/".join(c[f"{role}_path"].split("/")[:-1])
            arr = np.load(rec.root / c["split"] / "3D_FV_files" / f"{c[f'{role}_path']}.npy").reshape(-1, 58)
            means.setdefault((c[role]["person"], folder), []).append(arr[:, :52].mean(0))
    m = {k: np.mean(v, 0) for k, v in means.items()}
    for person in ("NoXI/expert-1", "NoXI/expert-2"):
        (k1, a), (k2, b) = [(k, v) for k, v in m.items() if k[0] == person]
        others = min(np.linalg.norm(a - v) for k, v in m.items() if k[0] != person)
        assert np.linalg.norm(a - b) < others, (person, np.linalg.norm(a - b), others)
    # everything of the default corpus that does not involve an expert is unchanged
    assert (plain.root / "val.csv").read_text() == (rec.root / "val.csv").read_text()
    with pytest.raises(ConfigError, match="recurring_experts must be >= 0"):
        synthesize(tmp_path / "bad", recurring_experts=-1, **kw)


def test_personal_mode_makes_listeners_answer_in_their_own_way_and_changes_nothing_else(tmp_path) -> None:
    kw = dict(layout="react", sessions=4, minutes=2, seed=3, video=False, n_patterns=3, audio_rate=8000)
    plain = synthesize(tmp_path / "plain", **kw)
    habit = synthesize(tmp_path / "habit", personal_mode=1.0, **kw)
    assert all(p["preferred_mode"] == -1 for p in plain.truth["persons"].values())
    prefs = {k: p["preferred_mode"] for k, p in habit.truth["persons"].items()}
    assert set(prefs.values()) <= {0, 1, 2} and len(set(prefs.values())) > 1
    changed = 0
    for a, b in zip(plain.truth["clips"], habit.truth["clips"]):
        assert a["speaker_path"] == b["speaker_path"] and a["listener"]["pattern"] == b["listener"]["pattern"]
        assert b["listener"]["mode"] == prefs[b["listener"]["person"]]  # q = 1: always the habit
        # the mode is the only change: where it is the same, the shown expression and affect are
        # too (away from the clip edges, where smoothing reaches into the neighbouring segment).
        # AU occurrences are left out: the acknowledgement display reaches the AUs of every
        # preferred expression of the session (CHANGELOG, known gaps), so they follow other clips' modes
        x = _load_emotion(_emotion_path(plain.root, a["split"], a["listener_path"]))[40:710, 15:]
        y = _load_emotion(_emotion_path(habit.root, b["split"], b["listener_path"]))[40:710, 15:]
        if a["listener"]["mode"] == b["listener"]["mode"]:
            np.testing.assert_allclose(x, y, atol=1e-6)
        else:
            changed += 1
            assert np.abs(x - y).max() > 0.1
    assert changed > 0
    assert (plain.root / "val.csv").read_text() == (habit.root / "val.csv").read_text()
    np.testing.assert_array_equal(np.load(plain.root / "neighbour_emotion_val.npy"),
                                  np.load(habit.root / "neighbour_emotion_val.npy"))
    with pytest.raises(ConfigError, match="personal_mode must be in"):
        synthesize(tmp_path / "bad", personal_mode=1.5, **kw)
