"""BeLFusion: configs, the autoencoder, latent statistics, the DDIM sampler, K samples, causality."""

from __future__ import annotations

import pytest
import torch

from reactcli.errors import ConfigError, InputError
from reactcli.models.belfusion import (
    BehaviourAEConfig,
    BehaviourAutoencoder,
    BeLFusion,
    BeLFusionConfig,
    latent_statistics,
    make_scheduler,
    timestep_embedding,
)

W = 5


def ae_config(**kw) -> BehaviourAEConfig:
    return BehaviourAEConfig(**{**dict(window=W, hidden_dim=12, z_dim=12, mlp_dims=(8,)), **kw})


def tiny(**kw) -> BeLFusionConfig:
    base = dict(autoencoder=ae_config(), hidden_channels=24, num_layers=3, time_channels=8, k=3)
    base.update(kw)
    return BeLFusionConfig(**base)


def build(**kw) -> BeLFusion:
    torch.manual_seed(0)
    m = BeLFusion(tiny(**kw))
    emo = torch.rand(6, 4 * W, 25, generator=torch.Generator().manual_seed(1))
    m.set_statistics(latent_statistics(m.autoencoder, [emo], m.config.latent))
    return m.eval()


def emotion(b=2, t=4 * W, seed=0):
    return torch.rand(b, t, 25, generator=torch.Generator().manual_seed(seed))


def test_configs_roundtrip_and_errors():
    cfg = tiny(online=True, latent="mu", preprocessing="standardize", inference_steps=5)
    again = BeLFusionConfig.from_dict(cfg.to_dict())
    assert again == cfg and isinstance(again.autoencoder, BehaviourAEConfig)
    assert again.to_dict()["autoencoder"]["mlp_dims"] == [8]
    assert BeLFusion.from_dict(BeLFusion(cfg).to_dict()).config == cfg
    assert BehaviourAutoencoder.from_dict(BehaviourAutoencoder(ae_config()).to_dict()).config == ae_config()
    for bad in (
        dict(latent="z"),
        dict(preprocessing="scale"),
        dict(num_layers=1),
        dict(inference_steps=11),
        dict(window_start="random"),
        dict(k=0),
        dict(cond_dropout=2.0),
        dict(autoencoder=ae_config(z_dim=8)),
    ):  # the hidden state decodes through Linear(z_dim, H)
        with pytest.raises(ConfigError):
            tiny(**bad)
    tiny(latent="mu", autoencoder=ae_config(z_dim=8))  # fine with the VAE mean
    for bad in (dict(coeff_target="mean"), dict(window=0), dict(mlp_dims=())):
        with pytest.raises(ConfigError):
            ae_config(**bad)
    with pytest.raises(ConfigError, match="unknown"):
        BeLFusionConfig.from_dict({"latent_dim": 3})


def test_autoencoder_windows_encode_decode():
    torch.manual_seed(0)
    ae = BehaviourAutoencoder(ae_config()).eval()
    x = emotion(t=2 * W + 3)
    win = ae.windows(x)
    assert win.shape == (4, W, 25) and torch.equal(win[1], x[0, W : 2 * W])  # the remainder is dropped
    mu, logvar, h = ae.encode(win)
    assert mu.shape == logvar.shape == h.shape == (4, 12)
    assert torch.equal(ae.latent(win, "hidden"), h) and torch.allclose(ae.latent(win, "mu"), mu)
    out = ae(win)
    assert out["prediction"].shape == (4, W, 25) and out["coefficients"].shape == (4, W, 58)
    assert torch.allclose(out["prediction"], ae.decode(mu))  # no eps: z = mu
    noisy = ae(win, eps=torch.ones(4, 12))
    assert not torch.allclose(noisy["prediction"], out["prediction"])
    # the decoder is autoregressive: frame j depends only on the latent (one window at a time)
    assert torch.allclose(ae.decode(mu[:2]), out["prediction"][:2], atol=1e-6)
    with pytest.raises(InputError, match="windows"):
        ae.hidden(torch.zeros(2, W + 1, 25))
    with pytest.raises(InputError, match="emotion"):
        ae.windows(torch.zeros(1, W - 1, 25))


