"""ReactFace: shapes, causality, determinism, window/momentum, fast == re-encode path, training."""

from __future__ import annotations

import math

import pytest
import torch

from reactcli.errors import ConfigError, InputError
from reactcli.models.checkpoint import save_model
from reactcli.models.layers import alignment_bias, periodic_encoding, sinusoidal_encoding
from reactcli.models.reactface import ReactFace, ReactFaceConfig
from reactcli.models.registry import load_model
from reactcli.training.reactface_losses import (
    appropriate_reconstruction_loss,
    diversity_loss,
    kl_standard_normal,
    reactface_training_step,
    smoothness_loss,
    weighted_smooth_l1,
)
from tests.helpers.signals import smooth_speaker


def tiny(**kw) -> ReactFaceConfig:
    base = dict(
        d_model=16, n_heads=2, ffn_dim=32, vae_heads=2, vae_ffn_dim=32, latent_dim=8, period=2,
        train_window=8, generate_window=4, history_frames=12, dropout=0.0, vae_dropout=0.0,
    )
    base.update(kw)
    return ReactFaceConfig(**base)


def speaker(b=2, t=21, a=78, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(b, t, a, generator=g),
        torch.rand(b, t, 25, generator=g),
        torch.randn(b, t, 58, generator=g),
    )


def model(**kw) -> ReactFace:
    torch.manual_seed(0)
    return ReactFace(tiny(**kw)).eval()


# ---- layers ------------------------------------------------------------------------------


def test_sinusoidal_matches_formula():
    pe = sinusoidal_encoding(torch.tensor([0, 3, 100]), 6)
    for r, t in enumerate([0, 3, 100]):
        for i in range(3):
            assert pe[r, 2 * i].item() == pytest.approx(math.sin(t / 10000 ** (2 * i / 6)), abs=1e-5)
            assert pe[r, 2 * i + 1].item() == pytest.approx(math.cos(t / 10000 ** (2 * i / 6)), abs=1e-5)


def test_periodic_encoding_repeats():
    pe = periodic_encoding(torch.arange(24), 8, period=8)
    assert torch.equal(pe[:8], pe[8:16]) and torch.equal(pe[:8], pe[16:])
    assert not torch.equal(pe[0], pe[1])


def test_alignment_bias_vim_by_hand():
    b = alignment_bias(torch.arange(5), torch.arange(5), period=2, tokens_per_frame=1)
    inf = float("-inf")
    expected = torch.tensor(
        [
            [0, inf, inf, inf, inf],
            [0, 0, inf, inf, inf],
            [-1, 0, 0, inf, inf],
            [-1, -1, 0, 0, inf],
            [-2, -1, -1, 0, 0],
        ]
    )
    assert torch.equal(b, expected)


def test_alignment_bias_mim_frame_sees_its_two_tokens():
    # frame i sees audio tokens <= 2i+1; bias -floor((2i+1-j)/(2p))
    b = alignment_bias(torch.tensor([0, 3]), torch.arange(8), period=2, tokens_per_frame=2)
    assert torch.isinf(b[0, 2:]).all() and (b[0, :2] == 0).all()
    assert b[1].tolist() == [-1.0, -1.0, -1.0, -1.0, -0.0, 0.0, 0.0, 0.0]


# ---- config / checkpoint -----------------------------------------------------------------


def test_config_validation():
    with pytest.raises(ConfigError, match="unknown feature"):
        ReactFaceConfig(output_heads=("landmarks",))
    with pytest.raises(ConfigError, match="audio_dim"):
        ReactFaceConfig(audio_dim=77)
    with pytest.raises(ConfigError, match="momentum"):
        ReactFaceConfig(momentum=1.5)
    with pytest.raises(ConfigError, match="unknown key"):
        ReactFaceConfig.from_dict({"d_model": 16, "nope": 1})


