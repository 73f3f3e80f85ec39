from pathlib import Path

import numpy as np
import pytest

from reactcli.errors import InputError
from reactcli.media.probe import probe
from tests.media.synth import write_index_video, write_ramp_wav


def test_probe_video_with_audio(tmp_path: Path) -> None:
    p = write_index_video(tmp_path / "a.mp4", 50, 25, size=64, audio_rate=16000)
    info = probe(p)
    assert info.fps == 25.0
    assert info.num_frames == 50
    assert (info.width, info.height) == (64, 64)
    assert info.audio_rate == 16000 and info.audio_channels == 1
    assert abs(info.duration_s - 2.0) < 0.1
    assert info.has_video and info.has_audio


def test_probe_30fps_and_wav(tmp_path: Path) -> None:
    info = probe(write_index_video(tmp_path / "b.mp4", 45, 30))
    assert info.fps == 30.0 and info.num_frames == 45 and not info.has_audio
    write_ramp_wav(tmp_path / "r.wav", 1.5, 44100)
    w = probe(tmp_path / "r.wav")
    assert w.audio_rate == 44100 and w.audio_channels == 1 and not w.has_video
    assert w.duration_s == pytest.approx(1.5, abs=1e-3)


def test_probe_missing_empty_corrupt(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        probe(tmp_path / "nope.mp4")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty.mp4.*empty"):
        probe(empty)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(InputError, match="junk.mp4"):
        probe(junk)
    with pytest.raises(InputError, match="directory"):
        probe(tmp_path)


def test_probe_truncated_mp4(tmp_path: Path) -> None:
    good = write_index_video(tmp_path / "g.mp4", 50, 25)
    data = good.read_bytes()
    bad = tmp_path / "trunc.mp4"
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(InputError, match="trunc.mp4"):
        probe(bad)
