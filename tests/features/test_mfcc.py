"""The 78-d MFCC against an independent numpy implementation of Kaldi's MFCC (written here from
Kaldi's definition, not from the code under test) and hand-computed deltas."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from reactcli.errors import InputError
from reactcli.features import ClipInputs, get_extractor
from reactcli.features.mfcc import compute_deltas

FLT_EPS = np.finfo(np.float32).eps


def kaldi_mfcc_ref(x: np.ndarray, sr: int, num_ceps: int = 13, num_bins: int = 23,
                   energy_floor: float = 1.0, lifter: float = 22.0) -> np.ndarray:
    """Kaldi MFCC (snip_edges, povey, preemph 0.97, raw log energy as C0), float64."""
    win, shift = int(sr * 0.025), int(sr * 0.010)
    nfft = 1 << (win - 1).bit_length()
    nframes = 1 + (len(x) - win) // shift
    # mel filterbank, Kaldi style: triangles in mel(f) = 1127 ln(1 + f/700) over bins 0..nfft/2-1
    mel = lambda f: 1127.0 * np.log(1.0 + np.asarray(f, float) / 700.0)  # noqa: E731
    mlo, mhi = mel(20.0), mel(sr / 2)
    delta = (mhi - mlo) / (num_bins + 1)
    fm = mel(np.arange(nfft // 2) * sr / nfft)
    W = np.zeros((num_bins, nfft // 2 + 1))
    for b in range(num_bins):
        l, c, r = mlo + b * delta, mlo + (b + 1) * delta, mlo + (b + 2) * delta
        up = (fm > l) & (fm <= c)
        down = (fm > c) & (fm < r)
        W[b, :nfft // 2][up] = (fm[up] - l) / (c - l)
        W[b, :nfft // 2][down] = (r - fm[down]) / (r - c)
    n = np.arange(win)
    povey = (0.5 - 0.5 * np.cos(2 * np.pi * n / (win - 1))) ** 0.85
    k = np.arange(num_ceps)[:, None]
    dct = np.sqrt(2.0 / num_bins) * np.cos(np.pi / num_bins * (np.arange(num_bins)[None, :] + 0.5) * k)
    dct[0] = np.sqrt(1.0 / num_bins)
    lift = 1.0 + 0.5 * lifter * np.sin(np.pi * np.arange(num_ceps) / lifter)
    out = np.zeros((nframes, num_ceps))
    for t in range(nframes):
        fr = x[t * shift:t * shift + win].astype(np.float64)
        fr = fr - fr.mean()
        loge = max(np.log(max((fr ** 2).sum(), FLT_EPS)), np.log(energy_floor))
        pre = np.empty_like(fr)
        pre[1:] = fr[1:] - 0.97 * fr[:-1]
        pre[0] = fr[0] - 0.97 * fr[0]
        spec = np.abs(np.fft.rfft(pre * povey, nfft)) ** 2
        logmel = np.log(np.maximum(W @ spec, FLT_EPS))
        c = (dct @ logmel) * lift
        c[0] = loge
        out[t] = c
    return out


def challenge_feature_ref(x: np.ndarray, sr: int, n_frames: int, fps: int = 25) -> np.ndarray:
    """The baseline's per-video-frame loop, with the reference MFCC and hand deltas."""
    chunk = int(sr / fps)
    x = np.pad(x, (0, max(0, chunk * n_frames - len(x))))[: chunk * n_frames]
    rows = []
    for i in range(n_frames):
        c = kaldi_mfcc_ref(x[i * chunk:(i + 1) * chunk], sr).T  # (13, 2)
        assert c.shape == (13, 2)
        # compute_deltas with 2 frames, replicate padding: both deltas = 0.3 (c1 - c0)
        d = np.repeat(0.3 * (c[:, 1:] - c[:, :1]), 2, axis=1)
        dd = np.zeros_like(d)
        rows.append(np.stack((c, d, dd)).reshape(-1))
    return np.stack(rows)


def test_compute_deltas_by_hand() -> None:
    x = np.array([[1.0], [2.0], [4.0], [7.0]])
    np.testing.assert_allclose(compute_deltas(x, 5)[:, 0], [0.7, 1.5, 1.7, 1.3])
    # win 3: (x_{t+1} - x_{t-1}) / 2 with replicated edges
    np.testing.assert_allclose(compute_deltas(x, 3)[:, 0], [0.5, 1.5, 2.5, 1.5])
    # batch axes are independent
    b = np.stack([x, 2 * x])
    np.testing.assert_allclose(compute_deltas(b, 5)[1], 2 * compute_deltas(x, 5))


