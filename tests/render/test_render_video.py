"""Render stage: side-by-side videos checked with PyAV, frame content, resume, fallbacks, FID frames, CLI."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import av
import numpy as np
import pytest

from reactcli.corpora.react import ReactConfig, prepare_react
from reactcli.errors import ConfigError, InputError, MissingAssetError
from reactcli.generation.store import write_generated
from reactcli.manifest import ClipRecord, read_manifest
from reactcli.media.encode import write_video, write_wav
from reactcli.render.face2d import render_sequence
from reactcli.render.fid_frames import export_fid_frames
from reactcli.render.video import RenderConfig, grid_layout, render_items, video_path
from reactcli.storage import FeatureStore
from reactcli.synthetic.react_layout import write_tiny_react
from reactcli.manifest.items import load_items

F = 51  # frames per clip in the tiny corpus; generated reactions have F - 1 = 50
T = F - 1
K = 3
SIZE = 64
SR = 16000


def _make_work(base: Path, real_media: bool, seed: int = 0) -> Path:
    root = write_tiny_react(base / "root", pairs_per_split=2, frames=F, splits=("test",), seed=seed)
    work = base / "work"
    prepare_react(root, work, ReactConfig(frames=F, splits=("test",)))
    rng = np.random.default_rng(seed)
    if real_media:
        # replace the placeholders by real clips: a face2d video of random AUs and a tone
        for c in read_manifest(work / "manifests" / "clips.jsonl", ClipRecord):
            write_video(c.video, render_sequence(rng.random((F, 25)).astype(np.float32), None, SIZE), preset="ultrafast")
            t = np.arange(int(F / 25 * SR)) / SR
            write_wav(c.audio, 0.3 * np.sin(2 * np.pi * 440 * t), SR)
    table = load_items(work, "test")

    def batches():
        for i in range(table.n):
            yield [i], {"emotion": rng.random((1, K, T, 25)).astype(np.float32),
                        "tdmm": (0.1 * rng.standard_normal((1, K, T, 58))).astype(np.float32)}

    write_generated(work, "r1", "test", table, batches(), num_samples=K, seed=0, meta={})
    return work


@pytest.fixture(scope="module")
def real_work(tmp_path_factory) -> Path:
    return _make_work(tmp_path_factory.mktemp("real"), real_media=True)


@pytest.fixture(scope="module")
def placeholder_work(tmp_path_factory) -> Path:
    return _make_work(tmp_path_factory.mktemp("placeholder"), real_media=False, seed=1)


def _decode(path: Path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def test_video_is_h264_25fps_with_audio_and_all_frames(real_work: Path) -> None:
    (p,) = render_items(real_work, "r1", "test", [0], RenderConfig(size=SIZE))
    assert p == video_path(real_work, "r1", "test", 0)
    with av.open(str(p)) as c:
        v = c.streams.video[0]
        assert v.codec_context.name == "h264"
        assert v.average_rate == 25
        assert (v.codec_context.width, v.codec_context.height) == (2 * SIZE + K * SIZE, SIZE)
        assert len(c.streams.audio) == 1 and c.streams.audio[0].codec_context.name == "aac"
        assert c.duration / 1e6 == pytest.approx(T / 25, abs=0.05)
        n = sum(1 for _ in c.decode(video=0))
    assert n == T
    # the audio lasts as long as the picture (cut to T / fps before muxing)
    with av.open(str(p)) as c:
        a = c.streams.audio[0]
        samples = sum(fr.samples for fr in c.decode(audio=0))
    assert samples / a.codec_context.sample_rate == pytest.approx(T / 25, abs=0.05)


def test_frame_shows_speaker_samples_and_listener_in_sync(real_work: Path) -> None:
    (p,) = render_items(real_work, "r1", "test", [1], RenderConfig(size=SIZE))
    frames = _decode(p).astype(int)
    recs = {r.index: r for r in read_manifest(real_work / "manifests" / "generated-r1-test.jsonl")}
    rec = recs[1]
    clips = {c.id: c for c in read_manifest(real_work / "manifests" / "clips.jsonl", ClipRecord)}
    spk, lis = _decode(Path(clips[rec.speaker].video)).astype(int), _decode(Path(clips[rec.listener].video)).astype(int)
    gen = FeatureStore(real_work).read(rec.clip, "emotion")
    t = 17
    below = slice(SIZE // 3, SIZE)  # under the label text
    # left panel = speaker video frame t, right panel = listener video frame t (h264 twice: small error)
    assert np.abs(frames[t, below, :SIZE] - spk[t, below]).mean() < 6
    assert np.abs(frames[t, below, -SIZE:] - lis[t, below]).mean() < 6
    # and not frame t+5: the panels are in sync, not just similar faces
    assert np.abs(frames[t, below, :SIZE] - spk[t + 5, below]).mean() > np.abs(frames[t, below, :SIZE] - spk[t, below]).mean()
    for k in range(K):
        cell = frames[t, below, SIZE + k * SIZE : SIZE + (k + 1) * SIZE]
        want = render_sequence(gen[k, t : t + 1], FeatureStore(real_work).read(rec.clip, "tdmm")[k, t : t + 1], SIZE)[0].astype(int)
        assert np.abs(cell - want[below]).mean() < 6, k
    # labels: the top strip of every panel differs from the unlabelled picture (text drawn there)
    strip = slice(0, SIZE // 5)
    refs = [spk[t]] + [render_sequence(gen[k, t : t + 1], FeatureStore(real_work).read(rec.clip, "tdmm")[k, t : t + 1], SIZE)[0]
                       for k in range(K)] + [lis[t]]
    for j, ref in enumerate(refs):
        panel = frames[t, strip, j * SIZE : (j + 1) * SIZE]
        assert np.abs(panel - ref[strip].astype(int)).mean() > 15, j


def test_resume_skips_complete_and_redoes_broken(real_work: Path) -> None:
    cfg = RenderConfig(size=SIZE, audio=False)
    p0, p2 = render_items(real_work, "r1", "test", [0, 2], cfg)
    st0, st2 = p0.stat(), p2.stat()
    render_items(real_work, "r1", "test", [0, 2], cfg)
    assert p0.stat().st_mtime_ns == st0.st_mtime_ns and p2.stat().st_ino == st2.st_ino
    p2.write_bytes(b"truncated")  # a broken file under the final name is redone
    render_items(real_work, "r1", "test", [0, 2], cfg)
    assert p0.stat().st_mtime_ns == st0.st_mtime_ns
    assert sum(1 for _ in av.open(str(p2)).decode(video=0)) == T
    # a different length is not "complete" either
    (p0b,) = render_items(real_work, "r1", "test", [0], RenderConfig(size=SIZE, audio=False, frames=20))
    assert sum(1 for _ in av.open(str(p0b)).decode(video=0)) == 20
    assert not [f for f in os.listdir(p0.parent) if f.startswith(".")]  # no temp files left


def test_placeholder_media_fall_back_to_features_with_warnings(placeholder_work: Path, caplog) -> None:
    with caplog.at_level(logging.WARNING):
        (p,) = render_items(placeholder_work, "r1", "test", None, RenderConfig(size=SIZE, num_items=1))
    text = caplog.text
    assert "cannot be decoded" in text and "speaker clip" in text and "listener clip" in text
    assert "silent" in text
    with av.open(str(p)) as c:
        assert not c.streams.audio
        assert sum(1 for _ in c.decode(video=0)) == T
    rec = next(iter(read_manifest(placeholder_work / "manifests" / "generated-r1-test.jsonl")))
    st = FeatureStore(placeholder_work)
    want = render_sequence(st.read(rec.speaker, "emotion")[:T], st.read(rec.speaker, "tdmm")[:T], SIZE).astype(int)
    got = _decode(p).astype(int)
    assert np.abs(got[:, SIZE // 3 :, :SIZE] - want[:, SIZE // 3 :]).mean() < 6


def test_two_jobs_give_the_same_videos(real_work: Path, tmp_path: Path) -> None:
    a = render_items(real_work, "r1", "test", [1, 3], RenderConfig(size=SIZE, audio=False, frames=10, grid_rows=2))
    ref = {p.name: _decode(p) for p in a}
    for p in a:
        p.unlink()
    b = render_items(real_work, "r1", "test", [1, 3], RenderConfig(size=SIZE, audio=False, frames=10, grid_rows=2, num_jobs=2))
    assert [p.name for p in b] == ["1.mp4", "3.mp4"]
    for p in b:
        assert np.array_equal(_decode(p), ref[p.name])


def test_hand_shards_give_the_same_videos(real_work: Path) -> None:
    from reactcli.execution import ExecConfig
    from reactcli.render.stage import render_sharded

    cfg = RenderConfig(size=SIZE, audio=False, frames=10, grid_rows=2)
    a = render_items(real_work, "r1", "test", [0, 2], cfg)
    ref = {p.name: _decode(p) for p in a}
    for p in a:
        p.unlink()
    first = render_sharded(real_work, "r1", "test", [0, 2], cfg, ExecConfig(shard=(1, 2)))
    assert [p.exists() for p in first] == [False, True]  # only shard 1's item
    render_sharded(real_work, "r1", "test", [0, 2], cfg, ExecConfig(shard=(0, 2)))
    for p in first:
        assert np.array_equal(_decode(p), ref[p.name])


def test_grid_layout() -> None:
    lay = grid_layout(10, 128)
    assert (lay.rows, lay.cols, lay.cell, lay.width, lay.height) == (2, 5, 64, 2 * 128 + 5 * 64, 128)
    assert lay.cell_origin(6) == (64, 128 + 64)
    assert grid_layout(3, 64).rows == 1
    with pytest.raises(ConfigError):
        grid_layout(10, 63)


def test_errors_name_the_problem(real_work: Path, tmp_path: Path) -> None:
    with pytest.raises(MissingAssetError, match="--faceverse-model"):
        render_items(real_work, "r1", "test", [0], RenderConfig(renderer="faceverse"))
    with pytest.raises(MissingAssetError, match="--pirender-checkpoint"):
        render_items(real_work, "r1", "test", [0], RenderConfig(renderer="pirender", pirender_checkpoint=str(tmp_path / "no.pt")))
    with pytest.raises(ConfigError, match="99"):
        render_items(real_work, "r1", "test", [99], RenderConfig(size=SIZE))
    with pytest.raises(InputError, match="nope"):
        render_items(real_work, "nope", "test", [0], RenderConfig(size=SIZE))
    with pytest.raises(ConfigError, match="renderer"):
        render_items(real_work, "r1", "test", [0], RenderConfig(renderer="blender"))


def test_fid_frames_every_nth_frame(real_work: Path, tmp_path: Path) -> None:
    s = export_fid_frames(real_work, "r1", "test", tmp_path / "fid", every=20, renderer="face2d", items=[0, 1])
    idx = [0, 20, 40]
    # face2d is a cartoon: the real listener is drawn with it too, never taken from the video
    assert (s.real, s.fake, s.real_from_video) == (2 * len(idx), 2 * K * len(idx), 0)
    meta = json.loads((tmp_path / "fid" / "frames.json").read_text())
    assert (meta["renderer"], meta["photoreal"], meta["real"], meta["real_drawn"]) == ("face2d", False, "render", 2)
    real = sorted(os.listdir(s.real_dir))
    fake = sorted(os.listdir(s.fake_dir))
    assert real == [f"test_{i:05d}_f{t:04d}.png" for i in (0, 1) for t in idx]
    assert fake[:3] == ["test_00000_s00_f0000.png", "test_00000_s00_f0020.png", "test_00000_s00_f0040.png"]
    from PIL import Image

    rec = next(r for r in read_manifest(real_work / "manifests" / "generated-r1-test.jsonl") if r.index == 1)
    st = FeatureStore(real_work)
    emo, tdm = st.read(rec.clip, "emotion")[2], st.read(rec.clip, "tdmm")[2]
    img = np.asarray(Image.open(s.fake_dir / "test_00001_s02_f0040.png"))
    # PNG is lossless and face2d draws each frame on its own: exactly the frame of a full render
    assert np.array_equal(img, render_sequence(emo, tdm, 128)[40])
    got = np.asarray(Image.open(s.real_dir / "test_00001_f0020.png"))
    want = render_sequence(st.read(rec.listener, "emotion")[:T], st.read(rec.listener, "tdmm")[:T], 128)[20]
    assert np.array_equal(got, want)
    # resume: nothing rewritten
    before = {f: (s.fake_dir / f).stat().st_mtime_ns for f in fake}
    export_fid_frames(real_work, "r1", "test", tmp_path / "fid", every=20, renderer="face2d", items=[0, 1])
    assert before == {f: (s.fake_dir / f).stat().st_mtime_ns for f in fake}


def test_fid_frames_cartoon_against_video_is_a_named_error(real_work: Path, tmp_path: Path) -> None:
    for name in ("face2d", "faceverse"):
        with pytest.raises((ConfigError, MissingAssetError), match="drawing style|--faceverse-model"):
            export_fid_frames(real_work, "r1", "test", tmp_path / name, every=20, renderer=name, real="video")
    assert not (tmp_path / "face2d").exists()


@pytest.fixture(scope="module")
def tiny_pirender(tmp_path_factory) -> Path:
    from reactcli.render.pirender import PIRenderConfig, build_pirender, save_pirender

    cfg = PIRenderConfig(coeff_nc=8, descriptor_nc=8, adain_hidden=8, warp_base_nc=4, warp_max_nc=8,
                         warp_encoder_layers=3, warp_decoder_layers=2, edit_base_nc=4, edit_max_nc=8, edit_layers=2,
                         edit_res_blocks=1, image_size=32, source_resize=40)
    return save_pirender(tmp_path_factory.mktemp("pir") / "pirender.pth", build_pirender(cfg, seed=0))


def test_fid_frames_pirender_against_real_video(real_work: Path, tmp_path: Path, tiny_pirender: Path) -> None:
    from PIL import Image

    from reactcli.render.pirender import center_crop
    from reactcli.render.renderers import RendererConfig, make_renderer

    mean = np.linspace(-0.2, 0.2, 58).astype(np.float32)
    np.save(tmp_path / "mean_face.npy", mean)
    rcfg = RendererConfig("pirender", size=32, pirender_checkpoint=tiny_pirender, mean_face=tmp_path / "mean_face.npy")
    s = export_fid_frames(real_work, "r1", "test", tmp_path / "fid", every=20, renderer=rcfg, real="video", items=[1])
    assert (s.real, s.fake, s.real_from_video) == (3, 3 * K, 1)
    meta = json.loads((tmp_path / "fid" / "frames.json").read_text())
    assert meta["photoreal"] and meta["mean_face"] == str(tmp_path / "mean_face.npy")
    rec = next(r for r in read_manifest(real_work / "manifests" / "generated-r1-test.jsonl") if r.index == 1)
    clips = {c.id: c for c in read_manifest(real_work / "manifests" / "clips.jsonl", ClipRecord)}
    lis = _decode(Path(clips[rec.listener].video))
    # real frames: the video's frame, framed as PIRender's source (resize 40, centre crop 32)
    got = np.asarray(Image.open(s.real_dir / "test_00001_f0020.png"))
    assert np.array_equal(got, center_crop(lis[20], make_renderer(rcfg).config))
    # generated frames: the run's offsets + mean face, re-animating the listener's first video frame
    tdm = FeatureStore(real_work).read(rec.clip, "tdmm")[2]
    plain = make_renderer(RendererConfig("pirender", size=32, pirender_checkpoint=tiny_pirender))
    want = plain.render_frames(None, tdm + mean, [40], source=lis[0])[0]
    img = np.asarray(Image.open(s.fake_dir / "test_00001_s02_f0040.png")).astype(int)
    assert np.abs(img - want.astype(int)).max() <= 1


def test_cli_render_pirender_and_bad_checkpoints(real_work: Path, tmp_path: Path, tiny_pirender: Path) -> None:
    import torch
    import typer
    from typer.testing import CliRunner

    from reactcli.cli.render import command

    app = typer.Typer()
    app.command("render")(command)
    app.command("noop")(lambda: None)
    np.save(tmp_path / "mean_face.npy", np.zeros(58, np.float32))
    base = ["render", "--work", str(real_work), "--run", "r1", "--split", "test", "--items", "0", "--size", "64",
            "--frames", "4", "--renderer", "pirender", "--no-audio", "--mean-face", str(tmp_path / "mean_face.npy")]
    runner = CliRunner()
    r = runner.invoke(app, base + ["--pirender-checkpoint", str(tiny_pirender), "--fid-frames", str(tmp_path / "fid"),
                                   "--every", "2"])
    assert r.exit_code == 0, r.output
    assert sum(1 for _ in av.open(str(video_path(real_work, "r1", "test", 0))).decode(video=0)) == 4
    from PIL import Image

    # FID frames at the challenge's 224 px (PIRender's default --fid-size), real ones from the video
    assert Image.open(tmp_path / "fid" / "fake" / "test_00000_s00_f0002.png").size == (224, 224)
    assert Image.open(tmp_path / "fid" / "real" / "test_00000_f0002.png").size == (224, 224)
    meta = json.loads((tmp_path / "fid" / "frames.json").read_text())
    assert meta["photoreal"] and meta["real_from_video"] == 1 and meta["size"] == 224
    # a released-layout file with a missing tensor, an extra one, a wrong shape, or no checkpoint at all
    ck = torch.load(tiny_pirender, weights_only=True)
    sd = ck["state_dict"]
    bad = {
        "missing": {**ck, "state_dict": {k: v for k, v in sd.items() if k != "mapping_net.pre.bias"}},
        "extra": {**ck, "state_dict": {**sd, "mapping_net.post.weight": torch.zeros(2)}},
        "shape": {**ck, "state_dict": {**sd, "mapping_net.pre.bias": torch.zeros(3)}},
    }
    expect = {"missing": "1 missing (mapping_net.pre.bias)", "extra": "1 unexpected (mapping_net.post.weight)",
              "shape": "mapping_net.pre.bias (3,) != (8,)", "junk": "not a PIRender checkpoint"}
    for name, obj in bad.items():
        torch.save(obj, tmp_path / f"{name}.pth")
    (tmp_path / "junk.pth").write_bytes(b"\x00" * 64)
    def snapshot() -> dict:
        return {p: p.stat().st_mtime_ns for p in (real_work / "videos").rglob("*")}

    before = snapshot()
    for name, text in expect.items():
        args = base + ["--items", "1", "--pirender-checkpoint", str(tmp_path / f"{name}.pth"),
                       "--fid-frames", str(tmp_path / f"fid-{name}")]
        r = runner.invoke(app, args)
        assert r.exit_code == 1 and text in r.output, (name, r.output)
        assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1
        assert snapshot() == before and not (tmp_path / f"fid-{name}").exists()


def test_fid_frames_real_source_modes(placeholder_work: Path, tmp_path: Path, caplog, tiny_pirender: Path) -> None:
    from reactcli.render.renderers import RendererConfig

    rcfg = RendererConfig("pirender", size=32, pirender_checkpoint=tiny_pirender)
    with pytest.raises(InputError, match="cannot be decoded"):
        export_fid_frames(placeholder_work, "r1", "test", tmp_path / "a", every=25, renderer=rcfg, real="video",
                          items=[0])
    with caplog.at_level(logging.WARNING):
        s = export_fid_frames(placeholder_work, "r1", "test", tmp_path / "b", every=25, real="auto", items=[0])
    assert s.real_from_video == 0
    rec = next(r for r in read_manifest(placeholder_work / "manifests" / "generated-r1-test.jsonl") if r.index == 0)
    st = FeatureStore(placeholder_work)
    from PIL import Image

    got = np.asarray(Image.open(s.real_dir / "test_00000_f0025.png"))
    want = render_sequence(st.read(rec.listener, "emotion")[:T], st.read(rec.listener, "tdmm")[:T], 128)[25]
    assert np.array_equal(got, want)


def test_cli_render(real_work: Path, tmp_path: Path) -> None:
    import typer
    from typer.testing import CliRunner

    from reactcli.cli.render import command

    app = typer.Typer()
    app.command("render")(command)
    app.command("noop")(lambda: None)  # a second command keeps "render" as a subcommand name
    runner = CliRunner()
    r = runner.invoke(app, ["render", "--work", str(real_work), "--run", "r1", "--split", "test", "--items", "2",
                            "--size", "64", "--frames", "10", "--fid-frames", str(tmp_path / "fid"), "--every", "5",
                            "--plots"])
    assert r.exit_code == 0, r.output
    assert "1 video(s)" in r.output
    assert sum(1 for _ in av.open(str(video_path(real_work, "r1", "test", 2))).decode(video=0)) == 10
    assert len(os.listdir(tmp_path / "fid" / "real")) == 2 and len(os.listdir(tmp_path / "fid" / "fake")) == 2 * K
    assert (real_work / "plots" / "r1" / "test" / "2.png").is_file()
    r = runner.invoke(app, ["render", "--work", str(real_work), "--run", "r1", "--renderer", "faceverse"])
    assert r.exit_code == 1 and "--faceverse-model" in r.output
    r = runner.invoke(app, ["render", "--work", str(real_work), "--run", "r1", "--items", "a,b"])
    assert r.exit_code == 1 and "--items" in r.output