def test_checkpoint_roundtrip_rebuilds_without_config(tmp_path):
    m = model(output_heads=("emotion",), visual_inputs=("tdmm",))
    path = save_model(tmp_path / "ckpt.pt", "reactface", m, m.config.to_dict())
    d = torch.load(path, weights_only=True)  # plain dict: tensors, lists, numbers, strings
    assert d["model"] == "reactface" and d["config"] == m.config.to_dict()
    m2, _ = load_model(path)
    m2.eval()
    assert m2.config == m.config
    a, e, t = speaker()
    o1 = m.generate(a, speaker_tdmm=t, num_samples=3, seed=5)
    o2 = m2.generate(a, speaker_tdmm=t, num_samples=3, seed=5)
    assert torch.equal(o1["emotion"], o2["emotion"])
    with pytest.raises(InputError, match="perfrdiff-gafrg"):
        load_model(path, expect=("perfrdiff-gafrg",))


# ---- generation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "heads,visual,audio_dim",
    [
        (("emotion",), ("emotion",), 78),
        (("tdmm",), ("tdmm",), 1536),
        (("emotion", "tdmm"), ("tdmm", "emotion"), 78),
    ],
)
def test_shapes(heads, visual, audio_dim):
    m = model(output_heads=heads, visual_inputs=visual, audio_dim=audio_dim)
    a, e, t = speaker(b=2, t=10, a=audio_dim)
    out = m.generate(a, e, t, num_samples=3, seed=0)
    assert set(out) == set(heads)
    for h in heads:
        assert out[h].shape == (2, 3, 10, 25 if h == "emotion" else 58)
        assert torch.isfinite(out[h]).all()
    if "emotion" in heads:  # bounded emotion head: AUs in [0,1], VA in [-1,1], probs sum to 1
        em = out["emotion"]
        assert (em[..., :15] >= 0).all() and (em[..., :15] <= 1).all()
        assert (em[..., 15:17].abs() <= 1).all()
        assert torch.allclose(em[..., 17:].sum(-1), torch.ones(()), atol=1e-5)


def test_determinism_and_samples_differ():
    m = model()
    a, e, t = speaker()
    o1 = m.generate(a, e, t, num_samples=4, seed=11)
    o2 = m.generate(a, e, t, num_samples=4, generator=torch.Generator().manual_seed(11))
    o3 = m.generate(a, e, t, num_samples=4, seed=12)
    for h in o1:
        assert torch.equal(o1[h], o2[h])
        assert not torch.allclose(o1[h], o3[h])
        y = o1[h]
        for i in range(4):  # every pair of the K samples differs
            for j in range(i + 1, 4):
                assert (y[:, i] - y[:, j]).abs().max() > 1e-4
    with pytest.raises(ConfigError, match="seed"):
        m.generate(a, e, t, num_samples=2)


