"""Issue 29 on the window-by-window generators: each test here must fail when a generator's output
jumps at its window edges (the old behaviour is run beside the fix to prove the check can fail),
plus the pieces the fixes are made of (overlapping-window folding, min-SNR loss weights,
correlated latent noise)."""

from __future__ import annotations

import pytest
import torch

from reactcli.errors import ConfigError, InputError
from reactcli.metrics.naturalness import edge_ratios, speed_profile
from reactcli.models.belfusion import BeLFusion, BeLFusionConfig, BehaviourAEConfig, latent_statistics
from reactcli.models.perfrdiff.diffusion import DiffusionConfig, make_scheduler
from reactcli.models.transvae import TransVAE, TransVAEConfig
from reactcli.models.windows import blend_weights, covering_starts, fold_windows
from reactcli.training.perfrdiff_losses import loss_weights
from tests.helpers.signals import smooth_speaker


def _edge(y: torch.Tensor, period: int, phase: int = 0) -> float:
    """Mean speed into the first frame of every window (starting at ``phase``) over elsewhere."""
    return float(edge_ratios(speed_profile(y.numpy()), period)[phase])


# ---- the shared window folding ------------------------------------------------------------


def test_fold_windows_by_hand():
    assert blend_weights(4).tolist() == [1, 2, 2, 1]
    assert covering_starts(10, 4, 2) == [0, 2, 4, 6]
    assert covering_starts(11, 4, 2) == [0, 2, 4, 6, 7]  # the last window ends at the last frame
    assert covering_starts(8, 4, 4) == [0, 4]
    with pytest.raises(InputError, match="at least 4 frames"):
        covering_starts(3, 4, 2)
    with pytest.raises(ConfigError, match="stride"):
        covering_starts(10, 4, 5)
    # two windows of 4 frames, stride 2, constants 0 and 6: frames 2, 3 are weighted means
    x = torch.tensor([0.0, 6.0])[:, None, None].expand(2, 4, 1)
    frames = torch.tensor([0, 2])[:, None] + torch.arange(4)
    y = fold_windows(x, frames, 6, blend_weights(4))[:, 0]
    # frame 2: weights 2 (window 0, 3rd frame) and 1 (window 1, 1st frame) -> (0*2 + 6*1) / 3 = 2
    # frame 3: weights 1 and 2 -> (0*1 + 6*2) / 3 = 4
    torch.testing.assert_close(y, torch.tensor([0.0, 0.0, 2.0, 4.0, 6.0, 6.0]))
    with pytest.raises(InputError, match="frames must be"):
        fold_windows(x, frames[:, :3], 6, blend_weights(4))


# ---- PerFRDiff: min-SNR loss weights, overlap as a checkpoint default ----------------------


def test_min_snr_weights_by_hand():
    for kind in ("sample", "epsilon", "v_prediction"):
        cfg = DiffusionConfig(prediction_type=kind, loss_weighting="min_snr", min_snr_gamma=5.0)
        sched = make_scheduler(cfg)
        t = torch.tensor([1, 300, 600, 999])
        ab = sched.alphas_cumprod[t].double()
        snr = ab / (1 - ab)
        x0_weight = torch.minimum(snr, torch.tensor(5.0, dtype=torch.float64))
        expect = {"sample": x0_weight, "epsilon": x0_weight / snr, "v_prediction": x0_weight / (snr + 1)}[kind]
        torch.testing.assert_close(loss_weights(sched, t).double(), expect, rtol=1e-5, atol=1e-7)
        # low noise is capped at gamma in x0 terms; high noise weighs its SNR (< 1)
        if kind == "sample":
            assert float(loss_weights(sched, t)[0]) == 5.0 and float(loss_weights(sched, t)[-1]) < 0.01
    # clamped_snr: min-SNR with the truncated-SNR floor, clamp(SNR, 1, gamma) in x0 terms
    sched = make_scheduler(DiffusionConfig(loss_weighting="clamped_snr", min_snr_gamma=5.0))
    t = torch.tensor([1, 300, 600, 999])
    snr = (sched.alphas_cumprod[t] / (1 - sched.alphas_cumprod[t])).double()
    torch.testing.assert_close(loss_weights(sched, t).double(), snr.clamp(1.0, 5.0), rtol=1e-5, atol=1e-7)
    assert float(loss_weights(sched, t)[-1]) == 1.0
    assert loss_weights(make_scheduler(DiffusionConfig()), torch.tensor([5])) is None  # uniform: plain MSE
    with pytest.raises(ConfigError, match="loss_weighting"):
        DiffusionConfig(loss_weighting="snr")
    with pytest.raises(ConfigError, match="overlap and context_frames"):
        DiffusionConfig(overlap=True, context_frames=5)


