"""PerFRDiff: GAFRG, DDIM sampling with guidance, PSSL/SupCon, PWSG editing, training steps.

Tiny models on CPU; every check compares with a hand-computed value, an independent reference
(e.g. a deep copy of the model with W + dW written into its weights) or a known identity.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from reactcli.errors import ConfigError, InputError, MissingAssetError
from reactcli.models.checkpoint import save_model
from reactcli.models.perfrdiff import (
    GAFRG,
    PWSG,
    DiffusionConfig,
    GAFRGConfig,
    PSSLConfig,
    PSSLEncoder,
    PWSGConfig,
    build_pwsg_training,
    editor_parameter_count,
    generate,
    load_gafrg,
    load_pwsg,
    make_scheduler,
    save_pwsg,
    supcon_loss,
)
from reactcli.training.perfrdiff_losses import (
    PerFRDiffStepConfig,
    gafrg_training_step,
    pssl_training_step,
    pwsg_training_step,
)

W = 10


def tiny_cfg(**kw) -> GAFRGConfig:
    base = dict(d_model=32, num_layers=2, num_heads=2, ffn_dim=48, emotion_hidden=16, window=W,
                speaker_lag=W, dropout=0.0)
    base.update(kw)
    return GAFRGConfig(**base)


def tiny_gafrg(seed: int = 0, **kw) -> GAFRG:
    torch.manual_seed(seed)
    return GAFRG(tiny_cfg(**kw))


def speaker(b: int = 2, t: int = 35, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(b, t, 78, generator=g), torch.rand(b, t, 25, generator=g), torch.randn(b, t, 58, generator=g))


def random_editor(gafrg: GAFRG, rank: int | None = 4, seed: int = 3, edit_bias: bool = False) -> PWSG:
    """An editor with non-zero shifts (a freshly initialised one has dW = 0 on purpose)."""
    torch.manual_seed(seed)
    ed = PWSG.for_gafrg(gafrg, PWSGConfig(style_dim=16, hidden=(24, 24), rank=rank,
                                          layers=("layers.0.ffn1", "layers.-1.cross_kv", "output"),
                                          edit_bias=edit_bias))
    with torch.no_grad():
        for p in ed.branches.parameters():
            p.normal_(0, 0.05)
    return ed


def batch(b: int = 3, t: int = 30, m: int = 4, seed: int = 0, ids=None):
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(b, m, dtype=torch.bool)
    mask[0, 2:] = False
    return {
        "speaker_audio": torch.randn(b, t, 78, generator=g),
        "speaker_emotion": torch.rand(b, t, 25, generator=g),
        "speaker_tdmm": torch.randn(b, t, 58, generator=g),
        "listener_emotion": torch.rand(b, t, 25, generator=g),
        "listener_tdmm": torch.randn(b, t, 58, generator=g),
        "appropriate_emotion": torch.rand(b, m, t, 25, generator=g),
        "appropriate_tdmm": torch.randn(b, m, t, 58, generator=g),
        "appropriate_mask": mask,
        "listener_id": torch.tensor(ids if ids is not None else list(range(b))),
        "listener_history_tdmm": torch.randn(b, 40, 58, generator=g),
        "listener_history_emotion": torch.rand(b, 40, 25, generator=g),
    }


# ------------------------------------------------------------------------- configs
def test_config_round_trip_and_validation():
    cfg = tiny_cfg(reaction_dim=58, audio_dim=1536, audio_tokens_per_frame=2)
    assert GAFRGConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError):
        GAFRGConfig(d_model=30, num_heads=4)
    with pytest.raises(ConfigError):
        GAFRGConfig(audio_dim=77, audio_tokens_per_frame=2)
    with pytest.raises(ConfigError):
        GAFRGConfig.from_dict({**cfg.to_dict(), "bogus": 1})
    with pytest.raises(ConfigError, match="frames_per_token=3 must divide window=10"):
        tiny_cfg(frames_per_token=3)
    # checkpoints written before frames_per_token existed load as one token per frame
    old = cfg.to_dict()
    del old["frames_per_token"], old["time_on_queries"]
    assert GAFRGConfig.from_dict(old).frames_per_token == 1
    assert GAFRGConfig.from_dict(old).time_on_queries is False
    pc = PWSGConfig(rank=None)
    assert PWSGConfig.from_dict(pc.to_dict()) == pc
    assert DiffusionConfig.from_dict(DiffusionConfig(prediction_type="epsilon").to_dict()).prediction_type == "epsilon"
    with pytest.raises(ConfigError, match="timestep_spacing"):
        DiffusionConfig(timestep_spacing="bogus")
    # trailing spacing starts few-step sampling at the last training step, leading does not
    for spacing, first in (("trailing", 999), ("leading", 500)):
        sch = make_scheduler(DiffusionConfig(timestep_spacing=spacing))
        sch.set_timesteps(2)
        assert sch.timesteps.tolist()[0] == first


# ------------------------------------------------------------------------- schedule
def test_scheduler_is_the_cosine_schedule():
    sch = make_scheduler()
    # Nichol & Dhariwal: abar(t) = f(t)/f(0), f(t) = cos^2((t/T + s)/(1 + s) * pi/2), betas capped at 0.999
    steps, s = 1000, 0.008
    f = lambda t: math.cos((t / steps + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
    betas = np.array([min(1 - f(i + 1) / f(i), 0.999) for i in range(steps)])
    abar = np.cumprod(1 - betas)
    np.testing.assert_allclose(sch.alphas_cumprod.numpy(), abar, rtol=1e-4, atol=1e-7)
    assert sch.config.prediction_type == "sample" and not sch.config.clip_sample


@pytest.mark.parametrize("t", [999, 500, 20])
def test_ddim_step_with_true_x0_recovers_the_previous_noisy_sample(t):
    sch = make_scheduler()
    sch.set_timesteps(50)
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(3, W, 25, generator=g), torch.randn(3, W, 25, generator=g)
    x_t = sch.add_noise(x0, noise, torch.tensor([t]))
    abar = sch.alphas_cumprod.double()
    np.testing.assert_allclose(x_t, (abar[t].sqrt() * x0 + (1 - abar[t]).sqrt() * noise).float(), atol=1e-5)
    prev = sch.step(x0, t, x_t, eta=0.0).prev_sample
    t_prev = t - 1000 // 50
    a_prev = abar[t_prev] if t_prev >= 0 else torch.tensor(1.0, dtype=torch.float64)
    # DDIM (eta 0): x_{t-1} = sqrt(abar_prev) x0 + sqrt(1 - abar_prev) eps, eps recovered from x_t and x0
    expected = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * noise
    np.testing.assert_allclose(prev, expected.float(), atol=1e-4)


# ------------------------------------------------------------------------- GAFRG
@pytest.mark.parametrize("patch,time_on_queries", [(1, False), (5, False), (5, True)])
def test_grouped_cross_attention_equals_one_memory_per_row(patch, time_on_queries):
    model = tiny_gafrg(frames_per_token=patch, time_on_queries=time_on_queries).eval()
    assert model.pos.shape == (W // patch, 32) and model.in_proj.in_features == patch * 25
    a, e, f = (x[:, :W] for x in speaker(b=2))
    mem = model.encode_speaker(a, e, f)  # 2 memories
    x = torch.randn(6, W, 25)  # 3 windows per memory
    t = torch.tensor([7, 400])
    grouped = model(x, t, model.static_kv(mem), group=3)
    rows = model(x, t.repeat_interleave(3), model.static_kv(mem.repeat_interleave(3, dim=0)), group=1)
    torch.testing.assert_close(grouped, rows, atol=1e-5, rtol=1e-5)
    # generation path: one cached key/value buffer per layer whose time slot is rewritten in place
    # each step; reusing it across two steps must give what fresh tensors (autograd path) give
    t2 = torch.tensor([900, 3])
    fresh2 = model(x, t2, model.static_kv(mem), group=3)
    with torch.inference_mode():
        kv = model.static_kv(mem)
        first, second = model(x, t, kv, group=3), model(x, t2, kv, group=3)
    torch.testing.assert_close(first, grouped, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(second, fresh2, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(first, second, atol=1e-4)


def test_generate_shapes_and_determinism():
    model = tiny_gafrg()
    a, e, f = speaker(b=2, t=35)
    out = generate(model, a, e, f, num_samples=3, steps=3, generator=5)
    assert out.shape == (2, 3, 35, 25) and torch.isfinite(out).all()
    again = generate(model, a, e, f, num_samples=3, steps=3, generator=torch.Generator().manual_seed(5))
    assert torch.equal(out, again)
    other = generate(model, a, e, f, num_samples=3, steps=3, generator=6)
    assert not torch.allclose(out, other)
    assert (out[:, 0] - out[:, 1]).abs().mean() > 1e-3  # the K samples differ
    m58 = tiny_gafrg(reaction_dim=58, audio_dim=1536, audio_tokens_per_frame=2)
    out = generate(m58, torch.randn(1, 23, 1536), e[:1, :23], f[:1, :23], num_samples=2, steps=2,
                   generator=0, overlap=True)
    assert out.shape == (1, 2, 23, 58)
    with pytest.raises(ConfigError):
        generate(model, a, e, f, steps=2)  # no seed
    with pytest.raises(InputError):
        generate(model, a, e[:, :, :24], f, steps=2, generator=0)


@pytest.mark.parametrize("key,bad,message", [
    ("speaker_emotion", lambda x: x[..., :24], r"speaker_emotion must be \(B, T, 25\), got \(3, 30, 24\)"),
    ("speaker_tdmm", lambda x: x[:, :29], r"speaker_tdmm has \(B, T\) = \(3, 29\), speaker_audio has \(3, 30\)"),
    ("speaker_audio", lambda x: x.index_put((torch.tensor([1]), torch.tensor([4]), torch.tensor([0])),
                                           torch.tensor([math.nan])), "speaker_audio contains NaN or inf"),
])
def test_bad_speaker_inputs_are_named_in_training_and_generation(key, bad, message):
    """One check (GAFRG.check_speaker) guards both the training batch and generation."""
    model = tiny_gafrg()
    b = batch()
    b[key] = bad(b[key])
    with pytest.raises(InputError, match=message):
        gafrg_training_step(model, make_scheduler(DiffusionConfig()), b, torch.Generator().manual_seed(0),
                            PerFRDiffStepConfig(reactions_per_item=2))
    with pytest.raises(InputError, match=message):
        generate(model, b["speaker_audio"], b["speaker_emotion"], b["speaker_tdmm"], steps=2, generator=0)


@pytest.mark.parametrize("patch,time_on_queries", [(1, False), (5, False), (W, False), (1, True)])
def test_generate_is_online_causal(patch, time_on_queries):
    """Reaction window [s, s+w) sees speaker frames [s-w, s): changing the speaker from frame 20 on
    must leave reaction frames 0..29 unchanged and change later ones (also with P-frame tokens and
    with the diffusion time added to the tokens)."""
    model = tiny_gafrg(frames_per_token=patch, time_on_queries=time_on_queries)
    a, e, f = speaker(b=1, t=50)
    out = generate(model, a, e, f, num_samples=2, steps=3, generator=0)
    a2, e2, f2 = a.clone(), e.clone(), f.clone()
    a2[:, 20:] += 1.0
    e2[:, 20:] = 1 - e2[:, 20:]
    f2[:, 20:] -= 1.0
    out2 = generate(model, a2, e2, f2, num_samples=2, steps=3, generator=0)
    torch.testing.assert_close(out[:, :, :30], out2[:, :, :30], atol=1e-5, rtol=1e-5)
    assert (out[:, :, 30:] - out2[:, :, 30:]).abs().max() > 1e-3


def test_guidance_scale_one_equals_conditional_model_and_zero_the_null_condition():
    model = tiny_gafrg()
    a, e, f = speaker(b=2, t=20)
    cond_only = generate(model, a, e, f, num_samples=2, steps=3, guidance=1.0, generator=1)
    # a scale that is not exactly 1 takes the batched cond+uncond path; at ~1 it must equal cond
    batched = generate(model, a, e, f, num_samples=2, steps=3, guidance=1.0 + 1e-9, generator=1)
    torch.testing.assert_close(batched, cond_only, atol=1e-4, rtol=1e-4)
    # scale 0 = the unconditional half, which must be the model fed all-zero speaker features
    uncond = generate(model, a, e, f, num_samples=2, steps=3, guidance=0.0, generator=1)
    zeros = generate(model, *(torch.zeros_like(x) for x in (a, e, f)), num_samples=2, steps=3, guidance=1.0,
                     generator=1)
    torch.testing.assert_close(uncond, zeros, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(cond_only, uncond, atol=1e-3)
    guided = generate(model, a, e, f, num_samples=2, steps=3, guidance=7.5, generator=1)
    assert not torch.allclose(guided, cond_only, atol=1e-3)


def test_overlapping_windows_have_no_seams():
    torch.manual_seed(0)
    model = tiny_gafrg()
    a, e, f = speaker(b=1, t=60)
    out = generate(model, a, e, f, num_samples=4, steps=5, generator=2, overlap=True)  # stride 5
    jumps = (out[:, :, 1:] - out[:, :, :-1]).abs().mean(dim=(0, 1, 3))  # (T-1,) jump between t and t+1
    edges = torch.tensor([s - 1 for s in range(5, 60, 5)])  # every window edge (stride 5)
    inside = torch.ones_like(jumps, dtype=torch.bool)
    inside[edges] = False
    assert jumps[edges].max() <= 1.5 * jumps[inside].max()
    # without overlap, windows are generated independently and the first of each window jumps
    plain = generate(model, a, e, f, num_samples=4, steps=5, generator=2)
    pj = (plain[:, :, 1:] - plain[:, :, :-1]).abs().mean(dim=(0, 1, 3))
    seam = torch.tensor([s - 1 for s in range(W, 60, W)])
    assert pj[seam].mean() > jumps[seam].mean()


# ------------------------------------------------------------------------- PWSG editing
@pytest.mark.parametrize("rank,edit_bias,patch", [(4, False, 1), (None, False, 1), (4, True, 1), (None, True, 1),
                                                   (4, True, 5)])
def test_per_sample_editing_equals_writing_w_plus_dw_into_a_copy(rank, edit_bias, patch):
    model = tiny_gafrg(frames_per_token=patch).eval()
    ed = random_editor(model, rank, edit_bias=edit_bias)
    style = torch.randn(2, 16)
    shifts = ed(style)
    a, e, f = (x[:, :W] for x in speaker(b=2))
    mem = model.encode_speaker(a, e, f)
    x = torch.randn(6, W, 25)  # item 0: rows 0-2, item 1: rows 3-5 (mixed listeners in one batch)
    t = torch.tensor([300, 40])
    mixed = model(x, t, model.static_kv(mem, shifts), group=3, shifts=shifts)
    for g in range(2):
        ref = copy.deepcopy(model)
        with torch.no_grad():
            for name, s in shifts.items():
                dw = s.full[g] if rank is None else s.b[g] @ s.a[g]
                assert dw.abs().max() > 0
                ref.get_submodule(name).weight += dw
                assert (s.bias is not None) == edit_bias
                if edit_bias:
                    assert s.bias[g].abs().max() > 0
                    ref.get_submodule(name).bias += s.bias[g]
        expect = ref(x[3 * g:3 * g + 3], t[g:g + 1], ref.static_kv(mem[g:g + 1]), group=3)
        torch.testing.assert_close(mixed[3 * g:3 * g + 3], expect, atol=1e-5, rtol=1e-5)
        alone = {k: v.select(torch.tensor([g])) for k, v in shifts.items()}
        single = model(x[3 * g:3 * g + 3], t[g:g + 1], model.static_kv(mem[g:g + 1], alone), group=3, shifts=alone)
        torch.testing.assert_close(mixed[3 * g:3 * g + 3], single, atol=1e-5, rtol=1e-5)


def test_personalised_generation_keeps_base_weights_and_mixes_listeners():
    model = tiny_gafrg()
    ed = random_editor(model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    a, e, f = speaker(b=2, t=20)
    style = torch.randn(2, 16)
    out = generate(model, a, e, f, num_samples=2, steps=3, style=style, editor=ed, generator=0)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    base = generate(model, a, e, f, num_samples=2, steps=3, generator=0)
    assert not torch.allclose(out, base, atol=1e-4)
    # swapping the listeners of the two items swaps only the style effect, not the noise
    swapped = generate(model, a, e, f, num_samples=2, steps=3, style=style.flip(0), editor=ed, generator=0)
    assert not torch.allclose(out, swapped, atol=1e-4)
    with pytest.raises(ConfigError):
        generate(model, a, e, f, steps=2, style=style, generator=0)


@pytest.mark.parametrize("patch,guidance", [(1, 2.0), (5, 1.0)])
def test_bf16_generation_is_close_to_fp32_seeded_and_leaves_the_model_in_fp32(patch, guidance):
    """precision="bf16" runs a bfloat16 copy of the denoiser (with the listeners' shifts cast to it):
    the output stays float32, within bf16 rounding of the fp32 output and identical under a seed,
    and GAFRG keeps its float32 weights."""
    model = tiny_gafrg(frames_per_token=patch, clip_position=True)
    ed = random_editor(model, edit_bias=True)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    a, e, f = speaker(b=2, t=35)
    style = torch.randn(2, 16)
    kw = dict(num_samples=3, steps=3, guidance=guidance, style=style, editor=ed, generator=4)
    ref = generate(model, a, e, f, **kw)
    low = generate(model, a, e, f, precision="bf16", **kw)
    assert low.dtype == torch.float32 and low.shape == ref.shape
    assert not torch.equal(low, ref)  # it did run in bfloat16
    rel = ((low - ref).abs().mean() / ref.abs().mean()).item()
    assert rel < 0.02, rel
    assert torch.equal(low, generate(model, a, e, f, precision="bf16", **kw))
    after = model.state_dict()
    assert all(after[k].dtype == before[k].dtype and torch.equal(after[k], before[k]) for k in before)
    with pytest.raises(ConfigError, match="precision must be one of fp32, bf16"):
        generate(model, a, e, f, steps=2, generator=0, precision="fp16")


def test_editor_parameter_counts():
    model = tiny_gafrg()
    for rank in (4, None):
        for edit_bias in (False, True):
            ed = random_editor(model, rank, edit_bias=edit_bias)
            n = sum(p.numel() for p in ed.parameters())
            assert editor_parameter_count(ed.layer_shapes, rank, style_dim=16, hidden=(24, 24),
                                          edit_bias=edit_bias) == n
    # an untrained editor (zeroed output rows) leaves the model exactly as it is, bias shifts included
    fresh = PWSG.for_gafrg(model, PWSGConfig(style_dim=16, hidden=(24, 24), rank=4, edit_bias=True,
                                             layers=("layers.0.ffn1", "output")))
    for sh in fresh(torch.randn(2, 16)).values():
        assert not sh.delta(torch.randn(4, sh.a.shape[-1])).abs().any()
    # paper size: the default layers give the supplementary's 1.627 B full-rank editor
    shapes = {"a": (1024, 512), "b": (1024, 512), "c": (512, 1024), "out": (25, 512)}
    full = editor_parameter_count(shapes, None)
    assert round(full / 1e9, 3) == 1.627
    low = editor_parameter_count(shapes, 8)
    assert full / low > 30
    # by hand, rank 8: trunk 512*1024+1024+1024*1024+1024, branch 1024*8*(512+1024)+8*1536 per FFN
    by_hand = 512 * 1024 + 1024 + 1024 * 1024 + 1024 + 3 * (1025 * 8 * 1536) + 1025 * 8 * 537
    assert low == by_hand


# ------------------------------------------------------------------------- SupCon
def test_supcon_hand_checked_cases():
    # two identical samples of one class: the only other sample is the positive -> loss 0
    z = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    assert supcon_loss(z, torch.tensor([3, 3])).item() == pytest.approx(0.0, abs=1e-6)
    # two classes on orthogonal axes, tau 0.5: each anchor has 1 positive (sim 1) and 2 negatives (sim 0)
    z = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    expect = -(2.0 - math.log(math.exp(2.0) + 2.0))
    assert supcon_loss(z, torch.tensor([0, 0, 1, 1]), temperature=0.5).item() == pytest.approx(expect, rel=1e-6)
    # an anchor without positives is left out; unnormalised input is normalised
    z = torch.tensor([[2.0, 0.0], [0.0, 3.0], [1.0, 1.0]])
    s = 1 / math.sqrt(2)
    # anchors 0 and 2 (label 0): sim(0,2) = s; anchor 0 others {1: 0, 2: s}; anchor 2 others {0: s, 1: s}
    l0 = -(s / 0.1 - math.log(math.exp(0.0) + math.exp(s / 0.1)))
    l2 = -(s / 0.1 - math.log(2 * math.exp(s / 0.1)))
    got = supcon_loss(z, torch.tensor([0, 1, 0]), temperature=0.1).item()
    assert got == pytest.approx((l0 + l2) / 2, rel=1e-5)
    with pytest.raises(InputError):
        supcon_loss(torch.randn(3, 4), torch.tensor([0, 1, 2]))


def test_pssl_style_is_unit_norm_and_padding_is_ignored():
    torch.manual_seed(0)
    enc = PSSLEncoder(PSSLConfig(d_model=32, num_layers=2, num_heads=4, ffn_dim=32, dropout=0.0, style_dim=8)).eval()
    h = torch.randn(2, 20, 58)
    s = enc(h)
    torch.testing.assert_close(s.norm(dim=-1), torch.ones(2))
    padded = torch.cat([h, torch.randn(2, 5, 58)], dim=1)
    valid = torch.arange(25)[None].expand(2, -1) < 20
    torch.testing.assert_close(enc(padded, valid), s, atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------- training steps
def _train(step, params, n=25, lr=3e-3):
    opt = torch.optim.Adam(params, lr=lr)
    losses = []
    for _ in range(n):
        loss, logs = step()
        assert math.isfinite(logs["loss"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(logs["loss"])
    return losses


@pytest.mark.parametrize("prediction,patch,time_on_queries", [
    ("sample", 1, False), ("epsilon", 1, False), ("sample", 5, False), ("sample", 1, True)])
def test_gafrg_training_loss_falls(prediction, patch, time_on_queries):
    model = tiny_gafrg(frames_per_token=patch, time_on_queries=time_on_queries).train()
    sch = make_scheduler(DiffusionConfig(prediction_type=prediction))
    b = batch()
    cfg = PerFRDiffStepConfig(reactions_per_item=2)
    # the same generator seed every step: the same noise/timesteps/windows, so the loss must fall
    losses = _train(lambda: gafrg_training_step(model, sch, b, torch.Generator().manual_seed(0), cfg),
                    model.parameters())
    assert losses[-1] < 0.7 * losses[0]


def test_gafrg_step_targets_are_masked_appropriate_reactions(monkeypatch):
    """Only unmasked appropriate reactions are targets: give each item one unmasked, constant
    reaction (masked ones are 5.0) and check the x0 the loss regresses to."""
    import types

    import reactcli.training.perfrdiff_losses as losses

    model = tiny_gafrg()
    b = batch(b=2, m=3)
    b["appropriate_mask"] = torch.tensor([[False, True, False], [False, False, True]])
    b["appropriate_emotion"][:] = 5.0
    b["appropriate_emotion"][0, 1] = 0.25
    b["appropriate_emotion"][1, 2] = -0.5
    seen = {}

    def spy(pred, target):
        seen["target"] = target
        return torch.nn.functional.mse_loss(pred, target)

    monkeypatch.setattr(losses, "F", types.SimpleNamespace(mse_loss=spy))
    sch = make_scheduler()  # x0 prediction: the regression target is x0 itself
    gafrg_training_step(model, sch, b, torch.Generator().manual_seed(0), PerFRDiffStepConfig(reactions_per_item=3))
    expect = torch.tensor([0.25] * 3 + [-0.5] * 3)[:, None, None].expand(6, W, 25)
    torch.testing.assert_close(seen["target"], expect)
    b["appropriate_mask"][1] = False
    with pytest.raises(InputError):
        gafrg_training_step(model, sch, b, torch.Generator().manual_seed(0))


def test_pssl_training_loss_falls():
    torch.manual_seed(0)
    enc = PSSLEncoder(PSSLConfig(d_model=32, num_layers=2, num_heads=4, ffn_dim=32, dropout=0.0, style_dim=8))
    b = batch(b=4, ids=[0, 1, 0, 2])
    losses = _train(lambda: pssl_training_step(enc, b), enc.parameters(), n=20)
    assert losses[-1] < 0.7 * losses[0]


def test_pwsg_training_from_checkpoints(tmp_path):
    model = tiny_gafrg()
    dcfg = DiffusionConfig()
    gpath = save_model(tmp_path / "gafrg.pt", "perfrdiff-gafrg", model, model.config.to_dict(), diffusion=dcfg.to_dict())
    torch.manual_seed(1)
    pssl = PSSLEncoder(PSSLConfig(d_model=32, num_layers=1, num_heads=4, ffn_dim=32, style_dim=16))
    ppath = save_model(tmp_path / "pssl.pt", "perfrdiff-pssl", pssl, pssl.config.to_dict())
    with pytest.raises(MissingAssetError, match="--gafrg-checkpoint"):
        build_pwsg_training(tmp_path / "nope.pt", ppath)
    with pytest.raises(InputError, match="gafrg"):
        build_pwsg_training(ppath, ppath)
    cfg = PWSGConfig(style_dim=16, hidden=(24, 24), rank=4)
    setup = build_pwsg_training(gpath, ppath, cfg)
    # really loaded: same weights as the saved model
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in setup.gafrg.state_dict().items())
    frozen = {k: v.clone() for k, v in setup.gafrg.state_dict().items()}
    sch = make_scheduler(setup.diffusion)
    b = batch()
    losses = _train(lambda: pwsg_training_step(setup, sch, b, torch.Generator().manual_seed(0),
                                               PerFRDiffStepConfig(reactions_per_item=2)),
                    setup.trainable_parameters(), n=25, lr=1e-2)
    assert losses[-1] < 0.8 * losses[0]
    assert all(torch.equal(v, frozen[k]) for k, v in setup.gafrg.state_dict().items())
    assert all(p.grad is None for p in setup.gafrg.parameters())
    # editor checkpoint round trip
    epath = save_pwsg(tmp_path / "pwsg.pt", setup.editor)
    ed = load_pwsg(epath)
    style = torch.randn(2, 16)
    for k, s in setup.editor(style).items():
        torch.testing.assert_close(ed(style)[k].b, s.b)
    rebuilt, d2 = load_gafrg(gpath)
    assert rebuilt.config == model.config and d2 == dcfg


def test_clip_position_token():
    """clip_position adds one memory token that encodes each window's clip start frame; guidance
    keeps it in the null condition; training uses crop offset + window start."""
    model = tiny_gafrg(clip_position=True).eval()
    assert model.memory_length == tiny_gafrg().memory_length + 1
    a, e, f = speaker(b=1, t=W)
    with pytest.raises(ConfigError, match="clip_position"):
        model.encode_speaker(a, e, f)
    m0 = model.encode_speaker(a, e, f, starts=torch.tensor([0]))
    m1 = model.encode_speaker(a, e, f, starts=torch.tensor([400]))
    assert m0.shape == (1, model.memory_length, 32)
    torch.testing.assert_close(m0[:, :-1], m1[:, :-1])  # speaker tokens do not depend on the position
    assert (m0[:, -1] - m1[:, -1]).abs().max() > 1e-3
    # generation: the null branch (guidance 0) = all-zero speaker features at the same positions
    a, e, f = speaker(b=2, t=25)
    uncond = generate(model, a, e, f, num_samples=2, steps=2, guidance=0.0, generator=1)
    zeros = generate(model, *(torch.zeros_like(x) for x in (a, e, f)), num_samples=2, steps=2, guidance=1.0,
                     generator=1)
    torch.testing.assert_close(uncond, zeros, atol=1e-4, rtol=1e-4)
    # the same noisy window and speaker window at two clip positions: different predictions
    x_t = torch.randn(2, W, 25, generator=torch.Generator().manual_seed(2))
    win = [x[:1, :W].expand(2, -1, -1) for x in (a, e, f)]
    pred = model.denoise(x_t[:1].expand(2, -1, -1), torch.tensor([500, 500]), *win, starts=torch.tensor([50, 600]))
    assert (pred[0] - pred[1]).abs().max() > 1e-4
    # training: the crop's frame_offset moves the windows' positions (same noise, same windows)
    b = batch()
    sch = make_scheduler(DiffusionConfig())
    cfg = PerFRDiffStepConfig(reactions_per_item=2)
    with torch.no_grad():
        l0, _ = gafrg_training_step(model, sch, b, torch.Generator().manual_seed(0), cfg)
        l_same, _ = gafrg_training_step(model, sch, {**b, "frame_offset": torch.zeros(3, dtype=torch.long)},
                                        torch.Generator().manual_seed(0), cfg)
        l_off, _ = gafrg_training_step(model, sch, {**b, "frame_offset": torch.tensor([300, 0, 500])},
                                       torch.Generator().manual_seed(0), cfg)
    assert l_same.item() == pytest.approx(l0.item()) and l_off.item() != pytest.approx(l0.item())


def test_pssl_reads_the_configured_history_feature():
    with pytest.raises(ConfigError, match="history_feature"):
        PSSLConfig(input_dim=58, history_feature="emotion")
    with pytest.raises(ConfigError, match="history_feature"):
        PSSLConfig(input_dim=25, history_feature="audio")
    torch.manual_seed(0)
    enc = PSSLEncoder(PSSLConfig(input_dim=25, history_feature="emotion", d_model=16, num_layers=1,
                                 num_heads=2, ffn_dim=16, style_dim=8, dropout=0.0))
    b = batch(ids=[0, 1, 0])
    loss, _ = pssl_training_step(enc, b)
    # the step reads the emotion clips: changing the 3DMM ones changes nothing, the emotion ones do
    same, _ = pssl_training_step(enc, {**b, "listener_history_tdmm": b["listener_history_tdmm"] + 1})
    other, _ = pssl_training_step(enc, {**b, "listener_history_emotion": 1 - b["listener_history_emotion"]})
    assert same.item() == pytest.approx(loss.item()) and other.item() != pytest.approx(loss.item())


def test_pssl_standardise_removes_static_levels_and_gains():
    torch.manual_seed(0)
    sizes = dict(d_model=16, num_layers=1, num_heads=2, ffn_dim=32, style_dim=8, dropout=0.0)
    z = PSSLEncoder(PSSLConfig(input_dim=25, history_feature="emotion", standardise=True, **sizes)).eval()
    plain = PSSLEncoder(PSSLConfig(input_dim=25, history_feature="emotion", **sizes)).eval()
    plain.load_state_dict(z.state_dict())
    g = torch.Generator().manual_seed(3)
    x = torch.rand(2, 30, 25, generator=g)
    gain = 0.5 + 1.5 * torch.rand(2, 1, 25, generator=g)
    offset = torch.randn(2, 1, 25, generator=g)
    with torch.no_grad():
        # a person's AU offsets and gains (per clip and channel) do not move the standardised style
        torch.testing.assert_close(z(x * gain + offset), z(x), atol=1e-2, rtol=0)
        assert not torch.allclose(plain(x * gain + offset), plain(x), atol=1e-2)
        # padded frames are ignored by the statistics as by the attention
        valid = torch.ones(2, 30, dtype=torch.bool)
        valid[1, 20:] = False
        padded = x.clone()
        padded[1, 20:] = 50.0
        torch.testing.assert_close(z(padded, valid)[1], z(x[1:, :20])[0], atol=1e-5, rtol=0)


def _dyadic_batch(b: int, t: int, seed: int) -> dict[str, torch.Tensor]:
    """Listener ``class 1`` answers with the speaker's channels permuted, ``class 0`` mirrors them.

    Speaker channels are i.i.d., so the listener's side alone has one distribution for both
    classes: only the speaker -> listener mapping tells them apart.
    """
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(b) % 2
    perm = torch.randperm(25, generator=g)
    def side():
        spk = torch.rand(b, t, 25, generator=g)
        lis = torch.where(labels[:, None, None] == 1, spk[..., perm], spk)
        return spk, lis + 0.05 * torch.randn(b, t, 25, generator=g)
    hs, hl = side()
    os_, ol = side()
    return {"speaker_history_emotion": hs, "listener_history_emotion": hl, "speaker_emotion": os_,
            "listener_emotion": ol, "listener_id": labels}


def test_dyadic_pssl_reads_the_speaker_side_and_learns_a_mapping():
    with pytest.raises(ConfigError, match="with dyadic"):
        PSSLConfig(input_dim=25, history_feature="emotion", dyadic=True)
    sizes = dict(d_model=16, num_layers=1, num_heads=2, ffn_dim=32, style_dim=8, dropout=0.0)
    torch.manual_seed(0)
    dyadic = PSSLEncoder(PSSLConfig(input_dim=50, history_feature="emotion", dyadic=True, **sizes))
    solo = PSSLEncoder(PSSLConfig(input_dim=25, history_feature="emotion", **sizes))
    assert dyadic.config.input_keys() == ["speaker_history_emotion", "listener_history_emotion"]
    assert dyadic.config.input_keys("own") == ["speaker_emotion", "listener_emotion"]
    b = _dyadic_batch(4, 12, seed=1)
    moved = {**b, "speaker_history_emotion": b["speaker_history_emotion"] + 1}
    with torch.no_grad():
        assert not torch.allclose(dyadic.encode(b), dyadic.encode(moved))
        assert torch.equal(solo.encode(b), solo.encode(moved))  # the paper's encoder: listener side only
        # the two sides are concatenated, speaker first
        manual = dyadic(torch.cat([b["speaker_history_emotion"], b["listener_history_emotion"]], -1))
        assert torch.equal(dyadic.encode(b), manual)
    with pytest.raises(InputError, match="speaker_history_emotion"):
        dyadic.encode({"listener_history_emotion": b["listener_history_emotion"]})
    with pytest.raises(InputError, match="disagree"):
        dyadic.encode({**b, "speaker_history_emotion": b["speaker_history_emotion"][:, :5]})

    # trained a few steps on the SupCon loss, only the dyadic encoder separates the two mappings
    def probe(enc) -> float:
        for step in range(100):
            loss, _ = pssl_training_step(enc, _dyadic_batch(16, 12, seed=100 + step))
            opt = enc._opt
            opt.zero_grad()
            loss.backward()
            opt.step()
        enc.eval()
        with torch.no_grad():
            fit, test = _dyadic_batch(64, 12, seed=7), _dyadic_batch(64, 12, seed=8)
            zf, zt = enc.encode(fit), enc.encode(test)
        centroids = torch.stack([zf[fit["listener_id"] == c].mean(0) for c in (0, 1)])
        return float(((zt @ centroids.T).argmax(1) == test["listener_id"]).float().mean())

    for enc in (dyadic, solo):
        enc._opt = torch.optim.Adam(enc.parameters(), lr=3e-3)
    acc_dyadic, acc_solo = probe(dyadic), probe(solo)
    assert acc_dyadic >= 0.9 and acc_solo <= 0.75, (acc_dyadic, acc_solo)


# ------------------------------------------------------------------- listener codes (style: codes)
def _codes_setup(tmp_path, codes: int = 2, edit_bias: bool = True):
    model = tiny_gafrg()
    gpath = save_model(tmp_path / "gafrg.pt", "perfrdiff-gafrg", model, model.config.to_dict(),
                       diffusion=DiffusionConfig().to_dict())
    cfg = PWSGConfig(style_dim=4, hidden=(16, 16), rank=2, layers=("output",), edit_bias=edit_bias, codes=codes)
    torch.manual_seed(0)
    return model, gpath, build_pwsg_training(gpath, None, cfg, code_identities=[f"p{i}" for i in range(codes)])


def _offset_batch(ids, seed, t=40, offset=0.6):
    """Listeners whose emotion is a common random course plus a per-identity level: identity i
    shows ``offset * i`` more on channels 0-4. The speaker side is shared noise."""
    b = batch(b=len(ids), t=t, seed=seed, ids=ids)
    lev = torch.zeros(len(ids), 1, 25)
    lev[:, 0, :5] = offset * torch.tensor(ids, dtype=torch.float32)[:, None]
    b["listener_emotion"] = 0.2 * b["listener_emotion"] + lev
    return b


def test_listener_codes_train_with_the_editor_and_round_trip(tmp_path):
    model, gpath, setup = _codes_setup(tmp_path, codes=3)
    assert setup.pssl is None and setup.editor.codes.shape == (3, 4)
    with pytest.raises(ConfigError, match="no PSSL"):
        build_pwsg_training(gpath, gpath, setup.editor.config, code_identities=["a", "b", "c"])
    with pytest.raises(ConfigError, match="3 codes but 2"):
        build_pwsg_training(gpath, None, setup.editor.config, code_identities=["a", "b"])
    frozen = {k: v.clone() for k, v in setup.gafrg.state_dict().items()}
    codes0 = setup.editor.codes.detach().clone()
    sch = make_scheduler(setup.diffusion)
    b = _offset_batch([0, 1, 2], seed=0)
    losses = _train(lambda: pwsg_training_step(setup, sch, b, torch.Generator().manual_seed(0),
                                               PerFRDiffStepConfig(reactions_per_item=4)),
                    setup.trainable_parameters(), n=40, lr=1e-2)
    assert losses[-1] < 0.7 * losses[0]
    assert not torch.allclose(setup.editor.codes, codes0)  # the codes are trained, not only the editor
    assert all(torch.equal(v, frozen[k]) for k, v in setup.gafrg.state_dict().items())
    with pytest.raises(InputError, match="outside the editor's 3 codes"):
        pwsg_training_step(setup, sch, {**b, "listener_id": torch.tensor([0, 1, 3])})
    ed = load_pwsg(save_pwsg(tmp_path / "pwsg.pt", setup.editor))
    assert ed.code_identities == ["p0", "p1", "p2"]
    torch.testing.assert_close(ed.codes, setup.editor.codes)


def test_code_scores_share_the_draws_across_codes_and_chunks():
    from reactcli.training.perfrdiff_losses import code_scores

    model = tiny_gafrg()
    sch = make_scheduler(DiffusionConfig())
    ed = PWSG.for_gafrg(model, PWSGConfig(style_dim=4, hidden=(16, 16), rank=2, layers=("output",), codes=5))
    b = _offset_batch([0, 1], seed=3)
    # an untrained editor (dW = 0) makes every code the generic model: common random numbers
    # give every code exactly the same score
    s = code_scores(model, ed, sch, b, windows=4, draws=2, generator=torch.Generator().manual_seed(0))
    assert s.shape == (2, 5) and torch.allclose(s, s[:, :1].expand(2, 5))
    with torch.no_grad():
        for p in ed.branches.parameters():
            p.normal_(0, 0.3)
    s = code_scores(model, ed, sch, b, windows=4, draws=2, generator=torch.Generator().manual_seed(0))
    assert s[0].std() > 0
    # scoring the codes in chunks of 2 draws the same windows and noise as all at once
    s2 = code_scores(model, ed, sch, b, windows=4, draws=2, generator=torch.Generator().manual_seed(0), chunk=2)
    torch.testing.assert_close(s, s2)
    # one code alone gets the score it has among the others (same draws, no cross-talk)
    alone = copy.deepcopy(ed)
    alone.codes = torch.nn.Parameter(ed.codes[3:4].detach().clone())
    s3 = code_scores(model, alone, sch, b, windows=4, draws=2, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(s3[:, 0], s[:, 3])
    # and it is the training loss of that code's edited GAFRG (no condition dropout) on the same draws
    from reactcli.training import perfrdiff_losses as pl

    one = {k: v[1:2] for k, v in b.items()}
    g = torch.Generator().manual_seed(5)
    starts = pl._starts(1, 4, one["listener_emotion"].shape[1], model.config.window, g, torch.device("cpu"))
    x0 = one["listener_emotion"][0, starts[0, :, None] + torch.arange(model.config.window)]
    with torch.no_grad():
        ref, _ = pl._diffusion_loss(model, sch, x0, pl._speaker_windows(model, one, starts), g, 0.0,
                                    alone(alone.codes), pl._clip_starts(one, starts))
    s4 = code_scores(model, alone, sch, one, windows=4, draws=1, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(s4[0, 0], ref)
    with pytest.raises(ConfigError, match="listener codes"):
        code_scores(model, random_editor(model), sch, b)


def test_a_new_clip_is_read_as_its_listeners_code(tmp_path):
    """Analysis by synthesis: after training codes on two listeners with different levels, a fresh
    clip of each is best explained by its own listener's code."""
    from reactcli.training.perfrdiff_losses import code_scores

    _, _, setup = _codes_setup(tmp_path, codes=2)
    sch = make_scheduler(setup.diffusion)
    train_batches = [_offset_batch([0, 1, 0, 1], seed=s) for s in range(4)]
    it = iter(range(10 ** 6))
    _train(lambda: pwsg_training_step(setup, sch, train_batches[next(it) % 4], torch.Generator().manual_seed(next(it)),
                                      PerFRDiffStepConfig(reactions_per_item=4)),
           setup.trainable_parameters(), n=80, lr=1e-2)
    fresh = _offset_batch([1, 0, 0, 1], seed=99)
    s = code_scores(setup.gafrg, setup.editor, sch, fresh, windows=8, draws=4, generator=torch.Generator().manual_seed(5))
    assert s.argmin(1).tolist() == [1, 0, 0, 1]


def test_masked_weight_shift_zeroes_only_the_masked_items():
    from reactcli.models.perfrdiff.gafrg import WeightShift

    g = torch.Generator().manual_seed(0)
    x = torch.randn(3 * 4, 5, generator=g)  # 3 items x 4 rows, item-major
    for shift in (WeightShift(a=torch.randn(3, 2, 5, generator=g), b=torch.randn(3, 6, 2, generator=g),
                              bias=torch.randn(3, 6, generator=g)),
                  WeightShift(full=torch.randn(3, 6, 5, generator=g))):
        out = shift.masked(torch.tensor([1.0, 0.0, 1.0])).delta(x).reshape(3, 4, 6)
        ref = shift.delta(x).reshape(3, 4, 6)
        assert torch.equal(out[1], torch.zeros(4, 6)) and torch.equal(out[[0, 2]], ref[[0, 2]])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_cuda_generation_matches_cpu(precision):
    """The same seed gives the same noise on CPU and CUDA (drawn on the CPU), so a personalised
    mixed batch generated on the GPU matches the CPU output up to kernel rounding."""
    model = tiny_gafrg(clip_position=True)
    ed = random_editor(model, edit_bias=True)
    a, e, f = speaker(b=2, t=35)
    kw = dict(num_samples=3, steps=3, guidance=2.0, style=torch.randn(2, 16), editor=ed, generator=4,
              precision=precision)
    cpu = generate(model, a, e, f, device="cpu", **kw)
    gpu = generate(model, a, e, f, device="cuda", **kw)
    assert gpu.device.type == "cuda" and gpu.dtype == torch.float32
    rel = ((gpu.cpu() - cpu).abs().mean() / cpu.abs().mean()).item()
    assert rel < (1e-3 if precision == "fp32" else 0.05), rel


# ------------------------------------------------------------------------- continued windows
@pytest.mark.parametrize("ctx", [3, 5])
def test_continued_windows_are_online_causal(ctx):
    """Windows of W = 10 frames that continue the last ``ctx`` generated frames start every
    W - ctx frames; window [s, s+W) still sees speaker frames [s-W, s) only. Changing the speaker
    from frame 20 on leaves every frame before the first window whose speaker window reaches frame
    20 unchanged: the window starting at s > 20 writes frames [s + ctx, s + W)."""
    model = tiny_gafrg()
    a, e, f = speaker(b=1, t=50)
    out = generate(model, a, e, f, num_samples=2, steps=3, generator=0, context=ctx)
    a2, e2, f2 = a.clone(), e.clone(), f.clone()
    a2[:, 20:] += 1.0
    e2[:, 20:] = 1 - e2[:, 20:]
    f2[:, 20:] -= 1.0
    out2 = generate(model, a2, e2, f2, num_samples=2, steps=3, generator=0, context=ctx)
    stride = W - ctx
    first = min(s for s in range(0, 50, stride) if s > 20) + ctx  # first frame a changed window writes
    torch.testing.assert_close(out[:, :, :first], out2[:, :, :first], atol=1e-5, rtol=1e-5)
    assert (out[:, :, first:] - out2[:, :, first:]).abs().max() > 1e-3
    assert out.shape == (1, 2, 50, 25) and torch.isfinite(out).all()


def test_continued_windows_options_and_defaults():
    model = tiny_gafrg()
    a, e, f = speaker(b=2, t=30)
    plain = generate(model, a, e, f, num_samples=2, steps=3, generator=4)
    # context 0 is the independent-window sampler, also when it comes from the diffusion config
    torch.testing.assert_close(plain, generate(model, a, e, f, num_samples=2, steps=3, generator=4, context=0))
    cfg = DiffusionConfig(context_frames=4)
    via_cfg = generate(model, a, e, f, num_samples=2, steps=3, generator=4, diffusion=cfg)
    torch.testing.assert_close(via_cfg, generate(model, a, e, f, num_samples=2, steps=3, generator=4, context=4))
    assert not torch.allclose(via_cfg[:, :, W:], plain[:, :, W:], atol=1e-3)
    # the first window has nothing to continue: item 0's first sample starts from the same noise
    torch.testing.assert_close(via_cfg[0, 0, :W], plain[0, 0, :W])
    with pytest.raises(ConfigError, match="context frames must be in"):
        generate(model, a, e, f, steps=2, generator=0, context=W)
    with pytest.raises(ConfigError, match="choose one"):
        generate(model, a, e, f, steps=2, generator=0, context=3, overlap=True)
    assert DiffusionConfig().context_frames == 0  # old checkpoints keep their sampler