def test_latent_statistics_and_normalisation():
    torch.manual_seed(0)
    ae = BehaviourAutoencoder(ae_config())
    a, b = emotion(b=3, seed=1), emotion(b=2, t=2 * W, seed=2)
    stats = latent_statistics(ae, [a, b], "hidden")
    lat = torch.cat([ae.latent(ae.windows(a)), ae.latent(ae.windows(b))]).detach()
    assert torch.allclose(stats["min"], lat.min(0).values) and torch.allclose(stats["var"], lat.var(0))
    assert ae.training  # restored
    m = BeLFusion.from_autoencoder(ae, stats, tiny())
    assert torch.equal(m.autoencoder.fc_z.weight, ae.fc_z.weight)
    assert not any(p.requires_grad for p in m.autoencoder.parameters())
    x = m.preprocess(lat)
    assert x.min() >= -1 - 1e-5 and x.max() <= 1 + 1e-5 and torch.allclose(m.undo_preprocess(x), lat, atol=1e-5)
    for mode in ("standardize", "none"):
        m2 = BeLFusion.from_autoencoder(ae, stats, tiny(preprocessing=mode))
        assert torch.allclose(m2.undo_preprocess(m2.preprocess(lat)), lat, atol=1e-5)
    bare = BeLFusion(tiny())
    with pytest.raises(ConfigError, match="statistics"):
        bare.preprocess(lat)
    with pytest.raises(InputError, match="max"):
        bare.set_statistics({"min": stats["min"]})
    with pytest.raises(InputError, match="shape"):
        bare.set_statistics({k: v[:3] for k, v in stats.items()})
    with pytest.raises(InputError):
        latent_statistics(ae, [])


def test_timestep_embedding_formula():
    e = timestep_embedding(torch.tensor([0.0, 3.0]), 5)
    assert e.shape == (2, 5) and torch.equal(e[:, -1], torch.zeros(2))
    assert torch.allclose(e[1, :2], torch.cos(torch.tensor([3.0, 3.0 * 10000**-0.5])))
    assert torch.allclose(e[1, 2:4], torch.sin(torch.tensor([3.0, 3.0 * 10000**-0.5])))


def test_scheduler_is_the_authors_cosine_schedule():
    import math

    s = make_scheduler(tiny())
    ab = [math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2 for t in (i / 10 for i in range(11))]
    betas = [min(1 - ab[i + 1] / ab[i], 0.999) for i in range(10)]
    assert torch.allclose(s.betas, torch.tensor(betas, dtype=torch.float32), atol=1e-6)
    s.set_timesteps(10)
    assert s.timesteps.tolist() == list(range(9, -1, -1))


@pytest.mark.parametrize("online", [False, True])
@pytest.mark.parametrize("t", [4 * W, 4 * W + 2])
def test_generate_shapes_seeds_and_distinct_samples(online, t):
    m = build(online=online)
    x = emotion(t=t)
    one = m.generate(speaker_emotion=x, num_samples=4, seed=3)
    two = m.generate(None, x, None, num_samples=4, seed=3)
    other = m.generate(speaker_emotion=x, num_samples=4, seed=4)
    assert one["emotion"].shape == (2, 4, t, 25) and one["tdmm"].shape == (2, 4, t, 58)
    assert torch.equal(one["emotion"], two["emotion"]) and not torch.allclose(one["emotion"], other["emotion"])
    y = one["emotion"]
    assert all((y[:, i] - y[:, j]).abs().max() > 1e-4 for i in range(4) for j in range(i + 1, 4))
    assert torch.allclose(one["tdmm"], m.autoencoder.coefficients(one["emotion"]))


def test_k_batched_rows_equal_separate_calls():
    m = build()
    x = emotion()
    noise = torch.randn(2, 3, 4, 12, generator=torch.Generator().manual_seed(0))
    batched = m.generate(speaker_emotion=x, num_samples=3, noise=noise)["emotion"]
    for b in range(2):
        for k in range(3):
            alone = m.generate(speaker_emotion=x[b : b + 1], num_samples=1, noise=noise[b : b + 1, k : k + 1])[
                "emotion"
            ]
            assert torch.allclose(batched[b, k], alone[0, 0], atol=1e-5)


