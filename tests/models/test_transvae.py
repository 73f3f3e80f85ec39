"""Trans-VAE: config, shapes, seeds, K samples in one batch, online causality, the key/value cache."""

from __future__ import annotations

import pytest
import torch

from reactcli.errors import ConfigError, InputError
from reactcli.models.transvae import TransVAE, TransVAEConfig


def tiny(**kw) -> TransVAEConfig:
    base = dict(feature_dim=16, ffn_dim=32, n_heads=4, window=4, generate_window=4, dropout=0.0)
    base.update(kw)
    return TransVAEConfig(**base)


def model(**kw) -> TransVAE:
    torch.manual_seed(0)
    return TransVAE(tiny(**kw)).eval()


def speaker(b=2, t=14, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, t, 78, generator=g), torch.rand(b, t, 25, generator=g), torch.randn(b, t, 58, generator=g)


def test_config_roundtrip_and_errors():
    cfg = tiny(online=True, visual_inputs=("emotion",), reconstruction="appropriate")
    again = TransVAEConfig.from_dict(cfg.to_dict())
    assert again == cfg and again.to_dict()["visual_inputs"] == ["emotion"]
    m = TransVAE.from_dict(TransVAE(cfg).to_dict())
    assert m.config == cfg and hasattr(m, "lstm")
    assert not hasattr(TransVAE(tiny()), "lstm")  # the online layers exist only online
    for bad in (
        dict(visual_encoder="cnn"),
        dict(visual_inputs=("audio",)),
        dict(feature_dim=18),
        dict(reconstruction="best"),
        dict(diversity_gradient="two"),
        dict(window=0),
        dict(dropout=1.0),
    ):
        with pytest.raises(ConfigError):
            tiny(**bad)
    with pytest.raises(ConfigError, match="unknown"):
        TransVAEConfig.from_dict({"feature_dimension": 8})
    with pytest.raises(ConfigError):
        TransVAE.from_dict({"model": "reactface", "config": {}})


@pytest.mark.parametrize("online", [False, True])
@pytest.mark.parametrize("t", [12, 14])  # 14 is not a multiple of the window: the last window is shorter
def test_shapes_and_last_window_generated(online, t):
    m = model(online=online)
    a, e, d = speaker(t=t)
    out = m.generate(a, e, d, num_samples=3, seed=0)
    assert out["emotion"].shape == (2, 3, t, 25) and out["tdmm"].shape == (2, 3, t, 58)
    assert torch.isfinite(out["emotion"]).all()
    assert (out["tdmm"][:, :, -2:].abs().sum(-1) > 0).all()  # the authors' loop would leave zeros here


@pytest.mark.parametrize("online", [False, True])
def test_seeded_and_k_samples_distinct(online):
    m = model(online=online)
    a, e, d = speaker()
    one = m.generate(a, e, d, num_samples=4, seed=7)
    two = m.generate(a, e, d, num_samples=4, seed=7)
    other = m.generate(a, e, d, num_samples=4, seed=8)
    assert torch.equal(one["emotion"], two["emotion"]) and torch.equal(one["tdmm"], two["tdmm"])
    assert not torch.allclose(one["emotion"], other["emotion"])
    y = one["tdmm"]
    for i in range(4):
        for j in range(i + 1, 4):
            assert (y[:, i] - y[:, j]).abs().max() > 1e-4