def test_speaker_encoder_is_causal_prefix_equivalent():
    m = model()
    a, e, t = speaker(t=20)
    vis = torch.cat([t, e], -1)
    full = m.encode_speaker(a, vis)
    for end in (1, 7, 13):
        pre = m.encode_speaker(a[:, :end], vis[:, :end])
        torch.testing.assert_close(pre.visual, full.visual[:, :end], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(pre.audio, full.audio[:, : 2 * end], atol=1e-6, rtol=1e-6)


def test_generation_is_causal():
    m = model()
    a, e, t = speaker(t=21)
    base = m.generate(a, e, t, num_samples=2, seed=3, window=4)
    for cut in (4, 9, 16):  # change every speaker input from frame `cut` on
        a2, e2, t2 = a.clone(), e.clone(), t.clone()
        a2[:, cut:] += 5.0
        e2[:, cut:] = 1.0 - e2[:, cut:]
        t2[:, cut:] *= -3.0
        other = m.generate(a2, e2, t2, num_samples=2, seed=3, window=4)
        for h in base:
            torch.testing.assert_close(other[h][:, :, :cut], base[h][:, :, :cut], atol=1e-5, rtol=1e-5)
            assert (other[h][:, :, cut:] - base[h][:, :, cut:]).abs().max() > 1e-4


def test_fast_path_equals_reencode_prefix():
    m = model(history_frames=6, past_layers=2)
    a, e, t = speaker(t=23)
    fast = m.generate(a, e, t, num_samples=3, seed=7, window=4)
    slow = m.generate_reencode_prefix(a, e, t, num_samples=3, seed=7, window=4)
    for h in fast:
        torch.testing.assert_close(fast[h], slow[h], atol=1e-5, rtol=1e-4)


def test_window_and_momentum_change_output():
    m = model()
    a, e, t = speaker(t=16)
    ref = m.generate(a, e, t, num_samples=2, seed=1, window=4, momentum=0.9)
    mom = m.generate(a, e, t, num_samples=2, seed=1, window=4, momentum=0.2)
    win = m.generate(a, e, t, num_samples=2, seed=1, window=8, momentum=0.9)
    for h in ref:
        # the first window is sampled before any smoothing, so momentum acts from window 2 on
        torch.testing.assert_close(mom[h][:, :, :4], ref[h][:, :, :4])
        assert (mom[h][:, :, 4:] - ref[h][:, :, 4:]).abs().max() > 1e-4
        assert (win[h] - ref[h]).abs().max() > 1e-4


def test_momentum_one_freezes_latent():
    # alpha = 1 keeps z_t = z_{t-w} forever: noise drawn after the first window cannot matter;
    # with alpha = 0.5 it must.
    m = model()
    a, e, t = speaker(t=12)
    enc = m.encode_speaker(a, torch.cat([t, e], -1))
    noise = torch.randn(3, 2, 8, generator=torch.Generator().manual_seed(0))
    noise2 = noise.clone()
    noise2[1:] = torch.randn(2, 2, 8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        run = lambda nz, mom: m._rollout(lambda _e: enc, 2, 12, 1, 4, mom, nz, True)[0]  # noqa: E731
        torch.testing.assert_close(run(noise, 1.0), run(noise2, 1.0))
        assert (run(noise, 0.5) - run(noise2, 0.5))[:, 4:].abs().max() > 1e-4


def test_input_errors():
    m = model()
    a, e, t = speaker()
    with pytest.raises(InputError, match="speaker_audio"):
        m.generate(a[..., :10], e, t, seed=0)
    with pytest.raises(InputError, match="speaker_tdmm"):
        m.generate(a, e, t[:, :5], seed=0)
    with pytest.raises(InputError, match="speaker_tdmm is required"):
        m.generate(a, e, None, seed=0)
    bad = a.clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(InputError, match="NaN"):
        m.generate(bad, e, t, seed=0)


# ---- losses ------------------------------------------------------------------------------


def test_weighted_smooth_l1_by_hand():
    pred = torch.zeros(1, 2, 58)
    tgt = torch.zeros(1, 2, 58)
    tgt[0, 0, 0] = 0.5  # smooth-l1: 0.5 * 0.5^2 = 0.125
    tgt[0, 1, 53] = 3.0  # pose dim: |3| - 0.5 = 2.5, x10 = 25
    w = torch.ones(58)
    w[52:] = 10
    assert weighted_smooth_l1(pred, tgt, w).item() == pytest.approx((0.125 + 25.0) / (2 * 58))


def test_appropriate_reconstruction_takes_min_and_ignores_padding():
    b, k, m, t = 2, 2, 3, 4
    cands = torch.stack([torch.full((t, 25), float(v)) for v in (0.0, 1.0, 2.0)])[None].repeat(b, 1, 1, 1)
    pred = torch.full((b, k, t, 25), 1.9)
    mask = torch.tensor([[True, True, True], [True, True, False]])
    loss, best = appropriate_reconstruction_loss({"emotion": pred}, {"emotion": cands}, mask)
    assert best.tolist() == [[2, 2], [1, 1]]  # item 1: candidate 2 is padding
    expected = (0.5 * 0.1**2 + 0.5 * 0.9**2) / 2  # both |diff| < beta = 1: quadratic branch
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    loss2, best2 = appropriate_reconstruction_loss({"emotion": pred}, {"emotion": cands}, mask, max_neighbours=1)
    assert best2.tolist() == [[0, 0], [0, 0]]
    with pytest.raises(InputError, match="no appropriate"):
        appropriate_reconstruction_loss({"emotion": pred}, {"emotion": cands}, torch.zeros(b, m, dtype=torch.bool))


def test_kl_diversity_smoothness_identities():
    assert kl_standard_normal(torch.zeros(3, 4), torch.zeros(3, 4)).item() == pytest.approx(0.0)
    # KL(N(1, 1) || N(0, 1)) = 0.5 per dim
    assert kl_standard_normal(torch.ones(2, 5), torch.zeros(2, 5)).item() == pytest.approx(0.5)
    y = torch.zeros(1, 2, 3, 2)
    assert diversity_loss(y, 100.0).item() == pytest.approx(1.0)  # identical samples: exp(0)
    y[0, 1] = 1.0  # squared distance 6
    assert diversity_loss(y, 100.0).item() == pytest.approx(math.exp(-6 / 100))
    assert diversity_loss(y[:, :1], 100.0).item() == 0.0
    lin = torch.arange(10.0).view(1, 10, 1) * 3 + 1  # linear motion: no second difference
    assert smoothness_loss(lin, torch.zeros_like(lin)).item() == pytest.approx(0.0)
    sq = (torch.arange(5.0) ** 2).view(5, 1)  # second difference 2 everywhere
    assert smoothness_loss(sq, torch.zeros_like(sq)).item() == pytest.approx(2.0)


def learnable_batch(b=4, t=32, seed=0):
    """Listener = a fixed function of the speaker, plus an appropriate set (own + one other)."""
    g = torch.Generator().manual_seed(seed)
    a, e, tdmm = speaker(b, t, seed=seed)
    tdmm = torch.cumsum(torch.randn(b, t, 58, generator=g) * 0.1, 1)
    lis_t = 0.5 * tdmm
    lis_e = torch.sigmoid(e * 2 - 1)
    app_t = torch.stack([lis_t, lis_t.roll(1, 0)], 1)
    app_e = torch.stack([lis_e, lis_e.roll(1, 0)], 1)
    return {
        "speaker_audio": a, "speaker_emotion": e, "speaker_tdmm": tdmm,
        "listener_emotion": lis_e, "listener_tdmm": lis_t,
        "appropriate_emotion": app_e, "appropriate_tdmm": app_t,
        "appropriate_mask": torch.tensor([[True, True]] * b),
    }


@pytest.mark.parametrize("stage", [1, 2])
def test_training_loss_falls(stage):
    torch.manual_seed(0)
    m = ReactFace(tiny(pose_weight=1.0)).train()
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    batch = learnable_batch()
    g = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(30):
        loss, logs = reactface_training_step(m, batch, stage=stage, generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        # stage 2 trades reconstruction for diversity (weight 100), so watch its total loss
        losses.append(logs["rec"] if stage == 1 else logs["loss"])
    assert set(logs) >= {"loss", "rec", "kl", "smooth", "speaker_recon", "diversity"}
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5, losses


def test_training_step_stages_differ_and_validate():
    m = ReactFace(tiny()).train()
    batch = learnable_batch(b=2, t=16)
    _, l1 = reactface_training_step(m, batch, stage=1, seed=0)
    _, l2 = reactface_training_step(m, batch, stage=2, seed=0)
    assert l1["diversity"] == 0.0 and l2["diversity"] > 0.0
    with pytest.raises(ConfigError):
        reactface_training_step(m, batch, stage=3, seed=0)
    with pytest.raises(InputError, match="listener_tdmm"):
        reactface_training_step(m, {k: v for k, v in batch.items() if k != "listener_tdmm"}, stage=1, seed=0)
    # history during training is the model's own rollout: output of the training path with the
    # same seed (eval mode) equals generate() with the training window
    m.eval()
    with torch.no_grad():
        r = m.rollout(batch["speaker_audio"], batch["speaker_emotion"], batch["speaker_tdmm"], num_samples=2, seed=4)
    g = m.generate(batch["speaker_audio"], batch["speaker_emotion"], batch["speaker_tdmm"], num_samples=2, seed=4, window=m.config.train_window)
    for h in g:
        torch.testing.assert_close(r.outputs[h], g[h])


def test_frame_offset_positions_rows_independently():
    """A training crop starting at clip frame s is positioned as frames s.., not 0.. (generation
    always starts at 0); in a batch each row uses its own offset, as if run alone."""
    m = model()
    a, e, d = speaker(b=2, t=12)
    out0 = m.rollout(a, e, d, seed=3).outputs["tdmm"]
    zero = m.rollout(a, e, d, seed=3, frame_offset=torch.tensor([0, 0])).outputs["tdmm"]
    assert torch.equal(out0, zero)
    mixed = m.rollout(a, e, d, seed=3, frame_offset=torch.tensor([0, 40])).outputs["tdmm"]
    assert torch.allclose(mixed[0], out0[0], atol=1e-6)  # row 0 keeps offset 0
    assert not torch.allclose(mixed[1], out0[1], atol=1e-3)  # row 1 is positioned at 40..51
    # row 1 alone at offset 40, with the same noise rows: the same as inside the mixed batch
    both_40 = m.rollout(a, e, d, seed=3, frame_offset=torch.tensor([40, 40])).outputs["tdmm"]
    assert torch.allclose(both_40[1], mixed[1], atol=1e-6)
    with pytest.raises(InputError, match="frame_offset"):
        m.rollout(a, e, d, seed=3, frame_offset=torch.tensor([0, -1]))


# ---- continuous decoding (no seams at window edges) ---------------------------------------


def test_generated_reactions_do_not_jump_at_window_edges():
    """A random-weight ReactFace generating in 25-frame windows: the mean frame-to-frame change into
    the first frame of a window over the change elsewhere stays ~1 with the continuous decoder,
    and is ~3 with the paper's window-local one (decoder_band 0), which this test must reject."""
    from reactcli.metrics.naturalness import edge_ratios, speed_profile

    a, e, t = smooth_speaker()
    ratios = {}
    for band in (25, 0):
        torch.manual_seed(0)
        m = ReactFace(tiny(d_model=32, n_heads=4, ffn_dim=64, vae_heads=4, vae_ffn_dim=64, latent_dim=16,
                           period=8, history_frames=64, output_heads=("emotion",), decoder_band=band)).eval()
        y = m.generate(a, e, t, num_samples=8, window=25, momentum=0.5, seed=0)["emotion"].numpy()
        ratios[band] = edge_ratios(speed_profile(y), 25)[0]
    assert ratios[25] < 1.5, ratios
    assert ratios[0] > 2.0, ratios  # the old behaviour jumps: the check can fail


def test_continuous_decoder_does_not_depend_on_where_windows_start():
    """With momentum 1 the latent never changes after the first window, so what is left of the
    window size is where the decoder's context is cut: the continuous decoder gives the same
    reaction for windows of 4 and 8 frames (up to float rounding); the window-local one does not."""
    a, e, t = speaker(t=24)
    for band, same in ((6, True), (0, False)):
        m = model(decoder_band=band)
        y4 = m.generate(a, e, t, num_samples=2, seed=5, window=4, momentum=1.0)["emotion"]
        y8 = m.generate(a, e, t, num_samples=2, seed=5, window=8, momentum=1.0)["emotion"]
        assert torch.allclose(y4, y8, atol=1e-5) == same, (band, (y4 - y8).abs().max())


def test_checkpoints_without_decoder_band_keep_the_window_local_decoder():
    stored = tiny().to_dict()
    assert stored["decoder_band"] == 25  # the default: continuous decoding
    del stored["decoder_band"]  # a config written before the field existed
    assert ReactFaceConfig.from_dict(stored).decoder_band == 0


def test_generator_decoder_band_option_applies_to_any_checkpoint():
    """`reactcli generate --decoder-band` switches a checkpoint's decoder (no weights depend on it)."""
    from reactcli.generation.base import GenerateConfig
    from reactcli.generation.reactface import ReactFaceGenerator

    m = model(decoder_band=0)
    ck = {"model": "reactface", "config": m.config.to_dict(), "state_dict": m.state_dict()}
    a, e, t = speaker(t=24)
    batch = {"speaker_audio": a, "speaker_emotion": e, "speaker_tdmm": t}
    outs = {}
    for band in (None, 6):
        gen = ReactFaceGenerator(ck, "mem.pt", GenerateConfig(decoder_band=band), torch.device("cpu"))
        assert gen.meta["decoder_band"] == (band or 0)
        outs[band] = gen(batch, 2, torch.Generator().manual_seed(3))["emotion"]
    ref = model(decoder_band=6).generate(a, e, t, num_samples=2, generator=torch.Generator().manual_seed(3))["emotion"]
    torch.testing.assert_close(torch.as_tensor(outs[6]), ref)
    assert not torch.allclose(torch.as_tensor(outs[None]), ref, atol=1e-4)