def test_online_causality_and_offline_window_locality():
    """Online, listener window j sees speaker window j-1 only: changing the speaker from frame 2w on
    leaves frames [0, 3w) unchanged. Offline, window j sees its own speaker window: frames [0, 2w)
    stay unchanged and window 2 changes."""
    x = emotion()
    x2 = x.clone()
    x2[:, 2 * W :] = torch.rand_like(x2[:, 2 * W :])
    for online, same in ((True, 3 * W), (False, 2 * W)):
        m = build(online=online)
        a, b = (
            m.generate(speaker_emotion=x, num_samples=2, seed=1),
            m.generate(speaker_emotion=x2, num_samples=2, seed=1),
        )
        assert torch.equal(a["emotion"][:, :, :same], b["emotion"][:, :, :same])
        assert not torch.allclose(a["emotion"][:, :, same:], b["emotion"][:, :, same:])
    m = build(online=True)
    conds = m.condition_windows(x)
    assert torch.equal(conds[:, 0], torch.zeros(2, W, 25)) and torch.equal(conds[:, 2], x[:, W : 2 * W])


def test_last_partial_window_keeps_earlier_frames():
    m = build()
    x = emotion(t=3 * W + 2)
    assert m.window_starts(3 * W + 2) == [0, W, 2 * W, 2 * W + 2]
    noise = torch.randn(1, 1, 4, 12, generator=torch.Generator().manual_seed(0))
    out = m.generate(speaker_emotion=x[:1], num_samples=1, noise=noise)["emotion"]
    full = m.generate(speaker_emotion=x[:1, : 3 * W], num_samples=1, noise=noise[:, :, :3])["emotion"]
    assert torch.allclose(out[:, :, : 3 * W], full, atol=1e-6)  # other batch sizes: float rounding only


def test_generate_errors():
    m = build()
    with pytest.raises(InputError, match="speaker_emotion"):
        m.generate(num_samples=1, seed=0)
    with pytest.raises(InputError, match="at least"):
        m.generate(speaker_emotion=emotion(t=W - 1), seed=0)
    with pytest.raises(InputError, match="25"):
        m.generate(speaker_emotion=torch.zeros(1, 2 * W, 24), seed=0)
    with pytest.raises(ConfigError):
        m.generate(speaker_emotion=emotion(), num_samples=2)
    with pytest.raises(InputError, match="noise"):
        m.generate(speaker_emotion=emotion(), num_samples=2, noise=torch.zeros(2, 2, 3, 12))
    bad = emotion()
    bad[0, 0, 0] = float("inf")
    with pytest.raises(InputError, match="NaN"):
        m.generate(speaker_emotion=bad, seed=0)


def test_training_forward_best_of_k_and_eval_mode_of_autoencoder():
    m = build()
    m.train()
    assert m.denoiser.training and not m.autoencoder.training
    lis, spk = emotion(seed=5)[:, :W], emotion(seed=6)[:, :W]
    t = torch.tensor([0, 9])
    noise = torch.randn(6, 12, generator=torch.Generator().manual_seed(0))
    out = m(lis, spk, t, noise)
    assert set(out) == {"loss", "l1_encoded", "mse_decoded"}
    assert torch.allclose(out["loss"], 10 * out["l1_encoded"] + 10 * out["mse_decoded"])
    out["loss"].backward()
    assert m.denoiser.blocks[0].linear.weight.grad is not None
    assert all(p.grad is None for p in m.autoencoder.parameters())
    # best of k: the loss with k identical noises equals the loss of one copy
    same = noise[::3].repeat_interleave(3, 0)
    m1 = BeLFusion(tiny(k=1))
    m1.load_state_dict(m.state_dict())
    with torch.no_grad():
        assert torch.allclose(m(lis, spk, t, same)["loss"], m1(lis, spk, t, noise[::3])["loss"], atol=1e-6)
    with pytest.raises(InputError, match="noise"):
        m(lis, spk, t, noise[:5])