def test_min_snr_training_step_is_the_weighted_mse():
    """The GAFRG step with min_snr equals the mean over windows of weight(t) x that window's MSE,
    recomputed here from the same draws (same generator state)."""
    from reactcli.models.perfrdiff import GAFRG, GAFRGConfig
    from reactcli.training.perfrdiff_losses import _diffusion_loss, _speaker_windows

    torch.manual_seed(0)
    m = GAFRG(GAFRGConfig(d_model=16, num_layers=1, num_heads=2, ffn_dim=16, emotion_hidden=8, window=6,
                          speaker_lag=6, dropout=0.0))
    a, e, f = smooth_speaker(b=2, t=24)
    batch = {"speaker_audio": a, "speaker_emotion": e, "speaker_tdmm": f}
    starts = torch.tensor([[0, 6], [12, 18]])
    x0 = torch.rand(4, 6, 25)
    speaker = _speaker_windows(m, batch, starts)
    sched = make_scheduler(DiffusionConfig(loss_weighting="min_snr"))
    loss, _ = _diffusion_loss(m, sched, x0, speaker, torch.Generator().manual_seed(3), 0.0, starts=starts.reshape(-1))
    g = torch.Generator().manual_seed(3)
    t = torch.randint(0, 1000, (4,), generator=g)
    noise = torch.randn(x0.shape, generator=g)
    keep = (torch.rand((4, 3), generator=g) >= 0.0).float()
    pred = m.denoise(sched.add_noise(x0, noise, t), t, *speaker, None, starts.reshape(-1), keep)
    per_window = (pred - x0).pow(2).mean(dim=(1, 2))
    torch.testing.assert_close(loss, (per_window * loss_weights(sched, t)).mean())
    assert not torch.allclose(loss, per_window.mean())  # the weighting changes the loss


def test_perfrdiff_generator_takes_overlap_from_the_checkpoint(tmp_path):
    """A checkpoint whose diffusion config says overlap generates with overlapping windows unless
    told otherwise; an explicit --context N > 0 means continued windows."""
    from reactcli.generation.base import GenerateConfig
    from reactcli.generation.perfrdiff import PerFRDiffGenerator
    from reactcli.models.perfrdiff import GAFRG, GAFRGConfig

    torch.manual_seed(0)
    gafrg = GAFRG(GAFRGConfig(d_model=16, num_layers=1, num_heads=2, ffn_dim=16, emotion_hidden=8, window=6,
                              speaker_lag=6, dropout=0.0))
    from reactcli.models.checkpoint import load_checkpoint, save_model

    path = tmp_path / "gafrg.pt"
    save_model(path, "perfrdiff-gafrg", gafrg, gafrg.config.to_dict(),
               diffusion=DiffusionConfig(overlap=True, num_inference_steps=2).to_dict())
    base = dict(split="test", num_samples=2)
    g = PerFRDiffGenerator(load_checkpoint(path), str(path), GenerateConfig(**base), torch.device("cpu"))
    assert g.cfg.overlap is True and g.cfg.context == 0
    g = PerFRDiffGenerator(load_checkpoint(path), str(path), GenerateConfig(**base, context=3),
                           torch.device("cpu"))
    assert g.cfg.overlap is False and g.cfg.context == 3
    g = PerFRDiffGenerator(load_checkpoint(path), str(path), GenerateConfig(**base, overlap=False),
                           torch.device("cpu"))
    assert g.cfg.overlap is False and g.cfg.context == 0


# ---- Trans-VAE: crossfaded windows, correlated latent noise ---------------------------------


def _transvae(**kw) -> TransVAE:
    torch.manual_seed(0)
    cfg = dict(feature_dim=16, ffn_dim=32, n_heads=4, window=8, generate_window=4, dropout=0.0, online=True)
    cfg.update(kw)
    return TransVAE(TransVAEConfig(**cfg)).eval()


def test_transvae_crossfade_removes_the_jump_at_window_edges():
    """Random weights, a new latent every 4 frames: the authors' hard switch jumps into the first
    frame of every window; the crossfade does not (the check fails on the old behaviour)."""
    a, e, d = smooth_speaker(b=2, t=96)
    hard = _transvae().generate(a, e, d, num_samples=8, seed=0)["emotion"]
    soft = _transvae(crossfade=True).generate(a, e, d, num_samples=8, seed=0)["emotion"]
    assert _edge(hard, 4) > 2.0
    assert _edge(soft, 4) < 1.5
    # the crossfade spreads the change over the window instead of removing motion
    assert float((soft[:, :, 1:] - soft[:, :, :-1]).abs().mean()) > 0.2 * float((hard[:, :, 1:] - hard[:, :, :-1]).abs().mean())


