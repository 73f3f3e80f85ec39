from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from reactcli.errors import ConfigError, InputError
from reactcli.media.clip import (
    ClipConfig,
    ClipSpan,
    cut_clip,
    plan_clips,
    slice_frames,
    source_frame_indices,
)
from reactcli.media.probe import probe
from tests.media.synth import decode_indices, write_index_video, write_ramp_wav


# ---------------------------------------------------------------- planning


def test_plan_challenge_rule() -> None:
    spans = plan_clips(95.0)
    assert spans == [ClipSpan(1, 0.0, 30.0), ClipSpan(2, 30.0, 60.0), ClipSpan(3, 60.0, 90.0),
                     ClipSpan(4, 90.0, 95.0)]
    # remainder shorter than 0.3 s dropped
    assert [s.index for s in plan_clips(90.2)] == [1, 2, 3]
    assert plan_clips(90.3)[-1] == ClipSpan(4, 90.0, 90.3)
    # None: drop every partial window
    assert [s.end for s in plan_clips(95.0, min_remainder_s=None)] == [30.0, 60.0, 90.0]
    assert plan_clips(29.0, min_remainder_s=None) == []
    assert plan_clips(0.0) == []


def test_plan_stride_and_length() -> None:
    spans = plan_clips(40.0, clip_s=20.0, stride_s=10.0, min_remainder_s=None)
    assert [(s.start, s.end) for s in spans] == [(0.0, 20.0), (10.0, 30.0), (20.0, 40.0)]
    with pytest.raises(ConfigError):
        plan_clips(10.0, clip_s=0)
    with pytest.raises(ConfigError):
        plan_clips(float("nan"))


# ---------------------------------------------------------------- sidecars


def test_source_frame_indices_25_and_30() -> None:
    # 25 fps: clip 2 frame 0 is session frame 750
    assert source_frame_indices(30.0, 751, 25, 25)[[0, 1, 750]].tolist() == [750, 751, 1500]
    # 30 fps -> 25 fps: t = k/25, nearest 30 fps frame = floor(k*1.2 + 0.5)
    assert source_frame_indices(0.0, 6, 25, 30).tolist() == [0, 1, 2, 4, 5, 6]


def test_slice_frames_pad_and_errors() -> None:
    arr = np.arange(100 * 2, dtype=np.float32).reshape(100, 2)
    out = slice_frames(arr, 2.0, 10, fps=25)
    np.testing.assert_array_equal(out, arr[50:60])
    # the last clip may lack its boundary frame: one row padded by repetition
    out = slice_frames(arr, 3.0, 26, fps=25)
    np.testing.assert_array_equal(out[-2:], arr[[99, 99]])
    with pytest.raises(InputError, match="emo.csv.*missing"):
        slice_frames(arr, 3.0, 28, fps=25, name="emo.csv")
    arr30 = np.arange(120)[:, None]
    np.testing.assert_array_equal(slice_frames(arr30, 1.0, 3, fps=25, src_fps=30)[:, 0], [30, 31, 32])


# ---------------------------------------------------------------- cutting


