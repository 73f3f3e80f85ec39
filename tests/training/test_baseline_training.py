"""Trans-VAE and BeLFusion training steps: tiny configs learn (falling loss), the generic loop runs
them, the option switches do what they say, bad batches and models are named errors."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import Dataset

from reactcli.errors import ConfigError, InputError
from reactcli.models.belfusion import (
    BehaviourAEConfig,
    BehaviourAutoencoder,
    BeLFusion,
    BeLFusionConfig,
    latent_statistics,
)
from reactcli.models.transvae import TransVAE, TransVAEConfig
from reactcli.training.belfusion_losses import belfusion_autoencoder_step, belfusion_diffusion_step
from reactcli.training.loop import TrainConfig, train
from reactcli.training.transvae_losses import transvae_training_step

T = 20


def learnable_batch(b: int = 4, t: int = T, seed: int = 0) -> dict[str, torch.Tensor]:
    """Listeners that follow their speaker smoothly (a learnable mapping), two appropriate reactions each."""
    g = torch.Generator().manual_seed(seed)
    phase = torch.rand(b, 1, 1, generator=g) * 6.28
    time = torch.arange(t).view(1, t, 1) / 4.0
    base = torch.sin(time + phase + torch.arange(25).view(1, 1, 25) / 5.0)
    spk_e = 0.5 + 0.4 * base
    lis_e = 0.5 + 0.3 * torch.roll(base, 2, dims=1)
    spk_t = torch.cat([base, base, base[..., :8]], -1) * 0.5
    lis_t = 0.4 * torch.roll(spk_t, 2, dims=1)
    audio = torch.randn(b, t, 78, generator=g) * 0.1 + base.repeat(1, 1, 4)[..., :78]
    return {
        "speaker_audio": audio,
        "speaker_emotion": spk_e,
        "speaker_tdmm": spk_t,
        "listener_emotion": lis_e,
        "listener_tdmm": lis_t,
        "appropriate_emotion": torch.stack([lis_e, lis_e.flip(0)], 1),
        "appropriate_tdmm": torch.stack([lis_t, lis_t.flip(0)], 1),
        "appropriate_mask": torch.tensor([[True, True], [True, False]] * (b // 2)),
    }


def run_steps(model, step, batch, n, lr=3e-3, seed=0, key="loss"):
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    g = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(n):
        loss, logs = step(model, batch, g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        values.append(float(loss.detach()) if key == "loss" else logs[key])
    return values, logs


def falls(values: list[float], k: int, ratio: float) -> bool:
    return sum(values[-k:]) / k < ratio * sum(values[:k]) / k


# ---- Trans-VAE --------------------------------------------------------------------------------


def tiny_transvae(**kw) -> TransVAE:
    torch.manual_seed(0)
    return TransVAE(TransVAEConfig(**{**dict(feature_dim=16, ffn_dim=32, window=5, dropout=0.0), **kw})).train()


@pytest.mark.parametrize("online", [False, True])
def test_transvae_loss_falls(online):
    """With the authors' weights the total loss falls (the diversity term, weight 10, trades some
    reconstruction for spread on this toy); without diversity the reconstruction itself falls."""
    m = tiny_transvae(online=online)
    values, logs = run_steps(m, transvae_training_step, learnable_batch(), 40)
    assert set(logs) == {"rec", "kl", "diversity"}
    assert falls(values, 5, 0.5), values
    m = tiny_transvae(online=online, diversity_weight=0.0)
    values, _ = run_steps(m, transvae_training_step, learnable_batch(), 40, key="rec")
    assert falls(values, 5, 0.4), values


def test_transvae_step_options():
    batch = learnable_batch()
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    # appropriate: the min over the item's (masked) appropriate reactions is <= the own-listener loss
    own = transvae_training_step(tiny_transvae(diversity_weight=0.0), batch, g())[1]["rec"]
    app = transvae_training_step(tiny_transvae(diversity_weight=0.0, reconstruction="appropriate"), batch, g())[1][
        "rec"
    ]
    assert app <= own + 1e-6
    # diversity weight 0 draws one sample (no diversity term), > 0 two
    assert transvae_training_step(tiny_transvae(diversity_weight=0.0), batch, g())[1]["diversity"] == 0.0
    # diversity_gradient: with "one" the second sample gets no gradient, so the loss gradient differs from "both"
    grads = {}
    for mode in ("one", "both"):
        m = tiny_transvae(diversity_gradient=mode, diversity_weight=1e3, diversity_sigma=1e4)
        loss, _ = transvae_training_step(m, batch, g())
        loss.backward()
        grads[mode] = m.tdmm_head.weight.grad.clone()
    assert not torch.allclose(grads["one"], grads["both"])
    # online detach_history: same outputs, but the later windows' loss no longer differentiates
    # through the earlier generated windows, so its gradient changes
    later = {}
    for detach in (False, True):
        m = tiny_transvae(online=True, detach_history=detach)
        out = m(batch["speaker_audio"], batch["speaker_emotion"], batch["speaker_tdmm"], generator=g())
        out.outputs["tdmm"][:, :, 5:].sum().backward()
        later[detach] = (out.outputs["tdmm"].detach(), m.tdmm_head.weight.grad.clone())
    assert torch.equal(later[False][0], later[True][0])
    assert not torch.allclose(later[False][1], later[True][1])


def test_transvae_step_errors():
    batch = learnable_batch()
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ConfigError, match="TransVAE"):
        transvae_training_step(BehaviourAutoencoder(), batch, g)
    with pytest.raises(InputError, match="listener_tdmm"):
        transvae_training_step(tiny_transvae(), {k: v for k, v in batch.items() if k != "listener_tdmm"}, g)
    bad = dict(batch, appropriate_mask=torch.zeros(4, 2, dtype=torch.bool))
    with pytest.raises(InputError, match="appropriate"):
        transvae_training_step(tiny_transvae(reconstruction="appropriate"), bad, g)
    video = tiny_transvae(visual_encoder="video", visual_inputs=())
    with pytest.raises(ConfigError, match="frames"):
        transvae_training_step(video, batch, g)


# ---- BeLFusion --------------------------------------------------------------------------------


def ae_config(**kw) -> BehaviourAEConfig:
    return BehaviourAEConfig(**{**dict(window=5, hidden_dim=16, z_dim=16, mlp_dims=(16,)), **kw})


def test_belfusion_autoencoder_loss_falls_and_coeff_target():
    torch.manual_seed(0)
    ae = BehaviourAutoencoder(ae_config()).train()
    values, logs = run_steps(ae, belfusion_autoencoder_step, learnable_batch(), 60, lr=1e-2)
    assert set(logs) == {"mse", "kld", "coeff"}
    assert falls(values, 5, 0.5), values
    # coeff_target: the authors' effective target is zeros (their 3DMM was never loaded)
    batch = learnable_batch()
    g = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    zeros = BehaviourAutoencoder(ae_config(coeff_target="zeros"))
    zeros.load_state_dict(ae.state_dict())
    with torch.no_grad():
        out = ae(ae.windows(batch["listener_emotion"]), torch.randn(16, 16, generator=g()))
    logs_zero = belfusion_autoencoder_step(zeros, {k: v for k, v in batch.items() if k != "listener_tdmm"}, g())[1]
    assert logs_zero["coeff"] == pytest.approx(float(out["coefficients"].pow(2).mean()), rel=1e-5)
    with pytest.raises(InputError, match="listener_tdmm"):
        belfusion_autoencoder_step(ae, {k: v for k, v in batch.items() if k != "listener_tdmm"}, g())


def stage2(**kw) -> BeLFusion:
    torch.manual_seed(0)
    ae = BehaviourAutoencoder(ae_config())
    run_steps(ae.train(), belfusion_autoencoder_step, learnable_batch(), 30, lr=1e-2)
    batch = learnable_batch()
    stats = latent_statistics(ae, [batch["speaker_emotion"], batch["listener_emotion"]])
    cfg = BeLFusionConfig(hidden_channels=32, num_layers=3, time_channels=8, k=4, **kw)
    return BeLFusion.from_autoencoder(ae, stats, cfg).train()


@pytest.mark.parametrize("online", [False, True])
def test_belfusion_diffusion_loss_falls(online):
    m = stage2(online=online)
    frozen = {k: v.clone() for k, v in m.autoencoder.state_dict().items()}
    values, logs = run_steps(m, belfusion_diffusion_step, learnable_batch(), 80, lr=3e-3)
    assert set(logs) == {"l1_encoded", "mse_decoded"}
    assert falls(values, 15, 0.6), values
    assert all(torch.equal(v, m.autoencoder.state_dict()[k]) for k, v in frozen.items())  # stage 1 stays frozen


def test_belfusion_diffusion_step_windows_and_errors():
    batch = learnable_batch()
    g = torch.Generator().manual_seed(0)
    # the authors' start range needs 2w - 1 usable frames; "any" needs w
    short = {
        k: (v[:, :, :8] if k.startswith("appropriate") and v.ndim == 4 else v[:, :8]) if v.ndim >= 3 else v
        for k, v in batch.items()
    }
    belfusion_diffusion_step(stage2(), short, g)
    with pytest.raises(InputError, match="too short"):
        belfusion_diffusion_step(stage2(window_start="authors"), short, g)
    with pytest.raises(InputError, match="too short"):
        belfusion_diffusion_step(stage2(online=True), short, g)
    with pytest.raises(ConfigError, match="BeLFusion"):
        belfusion_diffusion_step(BehaviourAutoencoder(ae_config()), batch, g)
    with pytest.raises(ConfigError, match="BehaviourAutoencoder"):
        belfusion_autoencoder_step(stage2(), batch, g)
    # condition dropout 1: every condition is zeros, so the speaker no longer matters
    m = stage2(cond_dropout=1.0)
    other = dict(batch, speaker_emotion=torch.rand_like(batch["speaker_emotion"]))
    a = belfusion_diffusion_step(m, batch, torch.Generator().manual_seed(3))[0]
    b = belfusion_diffusion_step(m, other, torch.Generator().manual_seed(3))[0]
    assert torch.allclose(a, b)


# ---- the generic loop runs the steps -----------------------------------------------------------


class Items(Dataset):
    def __init__(self, batch: dict[str, torch.Tensor]):
        self.batch = batch

    def __len__(self) -> int:
        return self.batch["speaker_audio"].shape[0]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {k: v[i] for k, v in self.batch.items()}


@pytest.mark.parametrize("which", ["transvae", "belfusion-autoencoder", "belfusion"])
def test_generic_loop_trains_and_checkpoints(tmp_path, which):
    if which == "transvae":
        model, step = tiny_transvae(online=True), transvae_training_step
    elif which == "belfusion-autoencoder":
        model, step = BehaviourAutoencoder(ae_config()), belfusion_autoencoder_step
    else:
        model, step = stage2(), belfusion_diffusion_step
    res = train(
        model,
        step,
        Items(learnable_batch()),
        TrainConfig(epochs=2, batch_size=2, lr=1e-3, ema_decay=0.9),  # EMA averages the buffers too
        tmp_path,
        checkpoint_extra={"model": which, "config": model.to_dict()},
    )
    assert res["step"] == 4 and len(res["history"]) == 2
    ck = torch.load(tmp_path / "model.pt", weights_only=False)
    rebuilt = type(model).from_dict(ck["config"])
    rebuilt.load_state_dict(ck["state_dict"])  # the checkpoint rebuilds the model from its own build arguments
    if which == "belfusion":
        assert float(rebuilt.statistics_set) == 1.0 and torch.equal(rebuilt.stat_min, model.stat_min)