def test_transvae_crossfade_keeps_window_level_causality():
    """Frame t still depends only on the speaker before the end of its window."""
    m = _transvae(crossfade=True)
    a, e, d = smooth_speaker(b=2, t=24)
    a2, e2, d2 = a.clone(), e.clone(), d.clone()
    a2[:, 12:] += 1.0
    e2[:, 12:] = torch.rand_like(e2[:, 12:])
    x = m.generate(a, e, d, num_samples=2, seed=1)["emotion"]
    y = m.generate(a2, e2, d2, num_samples=2, seed=1)["emotion"]
    assert torch.allclose(x[:, :, :12], y[:, :, :12], atol=1e-6)
    assert not torch.allclose(x[:, :, 12:], y[:, :, 12:], atol=1e-4)


def test_transvae_noise_correlation():
    """rho = 0 is the authors' noise stream exactly; rho in (0, 1) gives N(0, 1) marginals with lag-1
    correlation rho across windows; rho = 1 one noise per sample."""
    a, e, d = smooth_speaker(b=1, t=16)
    plain = _transvae().generate(a, e, d, num_samples=2, seed=5)["emotion"]
    g = torch.Generator().manual_seed(5)
    explicit = _transvae()(a, e, d, num_samples=2, window=4, noise=torch.randn(4, 2, 16, generator=g),
                           detach_history=True).outputs["emotion"]
    torch.testing.assert_close(plain, explicit)
    from reactcli.models.transvae import window_noise

    eps = window_noise(6, 4000, 16, 0.5, torch.Generator().manual_seed(0))
    assert eps.shape == (6, 4000, 16)
    flat = eps.reshape(6, -1)
    assert abs(float(flat.var(1).mean()) - 1.0) < 0.03
    lag1 = float((flat[1:] * flat[:-1]).mean())
    assert abs(lag1 - 0.5) < 0.03
    same = window_noise(3, 2, 4, 1.0, torch.Generator().manual_seed(0))
    assert torch.equal(same[0], same[2])
    with pytest.raises(ConfigError, match="noise_correlation"):
        TransVAEConfig(noise_correlation=1.5)


# ---- BeLFusion: overlapping latent windows -------------------------------------------------


def _belfusion(**kw) -> BeLFusion:
    torch.manual_seed(0)
    ae = BehaviourAEConfig(window=10, hidden_dim=12, z_dim=12, mlp_dims=(8,))
    m = BeLFusion(BeLFusionConfig(autoencoder=ae, hidden_channels=24, num_layers=3, time_channels=8, k=3, **kw))
    emo = torch.rand(6, 40, 25, generator=torch.Generator().manual_seed(1))
    m.set_statistics(latent_statistics(m.autoencoder, [emo], m.config.latent))
    return m.eval()


def test_belfusion_overlapping_windows_remove_the_jump_at_window_edges():
    """Consecutive windows (the authors') are separate latents decoded from a zero frame: a jump into
    every window's first frame; windows every w/2 frames blended do not jump (the check fails on
    the authors' windows)."""
    _, e, _ = smooth_speaker(b=2, t=100)
    hard = _belfusion().generate(speaker_emotion=e, num_samples=8, seed=0)["emotion"]
    soft = _belfusion(window_stride=5).generate(speaker_emotion=e, num_samples=8, seed=0)["emotion"]
    assert _edge(hard, 10) > 2.0
    assert _edge(soft, 5) < 1.5  # into the first frame of every window (one every 5 frames)
    assert _belfusion(window_stride=5).window_starts(100) == list(range(-5, 100, 5))
    assert _belfusion(window_stride=5).window_starts(103) == list(range(-5, 103, 5))
    assert _belfusion().window_starts(103) == list(range(0, 91, 10)) + [93]
    with pytest.raises(ConfigError, match="window_stride"):
        _belfusion(window_stride=11)


def test_belfusion_shared_noise_and_causality_with_overlap():
    """shared_noise: every window of a sample starts from one draw; online with overlap a frame still
    depends only on speaker frames before it."""
    _, e, _ = smooth_speaker(b=2, t=40)
    m = _belfusion(window_stride=5, shared_noise=True)
    x = m.generate(speaker_emotion=e, num_samples=2, seed=3)["emotion"]
    n = len(m.window_starts(40))
    g = torch.Generator().manual_seed(3)
    one = torch.randn(2, 2, 1, 12, generator=g).expand(2, 2, n, 12)
    torch.testing.assert_close(x, m.generate(speaker_emotion=e, num_samples=2, noise=one.contiguous())["emotion"])
    m = _belfusion(window_stride=5, online=True)
    e2 = e.clone()
    e2[:, 20:] = torch.rand_like(e2[:, 20:])
    a = m.generate(speaker_emotion=e, num_samples=2, seed=1)["emotion"]
    b = m.generate(speaker_emotion=e2, num_samples=2, seed=1)["emotion"]
    assert torch.equal(a[:, :, :20], b[:, :, :20])
    assert not torch.allclose(a[:, :, 20:], b[:, :, 20:])