@pytest.fixture(scope="module")
def session25(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("s25")
    return write_index_video(d / "session.mp4", 200, 25, audio_rate=16000)


def test_cut_is_frame_accurate_25fps(session25: Path, tmp_path: Path) -> None:
    # 2 s "clips" of 51 frames: frame at 2.00 s (index 50) is frame 0 of clip 2
    cfg = ClipConfig(num_frames=51, sample_rate=16000)
    for i, start in enumerate([0.0, 2.0, 4.0]):
        r = cut_clip(session25, start, tmp_path / f"{i}.mp4", tmp_path / f"{i}.wav", config=cfg)
        assert r.num_frames == 51 and decode_indices(r.video) == list(range(50 * i, 50 * i + 51))
        info = probe(r.video)
        assert info.fps == 25 and info.num_frames == 51
        y, sr = sf.read(r.audio)
        assert sr == 16000 and y.ndim == 1 and len(y) == round(51 / 25 * 16000) == r.num_samples
    # no temp files left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"{i}.mp4" for i in range(3)] + [f"{i}.wav" for i in range(3)])


def test_last_clip_pads_boundary_frame(session25: Path, tmp_path: Path) -> None:
    r = cut_clip(session25, 6.0, tmp_path / "c.mp4", config=ClipConfig(num_frames=51))
    assert decode_indices(r.video) == list(range(150, 200)) + [199]


def test_too_short_input(session25: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="session.mp4.*too short"):
        cut_clip(session25, 6.0, tmp_path / "c.mp4", config=ClipConfig(num_frames=53))
    assert not (tmp_path / "c.mp4").exists()


def test_30fps_input_converted(tmp_path: Path) -> None:
    src = write_index_video(tmp_path / "s30.mp4", 150, 30)
    for start in (0.0, 1.3, 2.0):
        r = cut_clip(src, start, tmp_path / "c.mp4", config=ClipConfig(num_frames=40))
        assert probe(r.video).fps == 25
        assert decode_indices(r.video) == source_frame_indices(start, 40, 25, 30).tolist()


def test_audio_exact_start_rate_and_padding(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    x = write_ramp_wav(tmp_path / "r.wav", 8.0, 16000)
    r = cut_clip(None, 2.0, audio_out=tmp_path / "a.wav", audio_in=tmp_path / "r.wav",
                 config=ClipConfig(num_frames=51, sample_rate=16000))
    y, sr = sf.read(r.audio)
    # 16-bit output: quantisation error <= 1/32768
    np.testing.assert_allclose(y, x[32000:32000 + 32640], atol=4e-5)
    r = cut_clip(None, 2.0, audio_out=tmp_path / "b.wav", audio_in=tmp_path / "r.wav",
                 config=ClipConfig(num_frames=51, sample_rate=44100))
    y, sr = sf.read(r.audio)
    assert sr == 44100 and len(y) == round(51 / 25 * 44100)
    assert y[0] == pytest.approx(x[32000], abs=1e-4)
    # audio 0.4 s shorter than the window: padded with zeros, warning
    r = cut_clip(None, 7.6, audio_out=tmp_path / "c.wav", audio_in=tmp_path / "r.wav",
                 config=ClipConfig(num_frames=20, sample_rate=16000))
    y, _ = sf.read(r.audio)
    assert len(y) == 12800 and np.all(y[6400:] == 0) and np.all(y[:6400] > 0.85)
    assert "shorter" in caplog.text
    with pytest.raises(InputError, match="r.wav.*audio ends"):
        cut_clip(None, 7.0, audio_out=tmp_path / "d.wav", audio_in=tmp_path / "r.wav",
                 config=ClipConfig(num_frames=50))


def test_missing_audio_stream(tmp_path: Path) -> None:
    src = write_index_video(tmp_path / "noaudio.mp4", 30, 25)
    with pytest.raises(InputError, match="noaudio.mp4.*no audio"):
        cut_clip(src, 0.0, audio_out=tmp_path / "a.wav", config=ClipConfig(num_frames=10))


def test_corrupt_and_zero_length_inputs(tmp_path: Path) -> None:
    z = tmp_path / "zero.mp4"
    z.write_bytes(b"")
    with pytest.raises(InputError, match="zero.mp4"):
        cut_clip(z, 0.0, tmp_path / "c.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    with pytest.raises(InputError, match="junk.mp4"):
        cut_clip(junk, 0.0, tmp_path / "c.mp4")


def test_unwritable_output(session25: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="afile"):
        cut_clip(session25, 0.0, blocker / "sub" / "c.mp4", config=ClipConfig(num_frames=5))


def test_stream_copy_on_keyframe_boundaries(tmp_path: Path) -> None:
    # GOP of 50 frames: every 2 s boundary is a keyframe, so copy is exact there
    src = write_index_video(tmp_path / "g.mp4", 150, 25, gop=50)
    r = cut_clip(src, 2.0, tmp_path / "c.mp4", config=ClipConfig(num_frames=50, mode="copy"))
    assert decode_indices(r.video) == list(range(50, 100))


# ---------------------------------------------------------------- the command lines (ffmpeg-python)


def _argv_logging_ffmpeg(tmp_path: Path) -> tuple[Path, Path]:
    """An executable that appends its argv (NUL-separated) to a log and execs the real ffmpeg."""
    import stat
    import sys

    from reactcli.media.encode import ffmpeg_exe

    log = tmp_path / "argv.log"
    exe = tmp_path / "ffmpeg-logged"
    exe.write_text(
        f"#!{sys.executable}\nimport os, sys\n"
        f"open({str(log)!r}, 'a').write('\\0'.join(sys.argv[1:]) + '\\n')\n"
        f"os.execv({ffmpeg_exe()!r}, [{ffmpeg_exe()!r}] + sys.argv[1:])\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return exe, log


def test_cut_runs_the_ffmpeg_python_graph(session25: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """cut_clip runs exactly the argument list that its ffmpeg-python graphs compile to, with the
    executable ffmpeg_exe() names (no shell: the arguments arrive as they were built)."""
    import ffmpeg

    from reactcli.media.clip import audio_cut_graph, video_cut_graph
    from reactcli.media.encode import ffmpeg_command

    exe, log = _argv_logging_ffmpeg(tmp_path)
    monkeypatch.setenv("REACTCLI_FFMPEG", str(exe))
    cfg = ClipConfig(num_frames=51)
    r = cut_clip(session25, 2.0, tmp_path / "out dir" / "c.mp4", tmp_path / "out dir" / "c.wav", config=cfg)
    assert decode_indices(r.video) == list(range(50, 101))
    ran = [line.split("\0") for line in log.read_text().splitlines()]
    assert len(ran) == 2
    v = video_cut_graph(session25, 2.0, 51 / 25, Path("OUT.mp4"), cfg)
    a = audio_cut_graph(session25, 2.0, 51 / 25, Path("OUT.wav"), cfg)
    assert isinstance(v, ffmpeg.nodes.OutputStream) and isinstance(a, ffmpeg.nodes.OutputStream)
    for got, graph in zip(ran, (v, a)):
        want = ffmpeg_command(graph)
        assert want[0] == str(exe)
        # the only difference: the temporary output name (beside the final file, spaces kept)
        tmp_out = [x for x in got if "out dir" in x]
        assert len(tmp_out) == 1 and Path(tmp_out[0]).parent == tmp_path / "out dir"
        assert ["OUT" + Path(x).suffix if x in tmp_out else x for x in got] == want[1:]
    # frame accuracy lives in the graph: seek before the input, fps + tpad, exact frame count
    cmd = ffmpeg_command(v)
    assert cmd.index("-ss") < cmd.index("-i") and cmd[cmd.index("-ss") + 1] == "2.000000"
    assert "fps=fps=25:round=near" in cmd[cmd.index("-filter_complex") + 1]
    assert cmd[cmd.index("-frames:v") + 1] == "51"


def test_ffmpeg_failure_carries_its_stderr(session25: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"session.mp4 \(clip at 0 s\): ffmpeg failed \(exit \d+\): .*encoder") as e:
        cut_clip(session25, 0.0, tmp_path / "c.mp4", config=ClipConfig(num_frames=10, preset="no-such-preset"))
    assert "\n" not in str(e.value)
    assert not list(tmp_path.iterdir())  # the temporary file is gone too


def test_video_writer_command_is_an_ffmpeg_python_graph(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from reactcli.media.encode import VideoWriter

    exe, log = _argv_logging_ffmpeg(tmp_path)
    monkeypatch.setenv("REACTCLI_FFMPEG", str(exe))
    wav = tmp_path / "r.wav"
    write_ramp_wav(wav, 1.0, 16000)
    frames = np.zeros((5, 32, 48, 3), np.uint8)
    with VideoWriter(tmp_path / "v.mp4", 48, 32, 25, audio=wav) as vw:
        vw.write(frames)
        cmd = vw.command(Path("OUT.mp4"))
    ran = log.read_text().splitlines()[0].split("\0")
    assert cmd[0] == str(exe) and len(ran) == len(cmd) - 1
    assert cmd[cmd.index("-i") + 1] == "pipe:0" and cmd[cmd.index("-s") + 1] == "48x32"
    assert cmd[cmd.index("-threads") + 1] == "1" and "-shortest" in cmd
    assert probe(tmp_path / "v.mp4").num_frames == 5