@pytest.mark.parametrize("online", [False, True])
def test_k_batched_rows_equal_separate_items(online):
    """Sample k of item b in the B*K batch is what the item alone gives with that noise row."""
    m = model(online=online)
    a, e, d = speaker(b=2)
    windows = 4 if online else 1
    noise = torch.randn(windows, 2 * 3, 16, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        batched = m(a, e, d, num_samples=3, noise=noise).outputs["tdmm"]
        for b in range(2):
            for k in range(3):
                alone = m(
                    a[b : b + 1], e[b : b + 1], d[b : b + 1], num_samples=1, noise=noise[:, b * 3 + k : b * 3 + k + 1]
                ).outputs["tdmm"]
                assert torch.allclose(batched[b, k], alone[0, 0], atol=1e-5)


def test_online_generation_is_window_causal():
    """Window i sees the speaker up to its own end: changing the speaker from frame 8 on leaves
    frames 0..7 (windows 0, 1) unchanged and changes the later ones."""
    m = model(online=True)
    a, e, d = speaker(t=16)
    a2, e2, d2 = a.clone(), e.clone(), d.clone()
    a2[:, 8:] += 1.0
    e2[:, 8:] = torch.rand_like(e2[:, 8:])
    d2[:, 8:] += 0.5
    x = m.generate(a, e, d, num_samples=2, seed=1)
    y = m.generate(a2, e2, d2, num_samples=2, seed=1)
    for f in ("emotion", "tdmm"):
        assert torch.allclose(x[f][:, :, :8], y[f][:, :, :8], atol=1e-6)
        assert not torch.allclose(x[f][:, :, 8:], y[f][:, :, 8:], atol=1e-4)
    # a change inside window 1 (frames 4..7) reaches back to its first frame (window-level causality)
    a3 = a.clone()
    a3[:, 7] += 1.0
    z = m.generate(a3, e, d, num_samples=2, seed=1)
    assert torch.allclose(x["tdmm"][:, :, :4], z["tdmm"][:, :, :4], atol=1e-6)
    assert not torch.allclose(x["tdmm"][:, :, 4], z["tdmm"][:, :, 4], atol=1e-6)


def test_offline_sees_the_whole_clip():
    m = model(online=False)
    a, e, d = speaker(t=16)
    a2 = a.clone()
    a2[:, -1] += 1.0
    x, y = m.generate(a, e, d, num_samples=1, seed=1), m.generate(a2, e, d, num_samples=1, seed=1)
    assert not torch.allclose(x["tdmm"][:, :, 0], y["tdmm"][:, :, 0], atol=1e-6)


def test_cached_keys_values_equal_recomputing_the_prefix():
    """The features encoder's rollout caches the latent head's keys/values of generated frames; the
    re-encode path (what the video encoder needs) recomputes them every window: same numbers."""
    m = model(online=True)
    a, e, d = speaker(t=13)
    enc = m.encode_speaker(a, torch.cat([d, e], -1)).repeat_interleave(2, 0)
    noise = torch.randn(4, 4, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        fast = m._rollout(lambda e_: enc, 4, 13, 4, noise, True, prefix_stable=True)
        slow = m._rollout(lambda e_: enc[:, :e_], 4, 13, 4, noise, True, prefix_stable=False)
    for x, y in zip(fast, slow, strict=True):
        assert torch.allclose(x, y, atol=1e-5)


def test_video_encoder_path():
    torch.manual_seed(0)
    m = TransVAE(tiny(visual_encoder="video", visual_inputs=(), online=True)).eval()
    a, _, _ = speaker(t=8)
    video = torch.randn(2, 8, 3, 32, 32)
    out = m.generate(a, num_samples=2, seed=0, speaker_video=video)
    assert out["emotion"].shape == (2, 2, 8, 25)
    # online, each window re-encodes its prefix: a later frame does not change earlier windows
    v2 = video.clone()
    v2[:, 6] += 1.0
    out2 = m.generate(a, num_samples=2, seed=0, speaker_video=v2)
    assert torch.allclose(out["tdmm"][:, :, :4], out2["tdmm"][:, :, :4], atol=1e-6)
    with pytest.raises(InputError, match="speaker_video"):
        m.generate(a, num_samples=1, seed=0)
    with pytest.raises(InputError, match="speaker_video"):
        m.generate(a, num_samples=1, seed=0, speaker_video=video[:, :, :, :16].transpose(2, 3)[:, :, :1])


def test_input_errors():
    m = model()
    a, e, d = speaker()
    with pytest.raises(ConfigError):
        m.generate(a, e, d, num_samples=1)  # no seed
    with pytest.raises(ConfigError):
        m.generate(a, e, d, num_samples=0, seed=0)
    with pytest.raises(InputError, match="speaker_audio"):
        m.generate(a[..., :13], e, d, seed=0)
    with pytest.raises(InputError, match="speaker_tdmm"):
        m.generate(a, e, None, seed=0)
    with pytest.raises(InputError, match="expected"):
        m.generate(a, e[:, :5], d, seed=0)
    bad = a.clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(InputError, match="NaN"):
        m.generate(bad, e, d, seed=0)
    with pytest.raises(InputError, match="noise"):
        m(a, e, d, noise=torch.zeros(2, 2, 16))