def _signal(n: int, sr: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / sr
    x = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t)) + 0.05 * rng.standard_normal(n)
    x[n // 3: n // 3 + sr // 10] = 0.0  # 100 ms of digital silence: energy and mel floors
    x[n // 2: n // 2 + sr // 10] *= 1e-3  # quiet: log-energy below the floor of 0
    return x.astype(np.float32)


@pytest.mark.parametrize("sr", [16000, 44100, 22050])  # 22050: per-chunk (non-vectorised) path
def test_mfcc_matches_independent_reference(sr: int) -> None:
    n_frames = 30
    x = _signal(n_frames * int(sr / 25), sr)
    ext = get_extractor("mfcc")
    got = ext.features_from_samples(x, sr, n_frames)
    ref = challenge_feature_ref(x, sr, n_frames)
    assert got.shape == (n_frames, 78) and got.dtype == np.float32
    np.testing.assert_allclose(got, ref, rtol=1e-3, atol=2e-3)
    # the silent stretch really hit the floors (so the test covers them)
    assert np.any(ref[:, 0] == 0.0)
    assert np.all(got[:, 52:] == 0.0)  # delta-deltas of a 2-frame chunk vanish


def test_mfcc_column_order() -> None:
    sr = 16000
    x = _signal(10 * 640, sr, seed=1)
    got = get_extractor("mfcc").features_from_samples(x, sr, 10)
    c = kaldi_mfcc_ref(x[640 * 3:640 * 4], sr)  # video frame 3, MFCC frames (2, 13)
    # column kind*26 + q*2 + j
    for q in (0, 5, 12):
        for j in (0, 1):
            assert got[3, q * 2 + j] == pytest.approx(c[j, q], rel=1e-3, abs=2e-3)
            assert got[3, 26 + q * 2 + j] == pytest.approx(0.3 * (c[1, q] - c[0, q]), rel=1e-3, abs=2e-3)


def test_extract_from_wav_pad_and_errors(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    sr = 16000
    x = _signal(20 * 640, sr)
    sf.write(tmp_path / "a.wav", x, sr, subtype="FLOAT")
    ext = get_extractor("mfcc")
    out = ext.extract(ClipInputs("c1", audio=tmp_path / "a.wav", num_frames=20))["mfcc"]
    np.testing.assert_allclose(out, ext.features_from_samples(x, sr, 20))
    # truncation: asking fewer frames gives the prefix
    out10 = ext.extract(ClipInputs("c1", audio=tmp_path / "a.wav", num_frames=10))["mfcc"]
    np.testing.assert_array_equal(out10, out[:10])
    # audio 0.2 s short: padded with silence + warning; the padded frames equal silence frames
    out25 = ext.extract(ClipInputs("c1", audio=tmp_path / "a.wav", num_frames=25))["mfcc"]
    assert "padded" in caplog.text
    np.testing.assert_array_equal(out25[:20], out)
    assert np.all(out25[20:, 0:2] == 0.0)  # log-energy floored at 0 on silence
    with pytest.raises(InputError, match="c1.*a.wav.*needs"):
        ext.extract(ClipInputs("c1", audio=tmp_path / "a.wav", num_frames=40))
    with pytest.raises(InputError, match="c2: no audio"):
        ext.extract(ClipInputs("c2", num_frames=5))
    with pytest.raises(InputError, match="not found"):
        ext.extract(ClipInputs("c3", audio=tmp_path / "missing.wav", num_frames=5))


def test_resample_option(tmp_path: Path) -> None:
    sr = 44100
    x = _signal(10 * 1764, sr)
    sf.write(tmp_path / "a.wav", x, sr, subtype="FLOAT")
    out = get_extractor("mfcc", sample_rate=16000).extract(ClipInputs("c", audio=tmp_path / "a.wav", num_frames=10))
    from scipy.signal import resample_poly

    y = resample_poly(x.astype(np.float64), 160, 441).astype(np.float32)
    np.testing.assert_allclose(out["mfcc"], challenge_feature_ref(y, 16000, 10), rtol=1e-3, atol=2e-3)
