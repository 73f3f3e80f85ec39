import numpy as np
import pytest

from reactcli.errors import ConfigError
from reactcli.features import ClipInputs, available_extractors, extract_clip, get_extractor
from reactcli.features import registry


def test_all_extractors_registered() -> None:
    assert available_extractors() == sorted(
        ["mfcc", "wav2vec2", "landmarks", "emoca", "faceverse", "graphau", "precomputed"])


def test_unknown_name_and_option() -> None:
    with pytest.raises(ConfigError, match="unknown extractor 'nope'"):
        get_extractor("nope")
    with pytest.raises(ConfigError, match="unknown option.*'num_cepz'"):
        get_extractor("mfcc", num_cepz=13)


def test_config_and_dims() -> None:
    e = get_extractor("mfcc", sample_rate=16000)
    assert e.config["sample_rate"] == 16000 and e.config["num_ceps"] == 13
    assert e.dims == {"mfcc": 78} and e.fps == 25.0 and e.requires == ("audio",)


def test_extract_clip_reuses_instance(tmp_path) -> None:
    np.save(tmp_path / "a.npy", np.ones((5, 58), np.float32))
    inp = ClipInputs("c", num_frames=5, sidecars={"tdmm": tmp_path / "a.npy"})
    out = extract_clip("precomputed", {"kinds": ["tdmm"]}, inp)
    n = len(registry._INSTANCES)
    out2 = extract_clip("precomputed", {"kinds": ["tdmm"]}, inp)
    assert len(registry._INSTANCES) == n
    np.testing.assert_array_equal(out["tdmm"], out2["tdmm"])


def test_fit_length() -> None:
    x = np.arange(5.0)
    np.testing.assert_array_equal(registry.fit_length(x, 3, 0, "x"), [0, 1, 2])
    np.testing.assert_array_equal(registry.fit_length(x, 7, 2, "x"), [0, 1, 2, 3, 4, 0, 0])
    np.testing.assert_array_equal(registry.fit_length(x, 6, 1, "x", mode="edge"), [0, 1, 2, 3, 4, 4])
    with pytest.raises(Exception, match="x: has 5"):
        registry.fit_length(x, 8, 2, "x")


def test_readers_on_mp4_and_corrupt(tmp_path) -> None:
    from reactcli.errors import InputError
    from tests.media.synth import decode_index, write_index_video

    v = write_index_video(tmp_path / "v.mp4", 25, 25, audio_rate=16000)
    x, sr = registry.read_audio(v)  # AAC inside mp4: decoded by PyAV
    assert sr == 16000 and abs(len(x) - 16000) < 2048 and x.dtype == np.float32
    assert 0.2 < np.abs(x[4000:12000]).max() <= 0.6  # the 0.5-amplitude sine survived
    f = registry.read_video_frames(v, 25)
    assert f.shape == (25, 64, 64, 3) and [decode_index(a) for a in f] == list(range(25))
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(InputError, match="bad.mp4"):
        registry.read_video_frames(bad, 5)
    with pytest.raises(InputError, match="bad.mp4"):
        registry.read_audio(bad)
